#!/usr/bin/env bash
# Runs one libFuzzer harness of fuzz/Harness.swift for SECONDS (default 60).
#
#   scripts/fuzz.sh NAME [SECONDS] [extra libFuzzer flags...]
#   NAME: safetensors | wavstream | audioreader
#
# Builds .build-fuzz/mambasep-fuzz (swiftc -sanitize=fuzzer,address, -O: bounds and overflow
# checks stay on, unlike the release build's -Ounchecked) from the library's sources when they
# changed, copies the committed seeds (fuzz/corpus/NAME) into .build-fuzz/corpus/NAME (where the
# corpus grows between runs), and runs with crash files written to .build-fuzz/artifacts/NAME/.
# Prints libFuzzer's final statistics (executions, coverage) as the last lines. Exits non-zero
# when the harness found a crash, a leak or a timeout. Runs at nice 19 on a shared machine.
set -euo pipefail
cd "$(dirname "$0")/.."

name=${1:?usage: scripts/fuzz.sh safetensors|wavstream|audioreader [SECONDS] [libFuzzer flags]}
seconds=${2:-60}
shift $(( $# >= 2 ? 2 : 1 ))
case "$name" in safetensors|wavstream|audioreader) ;; *) echo "fuzz.sh: unknown harness '$name'" >&2; exit 64 ;; esac

out=.build-fuzz
bin=$out/mambasep-fuzz
. scripts/fuzz-build.sh
fuzz_build "$bin" "$out/build.log" -sanitize=fuzzer,address

corpus=$out/corpus/$name
artifacts=$out/artifacts/$name
mkdir -p "$corpus" "$artifacts"
cp -n fuzz/corpus/"$name"/* "$corpus"/ 2>/dev/null || true
# Small inputs keep the rate high; a real small model needs about 16 KB.
case "$name" in safetensors) maxlen=32768 ;; *) maxlen=4096 ;; esac
# OpenBLAS threads are not what is being fuzzed; one keeps the runs deterministic.
export OPENBLAS_NUM_THREADS=1
export MAMBASEP_FUZZ_TARGET=$name
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:allocator_may_return_null=1}
export LSAN_OPTIONS=${LSAN_OPTIONS:-suppressions=$PWD/fuzz/lsan.supp:print_suppressions=0}
log=$out/$name.log
set +e
nice -n 19 "$bin" "$corpus" fuzz/corpus/"$name" -max_total_time="$seconds" -max_len="$maxlen" -timeout=10 \
    -rss_limit_mb=2048 -print_final_stats=1 -artifact_prefix="$artifacts/" "$@" 2>&1 | tee "$log" | grep -E "^#[0-9]+.*(pulse|DONE)|ERROR|SUMMARY|artifact|stat::" >&2
status=${PIPESTATUS[0]}
set -e
echo "fuzz.sh: $name: $(grep -E '^stat::number_of_executed_units' "$log" | awk '{print $2}') executions, exit $status, log $log" >&2
exit "$status"
