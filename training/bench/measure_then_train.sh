#!/usr/bin/env bash
# One device call that measures first and trains with the rest of the call's time.
#
# Usage (from the repository root; carry .carry and .whl for the training part):
#   bash training/bench/measure_then_train.sh [--total SEC] [--measure-budget SEC] \
#       [--min-train SEC] --part N -- DEVICE_RUN_ARGS...
#
# Runs `training/bench/measure.sh --part N --budget MEASURE` (default 420 s) with its files
# packed into OUT/measure-partN.bundle.tgz (one file: device_run.sh writes 7 of the 8 that come
# back), then `training/device_run.sh --budget REST DEVICE_RUN_ARGS...`, REST being TOTAL
# (default 588, under a call's 600 s) less the time measuring took. The training takes the
# tiles measure.sh's log names "for training" (part 0: none, the default; part 1: the step
# winner; part 2: the tiles it measured): `--scan-tiles TILES` joins --train-args unless
# DEVICE_RUN_ARGS give it. With less than --min-train (default 240) s left it does not train:
# starting and compiling the models takes 100-150 s, and a piece that stops before its first
# checkpoint keeps nothing (run 8's first call lost 145 s so).
set -uo pipefail
T0=$(date +%s)
REPO=$(cd "$(dirname "$0")/../.." && pwd)
TOTAL=588; MB=420; PART=""; MIN_TRAIN=240
while [ $# -gt 0 ]; do
  case "$1" in
    --total) TOTAL=$2; shift 2 ;;
    --measure-budget) MB=$2; shift 2 ;;
    --part) PART=$2; shift 2 ;;
    --min-train) MIN_TRAIN=$2; shift 2 ;;
    --) shift; break ;;
    -h|--help) sed -n '3,16p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "measure_then_train.sh: unknown argument $1 (--help)" >&2; exit 2 ;;
  esac
done
case "$PART" in 0|1|2) ;; *) echo "measure_then_train.sh: --part 0, 1 or 2 (--help)" >&2; exit 2 ;; esac
OUT=${OUT:-$REPO/out}
M=$(mktemp -d)
OUT=$M bash "$REPO/training/bench/measure.sh" --part "$PART" --budget "$MB"
mkdir -p "$OUT" && tar -czf "$OUT/measure-part$PART.bundle.tgz" -C "$M" .
REST=$(( TOTAL - ($(date +%s) - T0) ))
if [ "$REST" -lt "$MIN_TRAIN" ]; then
  echo "[measure_then_train] measured in $(( TOTAL - REST ))s; ${REST}s left, under --min-train $MIN_TRAIN: no training"
  exit 0
fi
WIN=$(sed -n 's/.*tiles for training: //p' "$M/measure-part$PART.log" | tail -n 1)
case " $* " in *--scan-tiles*) WIN="" ;; esac
ARGS=(); FOUND=""
while [ $# -gt 0 ]; do           # the winner joins an existing --train-args, or comes as one
  if [ "$1" = --train-args ] && [ $# -ge 2 ]; then
    ARGS+=(--train-args "$2${WIN:+ --scan-tiles $WIN}"); FOUND=1; shift 2
  else
    ARGS+=("$1"); shift
  fi
done
[ -n "$FOUND" ] || [ -z "$WIN" ] || ARGS+=(--train-args "--scan-tiles $WIN")
echo "[measure_then_train] measured in $(( TOTAL - REST ))s; training for ${REST}s${WIN:+ with tiles $WIN}"
exec bash "$REPO/training/device_run.sh" --budget "$REST" "${ARGS[@]}"
