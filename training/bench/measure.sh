#!/usr/bin/env bash
# Issue #17's measurements on the GPU machine, in three device calls (each under 10 minutes).
#
# Usage (from the repository root; no carry needed but .whl-test for part 0):
#   bash training/bench/measure.sh --part 0   # ≈ 5 min: the kernels' parity tests on the GPU
#   bash training/bench/measure.sh --part 1   # ≈ 7 min: kernel sweep; XS b16 steps of the candidates
#   bash training/bench/measure.sh --part 2   # ≈ 8 min: XS b32, S b16, XS 16 kHz b16 with part 1's winner
#   options: --budget SEC (560: the whole part, compiles included)  --skip NAME (repeatable: a
#   step not to run: gpu-tests, ncu-TILES, conv, sweep, step-xs-8k-b16, step-xs-8k-b32,
#   step-s-8k-b16, step-xs-16k-b16)
#   --graphs (parts 1 and 2: the new path with CUDA graphs, bench_step.py's fused+graphs, instead
#   of fused+compile)  --rounds N (3: timed rounds of 8 steps a path)
#   --tiles SPEC (part 1: the candidate tried beside the default tiles S:32:1+ck+gl, default
#   the sweep's best; part 2: the tiles, default part 1's step winner if this machine still
#   has it, else split)
#   GPU_TESTS_K=EXPR (environment, part 0): the parity tests pytest -k selects (default: those
#   of the split variant's kernels, Triton and Gluon, which fit the part's time; "" for all)
#
# Part 0: with pytest's wheels carried in .whl-test/ (`python3 -m pip download --no-deps
#   --only-binary=:all: --python-version 3.12 --implementation cp -d .whl-test pytest pluggy
#   iniconfig packaging pygments`), the scan kernels' parity tests on the GPU, their CUDA
#   shapes included (the two files at once, compiles mostly: 60 tests selected by -k took
#   210 s on an H100 when 2026-12-07's Gluon kernels came), each stopping at its first failure with its traceback (-x), the 10 slowest listed. A failure here keeps a later part 1
#   on this warm machine from naming a fused variant for training. Then Nsight Compute (`ncu
#   --set full`, clocks left alone) on one warm launch of the intra call's scan backward for
#   the tiles in $NCU_TILES (default S:32:1+ck+gl and S:32:1+ck+gl2): details page and
#   per-instruction SASS counters (CSV) in measure-part0.tgz, stall and occupancy lines in the log.
# Part 1: (0) bench_bimamba.py --conv: the convolutions + SiLU alone, compiled torch against
#   conv_triton's kernels (+cv) with five launch units (CHUNK × BLOCK_E), both XS shapes;
#   (a) bench_bimamba.py --sweep --no-layer over the Gluon kernels' launches (loads one (+gl)
#   or two (+gl2) steps ahead; with bf16 checkpoints (+cb); with checkpoints every 16 steps
#   (half the memory, twice the shared memory a program); with the backward's registers capped
#   at 128 (16 one-warp programs an SM instead of 12; offline 192 bytes of spills, walk 386 →
#   428) and, for +gl2, at 152) (kernels alone, both XS shapes, plus each one's fp32 layer
#   parity against --scan triton); prints best_tiles.
#   (b) bench_step.py for XS 8 kHz batch 16, old (--scan triton + torch.compile) against new
#   (--scan fused + torch.compile) with the candidates of `tiles` below (the default, with +cv,
#   with +cv+cb, the sweep's best with +cv+cb, and that with +sp, +gm, +sp+gm, +sp+mt and +ur), with
#   a 2-step kernel profile of every path. The fastest is the "winner".
# Part 2: old against the winner only, for XS at batch 32, the S preset at batch 16 and XS at
#   16 kHz, batch 16.
# Each case is 4 s examples, 4 warm-up steps (compilation; graphs record there), then --rounds
# rounds of 8 timed steps of each path in turn; "new" is the fastest candidate, all are kept
# under "candidates".
#
# Writes only under $OUT (3 files a part; part 0: its log and .tgz): throughput.partN.json
# (bench_step.py --throughput-json: {"gpu", "command", "configurations": {"xs-8k-b16": {"old", "new",
# "speedup", "candidates"}, ...}}), measure-partN.log (everything printed), and
# measure-partN.tgz (the raw JSON of every step). Afterwards, here:
#   python3 training/bench_step.py --merge throughput.part1.json throughput.part2.json \
#       --throughput-json training/bench/throughput.json
#
# Time (one H100, v5: the sweep of 4 settings took 90 s; compiling the old step ≈ 75 s and
# each fused candidate ≈ 15 s): part 1 ≈ 80 s conv + 130 s sweep + 270 s (XS b16, eight
# candidates and the profile) ≈ 480 s (run it with --budget 580); part 2 ≈ 3 × 130 s ≈ 400 s. Every step runs under `timeout` and is skipped
# when the budget left is too small; a step that fails leaves the others' results.
set -uo pipefail
T0=$(date +%s)
REPO=$(cd "$(dirname "$0")/../.." && pwd)
usage() { sed -n '3,/^set -uo/p' "$0" | sed '$d; s/^# \{0,1\}//'; }
PART=""; BUDGET=560; CAND=""; SKIP=" "; NEWMODE=compile; ROUNDS=3
while [ $# -gt 0 ]; do
  case "$1" in
    -h|--help) usage; exit 0 ;;
    --part) PART=${2:-}; shift 2 ;;
    --budget) BUDGET=${2:-}; shift 2 ;;
    --tiles) CAND=${2:-}; shift 2 ;;
    --skip) SKIP="$SKIP${2:-} "; shift 2 ;;
    --graphs) NEWMODE=graphs; shift ;;
    --rounds) ROUNDS=${2:-}; shift 2 ;;
    *) echo "measure.sh: unknown argument $1 (--help)" >&2; exit 2 ;;
  esac
done
case "$PART" in 0|1|2) ;; *) echo "measure.sh: --part 0, 1 or 2 (--help)" >&2; exit 2 ;; esac
OUT=${OUT:-$REPO/out}
export GPU_TESTS_K=${GPU_TESTS_K-bidir_forward or opcheck or split_variant or traces_as_one_graph or own_backward or inputs_dtypes or whole_model or float64_loop or bfloat16_input or checkpoints_in or helpers_are}
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
STEP="--steps 8 --rounds $ROUNDS --warmup 4 --pair triton+compile:fused+$NEWMODE"

# the "tiles for training" line measure_then_train.sh reads: the tiles measured ($1), unless
# part 0's GPU parity tests failed on this machine (then the split tiles the tests cover by default)
training_tiles() {
  if [ -e "$STATE/gpu_tests_failed" ]; then
    say "part 0's GPU parity tests failed on this machine: training keeps the split tiles"
    say "tiles for training: S:32:1"
  elif [ -n "$1" ]; then
    say "tiles for training: $1"
  fi
}
# the tiles of each step: the default (bimamba_triton's), the default with the convolutions in
# conv_triton's kernels (+cv), then also with bf16 checkpoints (+cb: half their memory), the
# candidate with +cv+cb if another, then that with softplus (+sp), with the gate and merge
# (+gm), with both in the kernels (they change the step more than its kernels: they remove
# Inductor's element-wise kernels, so the kernel sweep alone cannot judge them), with +sp
# on the tile that holds a channel's states in one thread (+mt), and with the Gluon backward's
# recomputation unrolled (+ur)
DEFAULT_TILES=$(python3 -c "from mambasep_ref import bimamba_triton as bt; print(bt.tile_config().spec())" 2>/dev/null)
canon() {   # the tiles specs given, each in TileConfig.spec's one spelling
  python3 -c "import sys; from mambasep_ref import bimamba_triton as bt
print('\n'.join(bt.TileConfig.parse(t).spec() for t in sys.argv[1:]))" "$@"
}
plus_flags() {   # plus_flags SPEC FLAG...: SPEC with each FLAG it lacks added
  local c=$1 f; shift
  for f in "$@"; do case "$c+" in *"$f+"*) ;; *) c="$c$f" ;; esac; done
  echo "$c"
}
tiles() {
  local c list t out=""
  c=$(plus_flags "${CAND:-$DEFAULT_TILES}" +cv +cb)
  list="$DEFAULT_TILES $(plus_flags "$DEFAULT_TILES" +cv) $(plus_flags "$DEFAULT_TILES" +cv +cb) $c"
  list="$list $(plus_flags "$c" +sp) $(plus_flags "$c" +gm) $(plus_flags "$c" +sp +gm)"
  case "$c" in *+gl*) list="$list $(plus_flags "$c" +sp +mt) $(plus_flags "$c" +ur)" ;; esac
  for t in $(canon $list | awk '!seen[$0]++'); do out="$out --tiles $t"; done
  echo "$out"
}
if [ "$PART" = 0 ]; then
  # the kernels' parity tests on the GPU (CUDA shapes included), when pytest's wheels are carried
  rm -f "$STATE/gpu_tests_failed"
  if ls "$REPO"/.whl-test/*.whl >/dev/null 2>&1; then
    python3 -m pip install -q --no-index --no-deps --target /tmp/mambasep-pytest "$REPO"/.whl-test/*.whl \
      >/dev/null 2>&1
    # the three files at once (compiling the kernels is most of their time, on one CPU core each)
    PYTHONPATH=/tmp/mambasep-pytest run 400 gpu-tests bash -c '
      for f in bimamba_triton scan_triton conv_triton; do
        python3 -m pytest -q -x -rfE --tb=short --durations=10 -p no:cacheprovider tests/test_$f.py \
          ${GPU_TESTS_K:+-k "$GPU_TESTS_K"} > "$0/pytest-$f.log" 2>&1 & done
      rc=0; for j in $(jobs -p); do wait "$j" || rc=1; done
      cat "$0"/pytest-*.log; exit $rc' "$RAW" || touch "$STATE/gpu_tests_failed"
  else
    say "no .whl-test/: the GPU parity tests cannot run"; touch "$STATE/gpu_tests_failed"
  fi
  # Nsight Compute on one warm launch of the scan backward (the intra call, 47 % of the step):
  # stall reasons, occupancy, issue slots, per-instruction SASS counters
  NCU=$(command -v ncu || ls /opt/nvidia/nsight-compute/*/ncu 2>/dev/null | tail -n 1)
  for t in ${NCU_TILES:-S:32:1+ck+gl S:32:1+ck+gl2}; do
    [ -n "$NCU" ] || { say "no ncu on this machine"; break; }
    f=$RAW/ncu-bwd-intra-$(echo "$t" | tr ':+' '_p')
    run 120 "ncu-$t" "$NCU" --clock-control none --kernel-name regex:_scan_bwd --launch-skip 2 \
      --launch-count 1 --set full --import-source yes -f -o "$f" \
      python3 bench_bimamba.py --kernels-only --shape intra --reps 1 --tiles "$t" || continue
    "$NCU" --import "$f.ncu-rep" --page details > "$f.details.txt" 2>&1
    "$NCU" --import "$f.ncu-rep" --page source --csv --print-source sass > "$f.sass.csv" 2>&1
    "$NCU" --import "$f.ncu-rep" --page raw --csv > "$f.raw.csv" 2>&1
    grep -i -E "stall|warp cycles|achieved occupancy|registers per|issue slots|executed ipc|duration|theoretical occ" \
      "$f.details.txt" | tee -a "$LOG"
    python3 - "$f.raw.csv" <<'PY' 2>&1 | tee -a "$LOG"   # the stall reasons, largest first
import csv, sys
rows = list(csv.reader(open(sys.argv[1])))
head = next((r for r in rows if any("issue_stalled" in c for c in r)), None)
vals = rows[-1] if head else []
def num(x):
    try: return float(x.replace(",", ""))
    except ValueError: return None
st = sorted(((num(v), h) for h, v in zip(head or [], vals) if "issue_stalled" in h and num(v) is not None),
            reverse=True)
print("stall metrics, largest first:", "; ".join(f"{h.split('issue_stalled_', 1)[1]} {v:.2f}" for v, h in st[:12])
      or "none found")
PY
  done
elif [ "$PART" = 1 ]; then
  SW=""
  for t in S:32:1+ck+gl S:32:1+ck+cb+gl S:32:1:32:1:16+ck+gl S:32:1+ck+gl+r128 S:32:1+ck+gl2 \
           S:32:1+ck+gl2+r152; do
    SW="$SW --tiles $t"
  done
  run 120 conv python3 bench_bimamba.py --conv --reps 5 --json "$RAW/conv.json"
  run 220 sweep python3 bench_bimamba.py --sweep --no-layer --reps 5 --json "$RAW/bimamba.json" $SW
  [ -n "$CAND" ] || CAND=$(sed -n 's/^best_tiles=//p' "$LOG" | tail -n 1)
  say "candidate tiles: ${CAND:-none}"
  # graphed candidates take their turns one at a time (≈ 45 s each, eight of them): the part's budget
  run "$([ "$NEWMODE" = graphs ] && echo 540 || echo 300)" step-xs-8k-b16 python3 bench_step.py --case xs:8000:16 $STEP $(tiles) \
    --profile 2 --out "$RAW/step-xs-8k-b16.json" --throughput-json "$OUT/throughput.part1.json"
  # the step's winner is part 2's one candidate
  WIN=$(python3 -c "import json, sys; print(json.load(open(sys.argv[1]))['configurations']['xs-8k-b16']['new']['tiles'])" \
        "$OUT/throughput.part1.json" 2>/dev/null)
  echo "${WIN:-$CAND}" > "$STATE/best_tiles"
  say "step winner: ${WIN:-none, part 2 takes the best of the sweep}"
  training_tiles "${WIN:-$CAND}"
else
  [ -n "$CAND" ] || CAND=$(cat "$STATE/best_tiles" 2>/dev/null || true)
  training_tiles "${CAND:-split}"
  T2="--tiles ${CAND:-split}"
  run 170 step-xs-8k-b32 python3 bench_step.py --case xs:8000:32 $STEP $T2 \
    --out "$RAW/step-xs-8k-b32.json" --throughput-json "$OUT/throughput.part2.json"
  run 170 step-s-8k-b16 python3 bench_step.py --case s:8000:16 $STEP $T2 \
    --out "$RAW/step-s-8k-b16.json" --throughput-json "$OUT/throughput.part2.json"
  run 170 step-xs-16k-b16 python3 bench_step.py --case xs:16000:16 $STEP $T2 \
    --out "$RAW/step-xs-16k-b16.json" --throughput-json "$OUT/throughput.part2.json"
fi

tar -czf "$OUT/measure-part$PART.tgz" --exclude='*.ncu-rep' -C "$RAW" . 2>&1 | tee -a "$LOG"
if [ "$PART" = 0 ]; then
  if [ -e "$STATE/gpu_tests_failed" ]; then say "done: the GPU tests FAILED"; exit 1; fi
  say "done: the GPU tests passed"; exit 0
fi
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
