#!/usr/bin/env bash
# One training piece on the GPU machine: by default DPMamba-XS and DP-S4D-XS side by side.
#
# Usage (from the repository root, carry: .carry .whl):
#   bash training/device_run.sh [--budget SEC] [--plan SEC] [--model "NAME [ARGS]"]... [options]
#
#   --budget SEC      wall-clock seconds this whole script may take (540; keep it under the
#                     600 s limit of a device call)
#   --plan SEC        length of the cosine learning-rate schedule, in seconds of training per
#                     model, summed over all pieces (1000; the same for every piece of a run)
#   --model "NAME [ARGS]"  a model to train, with train.py args for it alone (repeatable; default
#                     dpmamba-xs and dps4-xs). dps4-xs is DP-S4D XS; dpmamba-hyb-xs (and
#                     dpmamba-hyb-xs-*) the hybrid, BiMamba inside chunks and BiS4D across them;
#                     dpmamba-xs12 (and dpmamba-xs12-*) XS with 12 blocks;
#                     every other NAME a DPMamba XS: e.g. --model dpmamba-xs --model
#                     "dpmamba-xs-aug --augment-room 0.3" for an A/B on 2 + 2 GPUs
#   --init FILE       a fresh start of each model begins from these weights (.safetensors or
#                     .pt; per model: --init-weights FILE in its ARGS). A model of another
#                     config takes what fits with --init-partial in its ARGS: --model
#                     "dpmamba-hyb-xs --init-partial" from DPMamba-XS weights (later pieces
#                     resume and ignore it)
#   --batch N|auto    examples per GPU (8). auto: probe.py runs --probe-batches ("16 32 48 64"),
#                     one size per GPU in parallel, and the smallest batch reaching 85 % of the
#                     best examples/s is used
#   --lr LR           peak learning rate (1e-3)
#   --val-every N     steps between validations and checkpoints (400)
#   --compile auto|on|off  auto: probe the batch eager and compiled on GPU 0 and train with
#                     --compile when that is >= 10 % faster (the choice is kept in
#                     WORK/compile.choice for later pieces); on: always; off (default): never
#   --train-args "ARGS"  train.py args for every model
#   --resume-dir DIR  where step 3 looks for NAME/last*.pt (CARRY/resume)
#   --gpus-per-model N   at most N GPUs per model (default: all of them shared evenly)
#   --probe-batches "N..."  --probe-args "ARGS"  (extra probe.py args, e.g. --compile)
#   --work DIR (/tmp/mambasep)  --carry DIR (REPO/.carry)  --out DIR ($OUT, else REPO/out)
#
# What it does:
#   1. installs the carried wheels (soundfile, cffi, pycparser) into WORK/site if needed;
#   2. decodes CARRY/data (Opus, 8 kHz) once into WORK/decoded (reused while /tmp survives);
#   3. per model, resumes from WORK/runs/NAME (previous piece, if /tmp survived: exact), else
#      from RESUME_DIR/NAME/ (last.pt or last16.pt: weights + schedule + log; optimiser
#      moments too if last.optim16.pt is there, else fresh moments with a 100-step re-warm-up),
#      else starts fresh (from --init FILE if given);
#   4. trains all models at once: with at least 2 GPUs per model each gets its share (DDP,
#      torchrun); with fewer, one GPU each, shared round-robin; none → CPU (a local simulation;
#      pass a tiny config through --train-args);
#   5. copies into OUT: logs.tgz (log.jsonl, summary.json, stdout of each run), NAME/last.pt
#      (fp32), NAME/best.safetensors, NAME/last16.pt (fp16 weights, 4.6 MB: carry it back as
#      .carry/resume/NAME/last16.pt when /tmp did not survive); prints a summary.
set -uo pipefail
T0=$(date +%s)
REPO=$(cd "$(dirname "$0")/.." && pwd)
usage() { sed -n '3,/^set -uo/p' "$0" | sed '$d; s/^# \{0,1\}//'; }
die() { echo "device_run.sh: $*" >&2; exit 2; }

# The settings were environment variables before; one left set from an old command would
# otherwise be ignored without a word.
for v in BATCH LR VAL_EVERY TRAIN_ARGS MODELS INIT RESUME_DIR MAXPER PROBE_BATCHES PROBE_ARGS COMPILE \
         $(compgen -v EXTRA_ || true); do
  [ -n "${!v:-}" ] && die "$v is no longer read: use the flags (bash training/device_run.sh --help)"
done

BUDGET=540; PLAN=1000; WORK=/tmp/mambasep; OUT=${OUT:-$REPO/out}; CARRY=$REPO/.carry
BATCH=8; VAL_EVERY=400; LR=1e-3; TRAIN_ARGS=""; INIT=""; RESUME_DIR=""; MAXPER=64
PROBE_BATCHES="16 32 48 64"; PROBE_ARGS=""; COMPILE=off; SPECS=()
while [ $# -gt 0 ]; do
  [ "$1" = -h ] || [ "$1" = --help ] && { usage; exit 0; }
  [ $# -ge 2 ] || die "$1 needs a value (--help)"
  case "$1" in
    --budget) BUDGET=$2 ;;            --plan) PLAN=$2 ;;
    --model) SPECS+=("$2") ;;         --init) INIT=$2 ;;
    --batch) BATCH=$2 ;;              --lr) LR=$2 ;;
    --val-every) VAL_EVERY=$2 ;;      --compile) COMPILE=$2 ;;
    --train-args) TRAIN_ARGS=$2 ;;    --resume-dir) RESUME_DIR=$2 ;;
    --gpus-per-model) MAXPER=$2 ;;    --probe-batches) PROBE_BATCHES=$2 ;;
    --probe-args) PROBE_ARGS=$2 ;;    --work) WORK=$2 ;;
    --carry) CARRY=$2 ;;              --out) OUT=$2 ;;
    *) die "unknown argument $1 (--help)" ;;
  esac
  shift 2
done
case "$COMPILE" in auto|off) ;; on) TRAIN_ARGS="$TRAIN_ARGS --compile" ;; *) die "--compile auto, on or off" ;; esac
[[ "$BUDGET" =~ ^[0-9]+$ && "$PLAN" =~ ^[0-9]+$ ]] || die "--budget and --plan take whole seconds"
[ ${#SPECS[@]} -gt 0 ] || SPECS=(dpmamba-xs dps4-xs)
RESUME_DIR=${RESUME_DIR:-$CARRY/resume}
NAMES=(); declare -A EXTRA
for spec in "${SPECS[@]}"; do
  read -r name rest <<< "$spec"
  [ -n "$name" ] || die "--model needs a NAME"
  [ -z "${EXTRA[$name]+x}" ] || die "--model $name given twice"
  NAMES+=("$name"); EXTRA[$name]=$rest
done
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
    dpmamba-hyb-xs|dpmamba-hyb-xs-*) echo "--preset xs --intra mamba --inter s4d" ;;
    dpmamba-xs12|dpmamba-xs12-*) echo "--preset xs --override num_blocks=12" ;;
    *) echo "--preset xs" ;;
  esac
}
resume_args() {  # name → how train.py starts it: this machine's run, a carried one, or fresh
  local run="$WORK/runs/$1"
  if [ -f "$run/last.pt" ]; then echo "--resume auto"
  elif [ -f "$RESUME_DIR/$1/last.pt" ] || [ -f "$RESUME_DIR/$1/last16.pt" ]; then
    echo "--resume $RESUME_DIR/$1"
  elif [ -n "$INIT" ]; then echo "--init-weights $INIT"
  else echo ""; fi
}

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
    --deadline $DEADLINE $(resume_args "$name") $TRAIN_ARGS ${EXTRA[$name]}"
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
