#!/usr/bin/env bash
# Issue #17's short training run: the old and the new scan path from one seed on the same data,
# one after the other on one GPU, for loss curves that must agree within noise.
#
# Usage (from the repository root, carry: .carry .whl; one device call, ≈ 8 min):
#   bash training/bench/curves.sh [--steps N] [--batch B] [--val-every K] [--compile on|off]
#                                 [--budget SEC] [--work DIR] [--carry DIR] [--train-args "ARGS"]
#   defaults: 500 steps of batch 16, validation every 125 steps, torch.compile on, 560 s;
#   --train-args: more train.py arguments for both runs (a tiny config to try it on a CPU).
#
# 1. installs the carried wheels and decodes CARRY/data into WORK/decoded, as device_run.sh's
#    steps 1-2 do (reused while /tmp survives);
# 2. runs train.py twice with the arguments device_run.sh gives a fresh dpmamba-xs
#    (--preset xs --intra mamba --inter mamba --data WORK/decoded --devset CARRY/devset ...),
#    seed 0, a cosine plan of exactly --steps steps (--total-steps = --max-steps, so both runs
#    follow the same learning-rate schedule whatever their speed), and `--scan triton`
#    (old), then `--scan fused` (new, its default tiles); each gets half of the budget left
#    (--deadline) and stops early, saved, if it runs out;
# 3. writes to $OUT: curves.tgz (old/ and new/: log.jsonl, summary.json, stdout.txt) and
#    curves.log. Then, here (matplotlib):
#      mkdir -p /tmp/curves && tar -xzf curves.tgz -C /tmp/curves
#      python3 training/plot_curves.py --batch old=16 --batch new=16 --out training/bench/curves-old-new.png \
#          old=/tmp/curves/old/log.jsonl new=/tmp/curves/new/log.jsonl
#
# Time: decoding ≈ 20-40 s the first time; each run ≈ 25-50 s of compilation + 500 steps (≈ 100 s
# old, ≈ 85 s new at today's 70 / 84 ex/s) + 5 validations.
set -uo pipefail
T0=$(date +%s)
REPO=$(cd "$(dirname "$0")/../.." && pwd)
usage() { sed -n '3,/^set -uo/p' "$0" | sed '$d; s/^# \{0,1\}//'; }
STEPS=500; BATCH=16; VAL_EVERY=125; COMPILE=on; BUDGET=560; WORK=/tmp/mambasep; CARRY=$REPO/.carry; EXTRA=""
while [ $# -gt 0 ]; do
  [ "$1" = -h ] || [ "$1" = --help ] && { usage; exit 0; }
  [ $# -ge 2 ] || { echo "curves.sh: $1 needs a value" >&2; exit 2; }
  case "$1" in
    --steps) STEPS=$2 ;;   --batch) BATCH=$2 ;;   --val-every) VAL_EVERY=$2 ;;
    --compile) COMPILE=$2 ;;   --budget) BUDGET=$2 ;;   --work) WORK=$2 ;;   --carry) CARRY=$2 ;;
    --train-args) EXTRA=$2 ;;
    *) echo "curves.sh: unknown argument $1 (--help)" >&2; exit 2 ;;
  esac
  shift 2
done
case "$COMPILE" in on) CFLAG=--compile ;; off) CFLAG="" ;; *) echo "curves.sh: --compile on|off" >&2; exit 2 ;; esac
OUT=${OUT:-$REPO/out}
mkdir -p "$OUT" "$WORK/curves"
LOG=$OUT/curves.log
: > "$LOG"
say() { echo "[curves $(( $(date +%s) - T0 ))s] $*" | tee -a "$LOG"; }
export PYTHONUNBUFFERED=1 OMP_NUM_THREADS=${OMP_NUM_THREADS:-4}
export TRITON_CACHE_DIR="$WORK/triton" TORCHINDUCTOR_CACHE_DIR="$WORK/inductor"

# 1. wheels and data (device_run.sh steps 1-2)
if ! python3 -c "import soundfile" 2>/dev/null; then
  python3 -m pip install -q --no-index --no-deps --target "$WORK/site" "$REPO"/.whl/*.whl >/dev/null 2>&1 || true
  export PYTHONPATH="$WORK/site${PYTHONPATH:+:$PYTHONPATH}"
  python3 -c "import soundfile" || { say "ERROR: soundfile not importable (carry .whl?)"; exit 1; }
fi
[ -f "$CARRY/data/info.json" ] && [ -d "$CARRY/devset" ] || { say "ERROR: $CARRY/data or devset missing (carry .carry)"; exit 1; }
PYTHONPATH="$REPO/training${PYTHONPATH:+:$PYTHONPATH}" python3 -c "
from data import decode_shards; decode_shards('$CARRY/data', '$WORK/decoded')" 2>&1 | tee -a "$LOG" \
  || { say "ERROR: decoding the data failed"; exit 1; }
say "data ready in $WORK/decoded"

# 2. the two runs, old then new
for arm in old new; do
  scan=triton; [ "$arm" = new ] && scan=fused
  run="$WORK/curves/$arm"; rm -rf "$run"; mkdir -p "$run"
  now=$(date +%s)
  if [ "$arm" = old ]; then share=$(( (T0 + BUDGET - 25 - now) / 2 )); else share=$(( T0 + BUDGET - 25 - now )); fi
  [ "$share" -gt 60 ] || { say "SKIPPED $arm: ${share}s left"; continue; }
  say "$arm: --scan $scan, ${share}s"
  timeout -k 10 $(( share + 15 )) python3 "$REPO/training/train.py" --name "dpmamba-xs-$arm" \
    --preset xs --intra mamba --inter mamba --data "$WORK/decoded" --devset "$CARRY/devset" \
    --run-dir "$run" --batch "$BATCH" --lr 1e-3 --total-steps "$STEPS" --max-steps "$STEPS" \
    --val-every "$VAL_EVERY" --deadline $(( now + share )) --seed 0 --scan "$scan" $CFLAG $EXTRA \
    > "$run/stdout.txt" 2>&1
  say "$arm: exit $?; $(tail -n 2 "$run/stdout.txt" | tr '\n' ' ')"
done

# 3. results
tar -czf "$OUT/curves.tgz" -C "$WORK/curves" $(cd "$WORK/curves" && for a in old new; do
  for f in log.jsonl summary.json stdout.txt; do [ -f "$a/$f" ] && echo "$a/$f"; done; done)
python3 - "$WORK/curves" <<'EOF' 2>&1 | tee -a "$LOG"
import json, sys
from pathlib import Path
for arm in ("old", "new"):
    p = Path(sys.argv[1]) / arm / "log.jsonl"
    rows = [json.loads(l) for l in p.read_text().splitlines() if l.strip()] if p.exists() else []
    tr = [r for r in rows if r.get("event") == "train"]
    va = [r for r in rows if r.get("event") == "val"]
    print(arm, "train", [(r.get("step"), r.get("loss")) for r in tr[-3:]],
          "val", [(r.get("step"), r.get("dev_sisnri")) for r in va])
EOF
say "done"
