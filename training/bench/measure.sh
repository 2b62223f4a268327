#!/usr/bin/env bash
# Issue #17's measurements on the GPU machine, in two device calls (each under 10 minutes).
#
# Usage (from the repository root; no carry needed):
#   bash training/bench/measure.sh --part 1   # ≈ 6 min: kernel sweep; steps XS b16 (profiled), XS b32
#   bash training/bench/measure.sh --part 2   # ≈ 5 min: steps S b16, XS 16 kHz b16
#   options: --budget SEC (560: the whole part, compiles included)  --skip NAME (repeatable: a
#   step not to run, e.g. step-xs-8k-b32)  --v4 SPEC (the v4 tiles to try beside split;
#   default: part 1 the sweep's best, part 2 part 1's best_v4_tiles if this machine still
#   has them; else 4:64:1)
#
# Part 1: (a) bench_bimamba.py --sweep --no-layer over the v4 tiles 4:64:1, 4:32:1, 2:32:1 and
#   the split variant S:32:1 (kernels alone, both XS shapes, plus each one's fp32 layer parity
#   against --scan triton); prints best_tiles / best_v4_tiles.
#   (b) bench_step.py, old (--scan triton + torch.compile) against new (--scan fused +
#   torch.compile) with two candidate tiles, the sweep's best v4 and split: XS 8 kHz batch 16
#   (with a 2-step kernel profile of old and the faster new) and batch 32.
# Part 2: the same step comparison for the S preset at batch 16 and XS at 16 kHz, batch 16.
# Each case is 4 s examples, 3 warm-up steps (compilation), then 3 rounds of 8 timed steps of
# each path in turn; "new" is the faster candidate, both are kept under "candidates".
#
# Writes only under $OUT (3 files a part): throughput.partN.json (bench_step.py
# --throughput-json: {"gpu", "command", "configurations": {"xs-8k-b16": {"old", "new",
# "speedup", "candidates"}, ...}}), measure-partN.log (everything printed), and
# measure-partN.tgz (the raw JSON of every step). Afterwards, here:
#   python3 training/bench_step.py --merge throughput.part1.json throughput.part2.json \
#       --throughput-json training/bench/throughput.json
#
# Time (from the v4 figures of one H100: compiling the compiled step took ≈ 49 s for the old
# path and ≈ 22 s for the fused one per configuration): part 1 ≈ 100 s sweep + 3 × 10 s start-up
# + 135 s (XS b16: 49 + 2 × 25 compiles, 3 × 8 steps × 3 paths, profile) + 110 s (XS b32)
# ≈ 380 s; part 2 ≈ 2 × 130 s ≈ 280 s. Every step runs under `timeout` and is skipped when the
# budget left is too small; a step that fails leaves the others' results.
set -uo pipefail
T0=$(date +%s)
REPO=$(cd "$(dirname "$0")/../.." && pwd)
usage() { sed -n '3,/^set -uo/p' "$0" | sed '$d; s/^# \{0,1\}//'; }
PART=""; BUDGET=560; V4=""; SKIP=" "
while [ $# -gt 0 ]; do
  case "$1" in
    -h|--help) usage; exit 0 ;;
    --part) PART=${2:-}; shift 2 ;;
    --budget) BUDGET=${2:-}; shift 2 ;;
    --v4) V4=${2:-}; shift 2 ;;
    --skip) SKIP="$SKIP${2:-} "; shift 2 ;;
    *) echo "measure.sh: unknown argument $1 (--help)" >&2; exit 2 ;;
  esac
done
case "$PART" in 1|2) ;; *) echo "measure.sh: --part 1 or --part 2 (--help)" >&2; exit 2 ;; esac
OUT=${OUT:-$REPO/out}
STATE=/tmp/mambasep-measure          # survives between calls while the machine stays warm
RAW=$STATE/part$PART
mkdir -p "$OUT" "$RAW"
LOG=$OUT/measure-part$PART.log
: > "$LOG"
export PYTHONUNBUFFERED=1
cd "$REPO/training" || exit 1

elapsed() { echo $(( $(date +%s) - T0 )); }
say() { echo "[measure $(elapsed)s] $*" | tee -a "$LOG"; }
# run SECONDS NAME CMD...: CMD under timeout (at most SECONDS, and what the budget leaves);
# skipped when under 30 s would be left for it.
run() {
  local want=$1 name=$2; shift 2
  local left=$(( BUDGET - $(elapsed) - 15 ))
  local lim=$(( want < left ? want : left ))
  case "$SKIP" in *" $name "*) say "SKIPPED $name: --skip"; return 1 ;; esac
  if [ "$lim" -lt 30 ]; then say "SKIPPED $name: ${left}s of the budget left"; return 1; fi
  say "$name (limit ${lim}s): $*"
  timeout -k 10 "$lim" "$@" 2>&1 | tee -a "$LOG"
  local rc=${PIPESTATUS[0]}
  say "$name: exit $rc"
  return "$rc"
}

nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader 2>&1 | tee -a "$LOG"
python3 -c "import torch, triton; print('torch', torch.__version__, 'triton', triton.__version__)" 2>&1 | tee -a "$LOG"
STEP="--steps 8 --rounds 3 --warmup 3 --pair triton+compile:fused+compile"

if [ "$PART" = 1 ]; then
  run 200 sweep python3 bench_bimamba.py --sweep --no-layer --reps 5 --json "$RAW/bimamba.json" \
    --tiles 4:64:1 --tiles 4:32:1 --tiles 2:32:1 --tiles S:32:1
  [ -n "$V4" ] || V4=$(sed -n 's/^best_v4_tiles=//p' "$LOG" | tail -n 1)
  V4=${V4:-4:64:1}
  echo "$V4" > "$STATE/best_v4_tiles"
  say "v4 candidate: $V4"
  run 220 step-xs-8k-b16 python3 bench_step.py --case xs:8000:16 $STEP --tiles "$V4" --tiles split \
    --profile 2 --out "$RAW/step-xs-8k-b16.json" --throughput-json "$OUT/throughput.part1.json"
  run 200 step-xs-8k-b32 python3 bench_step.py --case xs:8000:32 $STEP --tiles "$V4" --tiles split \
    --out "$RAW/step-xs-8k-b32.json" --throughput-json "$OUT/throughput.part1.json"
else
  [ -n "$V4" ] || V4=$(cat "$STATE/best_v4_tiles" 2>/dev/null || echo 4:64:1)
  say "v4 candidate: $V4"
  run 250 step-s-8k-b16 python3 bench_step.py --case s:8000:16 $STEP --tiles "$V4" --tiles split \
    --out "$RAW/step-s-8k-b16.json" --throughput-json "$OUT/throughput.part2.json"
  run 250 step-xs-16k-b16 python3 bench_step.py --case xs:16000:16 $STEP --tiles "$V4" --tiles split \
    --out "$RAW/step-xs-16k-b16.json" --throughput-json "$OUT/throughput.part2.json"
fi

tar -czf "$OUT/measure-part$PART.tgz" -C "$RAW" . 2>&1 | tee -a "$LOG"
say "done; speedups:"
python3 - "$OUT/throughput.part$PART.json" <<'EOF' 2>&1 | tee -a "$LOG"
import json, sys
try:
    conf = json.load(open(sys.argv[1]))["configurations"]
except (OSError, ValueError, KeyError) as e:
    sys.exit(f"no throughput summary: {e}")
for name, c in conf.items():
    o, n = c.get("old", {}), c.get("new", {})
    print(f"{name:10s} old {o.get('ex_per_s')} ex/s ({o.get('peak_gib')} GiB)  new {n.get('ex_per_s')} ex/s "
          f"({n.get('peak_gib')} GiB, tiles {n.get('tiles')})  {c.get('speedup')}x")
EOF
