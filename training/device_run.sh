#!/usr/bin/env bash
# One training piece on the GPU machine: DPMamba-XS and DP-S4D-XS side by side.
#
# Usage (from the repository root, carry: .carry .whl):
#   bash training/device_run.sh [BUDGET_SEC=540] [PLAN_SEC=1000]
# BUDGET_SEC: wall-clock seconds this whole script may take (keep it under the 600 s limit).
# PLAN_SEC:   length of the cosine learning-rate schedule, in seconds of training per model,
#             summed over all pieces (keep it the same for every piece of one training).
#
# What it does:
#   1. installs the carried wheels (soundfile, cffi, pycparser) into $WORK/site if needed;
#   2. decodes .carry/data (Opus, 8 kHz) once into $WORK/decoded (reused while /tmp survives);
#   3. per model, resumes from $WORK/runs/NAME (previous piece, if /tmp survived: exact), else
#      from .carry/resume/NAME/ (last.pt or last16.pt: weights + schedule + log; optimiser
#      moments too if last.optim16.pt is there, else fresh moments with a 100-step re-warm-up),
#      else starts fresh;
#   4. trains both at once: 4+ GPUs → 2 GPUs each (DDP, torchrun); 2-3 → 1 each; 1 → shared;
#      none → CPU (a local simulation; pass a tiny config through TRAIN_ARGS);
#   5. copies into $OUT: logs.tgz (log.jsonl, summary.json, stdout of each run), NAME/last.pt
#      (fp32), NAME/best.safetensors, NAME/last16.pt (fp16 weights, 4.6 MB: carry it back as
#      .carry/resume/NAME/last16.pt when /tmp did not survive); prints a summary.
# Environment overrides: WORK (/tmp/mambasep), OUT, CARRY (.carry), BATCH (8 per GPU, or
#   "auto": probe.py runs PROBE_BATCHES ("16 32 48 64"), one size per GPU in parallel, and the
#   smallest batch reaching 85 % of the best examples/s is used), VAL_EVERY (400), LR (1e-3),
#   TRAIN_ARGS (extra train.py args for all), MODELS ("a b"; one model takes every GPU),
#   INIT (NAME=FILE[,NAME=FILE...]: a fresh start of NAME begins from these weights,
#   .safetensors or .pt), EXTRA_<NAME> (train.py args for that model alone, NAME with '-' as
#   '_': e.g. MODELS="dpmamba-xs dpmamba-xs-aug" EXTRA_dpmamba_xs_aug="--augment-room 0.3" for
#   an A/B on 2 + 2 GPUs; names other than dpmamba-xs / dps4-xs are Mamba XS models),
#   RESUME_DIR (where step 3 looks for NAME/last*.pt; default $CARRY/resume).
#   MAXPER (GPUs per model at most; default: all of them shared evenly), PROBE_ARGS (extra
#   probe.py args, e.g. --compile to measure torch.compile; train with TRAIN_ARGS=--compile),
#   COMPILE ("auto": probe BATCH eager and compiled on GPU 0 and train with --compile when that
#   is ≥ 10 % faster; the choice is kept in $WORK/compile.choice for later pieces).
set -uo pipefail
T0=$(date +%s)
BUDGET=${1:-540}
PLAN=${2:-1000}
REPO=$(cd "$(dirname "$0")/.." && pwd)
WORK=${WORK:-/tmp/mambasep}
OUT=${OUT:-$REPO/out}
CARRY=${CARRY:-$REPO/.carry}
BATCH=${BATCH:-8}
VAL_EVERY=${VAL_EVERY:-400}
LR=${LR:-1e-3}
TRAIN_ARGS=${TRAIN_ARGS:-}
MODELS=${MODELS:-"dpmamba-xs dps4-xs"}
INIT=${INIT:-}
RESUME_DIR=${RESUME_DIR:-$CARRY/resume}
MAXPER=${MAXPER:-64}
PROBE_BATCHES=${PROBE_BATCHES:-"16 32 48 64"}
PROBE_ARGS=${PROBE_ARGS:-}
COMPILE=${COMPILE:-}
mkdir -p "$WORK/runs" "$OUT"
elapsed() { echo $(( $(date +%s) - T0 )); }
log() { echo "[device_run $(elapsed)s] $*"; }

# MARK: - 1. wheels
if ! python3 -c "import soundfile" 2>/dev/null; then
  python3 -m pip install -q --no-index --no-deps --target "$WORK/site" "$REPO"/.whl/*.whl >/dev/null 2>&1 || true
  export PYTHONPATH="$WORK/site${PYTHONPATH:+:$PYTHONPATH}"
  python3 -c "import soundfile" || { log "ERROR: soundfile not importable (carry .whl?)"; exit 1; }
fi
log "soundfile ok"
# The inline snippets below import training/'s modules: Python with training/ on its path.
pyt() { PYTHONPATH="$REPO/training${PYTHONPATH:+:$PYTHONPATH}" python3 "$@"; }

# MARK: - 2. data
[ -f "$CARRY/data/info.json" ] || { log "ERROR: $CARRY/data/info.json missing (carry .carry)"; exit 1; }
[ -d "$CARRY/devset" ] || { log "ERROR: $CARRY/devset missing"; exit 1; }
pyt -c "
from data import decode_shards; decode_shards('$CARRY/data', '$WORK/decoded')
" || { log "ERROR: decoding the data failed"; exit 1; }
log "data ready in $WORK/decoded"

# MARK: - 3/4. launch
NG=$(python3 -c "import torch; print(torch.cuda.device_count())" 2>/dev/null || echo 0)
export NCCL_NVLS_ENABLE=0 OMP_NUM_THREADS=${OMP_NUM_THREADS:-4} TRITON_CACHE_DIR="$WORK/triton"
export TORCHINDUCTOR_CACHE_DIR="$WORK/inductor"
export PYTHONUNBUFFERED=1
DEADLINE=$(( T0 + BUDGET - 20 ))   # 20 s kept for copying results out
TB=$(( DEADLINE - $(date +%s) ))
log "GPUs: $NG; ${TB}s left for training (incl. start-up and final validation); plan ${PLAN}s"
[ "$TB" -gt 10 ] || { log "ERROR: budget too small"; exit 1; }

model_args() {  # name → mixer args
  case "$1" in
    dpmamba-xs) echo "--preset xs --intra mamba --inter mamba" ;;
    dps4-xs)    echo "--preset xs --intra s4d --inter s4d" ;;
    *) echo "--preset xs" ;;
  esac
}
init_file() {  # name → its INIT file (exit 1 when none)
  local item; local IFS=,
  for item in $INIT; do [ "${item%%=*}" = "$1" ] && { echo "${item#*=}"; return 0; }; done
  return 1
}
extra_args() {  # name → EXTRA_<name> (dashes as underscores)
  local var="EXTRA_${1//-/_}"; echo "${!var:-}"
}
resume_args() {
  local run="$WORK/runs/$1" f
  if [ -f "$run/last.pt" ]; then echo "--resume auto"
  elif [ -f "$RESUME_DIR/$1/last.pt" ] || [ -f "$RESUME_DIR/$1/last16.pt" ]; then
    echo "--resume $RESUME_DIR/$1"
  elif f=$(init_file "$1"); then echo "--init-weights $f"
  else echo ""; fi
}

read -r -a NAMES <<< "$MODELS"
if [ "$BATCH" = auto ]; then
  if [ "$NG" -lt 1 ]; then BATCH=8; log "no GPU: batch 8"; else
    read -r -a PB <<< "$PROBE_BATCHES"; PP=(); j=0
    for b in "${PB[@]}"; do
      CUDA_VISIBLE_DEVICES=$(( j % NG )) timeout 240 python3 "$REPO/training/probe.py" \
        --data "$WORK/decoded" $(model_args "${NAMES[0]}") --batches "$b" \
        --json "$WORK/probe.$b.json" $PROBE_ARGS > "$WORK/probe.$b.txt" 2>&1 &
      PP+=($!); j=$(( j + 1 ))
      if [ $(( j % NG )) = 0 ]; then wait "${PP[@]}"; PP=(); fi
    done
    [ "${#PP[@]}" -gt 0 ] && wait "${PP[@]}"
    BATCH=$(pyt -c "
import json, sys, glob
from probe import choose
rs = []
for f in glob.glob('$WORK/probe.*.json'): rs += json.load(open(f))
for r in sorted(rs, key=lambda r: r['batch']): print('[probe]', json.dumps(r), file=sys.stderr)
print(choose(rs) or 8)")
    for b in "${PB[@]}"; do [ -f "$WORK/probe.$b.json" ] || { log "probe $b failed:"; tail -n 5 "$WORK/probe.$b.txt"; }; done
    rm -f "$WORK"/probe.*.json
    log "probe chose batch $BATCH per GPU"
  fi
  TB=$(( DEADLINE - $(date +%s) ))
  [ "$TB" -gt 10 ] || { log "ERROR: budget too small after the probe"; exit 1; }
fi
if [ "$COMPILE" = auto ]; then   # decided once per warm machine; later pieces reuse it
  if [ ! -f "$WORK/compile.choice" ]; then
    if [ "$NG" -lt 1 ]; then echo "" > "$WORK/compile.choice"; else
      for mode in eager compiled; do
        flag=""; [ "$mode" = compiled ] && flag=--compile
        CUDA_VISIBLE_DEVICES=0 timeout 240 python3 "$REPO/training/probe.py" --data "$WORK/decoded" \
          $(model_args "${NAMES[0]}") --batches "$BATCH" $flag --json "$WORK/probe.$mode.json" \
          > "$WORK/probe.$mode.txt" 2>&1 || { log "probe ($mode) failed:"; tail -n 5 "$WORK/probe.$mode.txt"; }
      done
      pyt -c "
import json, os, sys
from probe import prefer_compiled
rs = [json.load(open(f)) if os.path.exists(f) else [] for f in ('$WORK/probe.eager.json', '$WORK/probe.compiled.json')]
print('[probe] eager', rs[0], 'compiled', rs[1], file=sys.stderr)
print('--compile' if prefer_compiled(*rs) else '')" > "$WORK/compile.choice"
    fi
  fi
  TRAIN_ARGS="$TRAIN_ARGS $(cat "$WORK/compile.choice")"
  log "compile choice: '$(cat "$WORK/compile.choice")'"
  TB=$(( DEADLINE - $(date +%s) ))
  [ "$TB" -gt 10 ] || { log "ERROR: budget too small after the compile probe"; exit 1; }
fi
PIDS=(); i=0
NM=${#NAMES[@]}
for name in "${NAMES[@]}"; do
  run="$WORK/runs/$name"; mkdir -p "$run"; rm -f "$run/summary.json"
  common="--name $name $(model_args "$name") --data $WORK/decoded --devset $CARRY/devset \
    --run-dir $run --batch $BATCH --lr $LR --plan-seconds $PLAN --val-every $VAL_EVERY \
    --deadline $DEADLINE $(resume_args "$name") $TRAIN_ARGS $(extra_args "$name")"
  log "$name: $(resume_args "$name" | sed 's/^$/fresh start/')"
  if [ "$NG" -ge $(( 2 * NM )) ]; then
    per=$(( NG / NM )); [ "$per" -gt "$MAXPER" ] && per=$MAXPER
    gpus=$(seq -s, $(( i * per )) $(( i * per + per - 1 )))
    CUDA_VISIBLE_DEVICES=$gpus timeout -s TERM $(( TB + 12 )) python3 -m torch.distributed.run \
      --nnodes 1 --nproc_per_node "$per" --master_addr 127.0.0.1 --master_port $(( 29511 + i )) \
      "$REPO/training/train.py" $common > "$run/stdout.txt" 2>&1 &
  elif [ "$NG" -ge 1 ]; then
    CUDA_VISIBLE_DEVICES=$(( i % NG )) timeout -s TERM $(( TB + 12 )) python3 \
      "$REPO/training/train.py" $common > "$run/stdout.txt" 2>&1 &
  else
    timeout -s TERM $(( TB + 12 )) python3 "$REPO/training/train.py" $common --device cpu \
      > "$run/stdout.txt" 2>&1 &
  fi
  PIDS+=($!); i=$(( i + 1 ))
done
RCS=()
for p in "${PIDS[@]}"; do wait "$p"; RCS+=($?); done
log "trainings finished (exit codes: ${RCS[*]})"

# MARK: - 5. results into $OUT (≤ 8 files, ≤ 16 MiB each, ≤ 64 MiB in all)
MAXF=$(( 16 * 1024 * 1024 - 4096 )); MAXT=$(( 64 * 1024 * 1024 - 65536 )); used=0; nfiles=0
put() {  # src dst
  [ -f "$1" ] || return 0
  local sz; sz=$(stat -c %s "$1")
  if [ "$sz" -gt "$MAXF" ] || [ $(( used + sz )) -gt "$MAXT" ] || [ "$nfiles" -ge 8 ]; then
    log "not copied (size/count limit): $1 ($sz bytes)"; return 0; fi
  mkdir -p "$(dirname "$2")"; cp "$1" "$2"; used=$(( used + sz )); nfiles=$(( nfiles + 1 ))
}
tar -czf "$WORK/logs.tgz" -C "$WORK/runs" $(cd "$WORK/runs" && for n in "${NAMES[@]}"; do
  for f in log.jsonl summary.json stdout.txt; do [ -f "$n/$f" ] && echo "$n/$f"; done; done)
put "$WORK/logs.tgz" "$OUT/logs.tgz"
for n in "${NAMES[@]}"; do put "$WORK/runs/$n/last.pt" "$OUT/$n/last.pt"; done
for n in "${NAMES[@]}"; do put "$WORK/runs/$n/best.safetensors" "$OUT/$n/best.safetensors"; done
for n in "${NAMES[@]}"; do put "$WORK/runs/$n/last16.pt" "$OUT/$n/last16.pt"; done
log "copied $nfiles files, $(( used / 1024 / 1024 )) MiB to $OUT"

# MARK: - summary
echo "==================== SUMMARY ($(elapsed)s) ===================="
k=0
for n in "${NAMES[@]}"; do
  run="$WORK/runs/$n"
  if [ -f "$run/summary.json" ] && [ "${RCS[$k]}" = 0 ]; then
    python3 - "$run" <<'EOF'
import json, sys
run = sys.argv[1]
s = json.load(open(f"{run}/summary.json"))
log = [json.loads(l) for l in open(f"{run}/log.jsonl")]
val = [r for r in log if r.get("event") == "val"]
last = val[-1] if val else {}
print(f"{s['name']:11s} step {s['step']:6d}  loss {s['loss']}  ex/s {s['ex_per_s']}  "
      f"dev SI-SNRi last {last.get('dev_sisnri')} best {s['best_dev']:.3f} @ {s['best_step']}  "
      f"synth {last.get('synth_sisnri')}  ({s['reason']})")
print(f"{'':11s} groups {last.get('dev_groups')}")
EOF
  else
    echo "$n: FAILED (exit ${RCS[$k]}); last lines of stdout:"; tail -n 25 "$run/stdout.txt"
  fi
  k=$(( k + 1 ))
done
