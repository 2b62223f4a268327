#!/usr/bin/env bash
# One device call for issue #17: (1) the XS b16 step of the old path against each candidate
# tiles (one to three: ≈ 75 s a candidate), compiled with and without CUDA graphs (bench_step.py,
# side by side in one run, every path's kernel profile); (2) the fastest tiles' 500-step loss curve from v7's
# seed and data (device_run.sh, the new arm only:
# the old arm's curve is v7's, training/bench/curves-2026-12-07-h100-v7/old.log.jsonl), compiled
# without graphs (they change no arithmetic; --curve-graphs trains with them when (1) found
# them faster, which also tries train.py --cuda-graphs). The GPU parity tests are measure.sh
# --part 0's (pytest's wheels do not fit beside .carry in one call's 64 MiB).
#
# Usage (repository root; carry .carry .whl):
#   bash training/bench/check_winner.sh --tiles S:32:1+ck+cv+cb+gl [--tiles S:32:1+ck+sp+cv+cb+gl …]
#     [--budget 560] [--name dpmamba-xs-v8] [--curve-graphs]
# Writes under $OUT: check-winner.log, step-graphs.json and device_run.sh's
# files (logs.tgz, NAME/best.safetensors, NAME/last16.pt).
set -uo pipefail
T0=$(date +%s)
REPO=$(cd "$(dirname "$0")/../.." && pwd)
TILES=(); BUDGET=520; NAME=dpmamba-xs-v8; CURVE_GRAPHS=0
while [ $# -gt 0 ]; do
  case "$1" in
    --tiles) TILES+=("${2:-}"); shift 2 ;;
    --budget) BUDGET=${2:-}; shift 2 ;;
    --name) NAME=${2:-}; shift 2 ;;
    --curve-graphs) CURVE_GRAPHS=1; shift ;;
    -h|--help) sed -n '2,14p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "check_winner.sh: unknown argument $1" >&2; exit 2 ;;
  esac
done
[ ${#TILES[@]} -gt 0 ] || { echo "check_winner.sh: --tiles SPEC (repeatable: the candidates)" >&2; exit 2; }
TILE_ARGS=(); for t in "${TILES[@]}"; do TILE_ARGS+=(--tiles "$t"); done
OUT=${OUT:-$REPO/out}
mkdir -p "$OUT"
LOG=$OUT/check-winner.log
say() { echo "[check $(( $(date +%s) - T0 ))s] $*" | tee -a "$LOG"; }
left() { echo $(( BUDGET - ($(date +%s) - T0) )); }
cd "$REPO/training" || exit 1
nvidia-smi --query-gpu=name --format=csv,noheader | tee -a "$LOG"

say "step: old against ${TILES[*]}, compiled, with and without CUDA graphs"
timeout $(( 120 + 75 * ${#TILES[@]} )) python3 bench_step.py --case xs:8000:16 --steps 8 --rounds 3 --warmup 4 \
  --pair triton+compile:fused+compile,fused+graphs "${TILE_ARGS[@]}" --profile 2 \
  --out "$OUT/step-graphs.json" >> "$LOG" 2>&1
say "step: exit $?"
# the fastest candidate's tiles (the first given if the step failed), and whether graphs won
read -r TILES_WIN GRAPHS < <(python3 "$REPO/training/bench/winner.py" "$OUT/step-graphs.json" "${TILES[0]}" 2>>"$LOG")
[ "$CURVE_GRAPHS" = 1 ] || GRAPHS=""
TILES_WIN=${TILES_WIN:-${TILES[0]}}
say "loss curve flags: --scan-tiles $TILES_WIN $GRAPHS"

L=$(left); [ "$L" -gt 300 ] && L=300
if [ "$L" -gt 150 ]; then
  (cd "$REPO" && bash training/device_run.sh --budget "$L" --plan 560 --compile on --batch 16 --lr 1e-3 --val-every 125 \
    --train-args "--total-steps 500 --max-steps 500 --scan-tiles $TILES_WIN $GRAPHS" \
    --model "$NAME --scan fused") >> "$LOG" 2>&1
  say "loss curve: exit $?"
  rm -f "$OUT"/*/last.pt
else
  say "loss curve skipped: $L s left"
fi

say done
