#!/usr/bin/env bash
# Line and region coverage that a fuzz harness's corpus reaches in the files it targets.
#
#   scripts/fuzz-coverage.sh NAME      (after scripts/fuzz.sh NAME ...; NAME as there)
#
# Builds .build-fuzz/mambasep-cover (the same sources with -profile-generate
# -profile-coverage-mapping, no AddressSanitizer), runs every input of .build-fuzz/corpus/NAME
# and fuzz/corpus/NAME once, and prints llvm-cov's report for the files the harness is about.
set -euo pipefail
cd "$(dirname "$0")/.."
name=${1:?usage: scripts/fuzz-coverage.sh safetensors|wavstream|audioreader}
case "$name" in
    safetensors) files=(Sources/MambaSep/Model/SafeTensors.swift Sources/MambaSep/Model/ModelConfig.swift Sources/MambaSep/Model/DPMamba.swift) ;;
    wavstream) files=(Sources/MambaSep/Audio/PCMStreamReader.swift Sources/MambaSep/Audio/PCMFormat.swift Sources/MambaSep/Audio/Channels.swift) ;;
    audioreader) files=(Sources/MambaSep/Audio/AudioReader.swift Sources/MambaSep/Audio/Channels.swift Sources/MambaSep/Audio/SampleRules.swift) ;;
    *) echo "fuzz-coverage.sh: unknown harness '$name'" >&2; exit 64 ;;
esac
out=.build-fuzz
bin=$out/mambasep-cover
. scripts/fuzz-build.sh
fuzz_build "$bin" "$out/build-cover.log" -sanitize=fuzzer -profile-generate -profile-coverage-mapping
# The toolchain's own LLVM tools read its profile format.
tools=$(dirname "$(readlink -f "$(command -v swiftc)")")
rm -f "$out/$name.profraw"
mkdir -p "$out/corpus/$name"
inputs=$(ls -d "$out/corpus/$name"/* fuzz/corpus/"$name"/* 2>/dev/null | wc -l)
OPENBLAS_NUM_THREADS=1 MAMBASEP_FUZZ_TARGET=$name LLVM_PROFILE_FILE="$out/$name.profraw" \
    nice -n 19 "$bin" -runs=0 "$out/corpus/$name" fuzz/corpus/"$name" > "$out/$name.cover.log" 2>&1
"$tools/llvm-profdata" merge -sparse "$out/$name.profraw" -o "$out/$name.profdata"
echo "coverage of $name's corpus ($inputs inputs):"
"$tools/llvm-cov" report "$bin" -instr-profile="$out/$name.profdata" "${files[@]}"
