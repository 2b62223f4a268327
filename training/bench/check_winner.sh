#!/usr/bin/env bash
# One device call for issue #17 after part 1 has named a winner: (1) the XS b16 step of the old
# path against the winner with and without CUDA graphs (bench_step.py, side by side in one run);
# (2) the winner's 500-step loss curve from v7's seed and data (device_run.sh, the new arm only:
# the old arm's curve is v7's, training/bench/curves-2026-12-07-h100-v7/old.log.jsonl), compiled
# without graphs (they change no arithmetic; --curve-graphs trains with them when (1) found
# them faster, which also tries train.py --cuda-graphs). The GPU parity tests are measure.sh
# --part 0's (pytest's wheels do not fit beside .carry in one call's 64 MiB).
#
# Usage (repository root; carry .carry .whl):
#   bash training/bench/check_winner.sh --tiles S:32:1+ck+cv+cb+gl [--budget 520] [--name dpmamba-xs-v8]
#     [--curve-graphs]
# Writes under $OUT: check-winner.log, step-graphs.json and device_run.sh's
# files (logs.tgz, NAME/best.safetensors, NAME/last16.pt).
set -uo pipefail
T0=$(date +%s)
REPO=$(cd "$(dirname "$0")/../.." && pwd)
TILES=""; BUDGET=520; NAME=dpmamba-xs-v8; CURVE_GRAPHS=0
while [ $# -gt 0 ]; do
  case "$1" in
    --tiles) TILES=${2:-}; shift 2 ;;
    --budget) BUDGET=${2:-}; shift 2 ;;
    --name) NAME=${2:-}; shift 2 ;;
    --curve-graphs) CURVE_GRAPHS=1; shift ;;
    -h|--help) sed -n '2,14p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "check_winner.sh: unknown argument $1" >&2; exit 2 ;;
  esac
done
[ -n "$TILES" ] || { echo "check_winner.sh: --tiles SPEC (part 1's winner)" >&2; exit 2; }
OUT=${OUT:-$REPO/out}
mkdir -p "$OUT"
LOG=$OUT/check-winner.log
say() { echo "[check $(( $(date +%s) - T0 ))s] $*" | tee -a "$LOG"; }
left() { echo $(( BUDGET - ($(date +%s) - T0) )); }
cd "$REPO/training" || exit 1
nvidia-smi --query-gpu=name --format=csv,noheader | tee -a "$LOG"

say "step: old against $TILES, compiled, with and without CUDA graphs"
timeout 230 python3 bench_step.py --case xs:8000:16 --steps 8 --rounds 3 --warmup 4 \
  --pair triton+compile:fused+compile,fused+graphs --tiles "$TILES" --profile 2 \
  --out "$OUT/step-graphs.json" >> "$LOG" 2>&1
say "step: exit $?"
GRAPHS=$(python3 - "$OUT/step-graphs.json" <<'EOF' 2>>"$LOG"
import json, sys
r = json.load(open(sys.argv[1]))["results"][0]
print("old", r["old"].get("ex_per_s"), r["old"].get("peak_gib"), file=sys.stderr)
c = {x["path"]: x for x in r["candidates"]}
for x in r["candidates"]:
    print(x["path"], x.get("ex_per_s"), x.get("ex_per_s_all"), x.get("peak_gib"), x.get("error", ""), file=sys.stderr)
g, p = c.get("fused+graphs", {}).get("ex_per_s"), c.get("fused+compile", {}).get("ex_per_s")
print("--cuda-graphs" if g and p and g > p else "")
EOF
)
[ "$CURVE_GRAPHS" = 1 ] || GRAPHS=""
say "loss curve flags: --scan-tiles $TILES $GRAPHS"

L=$(left); [ "$L" -gt 300 ] && L=300
if [ "$L" -gt 150 ]; then
  (cd "$REPO" && bash training/device_run.sh --budget "$L" --plan 560 --compile on --batch 16 --lr 1e-3 --val-every 125 \
    --train-args "--total-steps 500 --max-steps 500 --scan-tiles $TILES $GRAPHS" \
    --model "$NAME --scan fused") >> "$LOG" 2>&1
  say "loss curve: exit $?"
  rm -f "$OUT"/*/last.pt
else
  say "loss curve skipped: $L s left"
fi

say done
