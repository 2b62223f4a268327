#!/usr/bin/env bash
# The test suite under the sanitizers, each in its own scratch folder (the CLI tests then run a
# sanitized mambasep binary too):
#
#   scripts/sanitize.sh thread     swift test --sanitize=thread over the streaming tests (reader
#                                  thread, bounded queue, SeparationStream, the stream CLI)
#   scripts/sanitize.sh address    swift test --sanitize=address over the whole suite
#   scripts/sanitize.sh            both
#
# Runs at nice 19; each build takes several minutes on two cores. Exits non-zero when a test
# fails or a sanitizer reports (a report makes the test process fail). The logs stay in
# .build-tsan/test.log and .build-asan/test.log.
set -euo pipefail
cd "$(dirname "$0")/.."
kinds=("${@:-thread address}")
status=0
for kind in ${kinds[*]}; do
    case "$kind" in
        thread)
            scratch=.build-tsan
            filter=(--filter 'StreamingPipelineTests|StreamCLITests|SeparationStreamTests|PCMStreamTests|BadInputMatrixTests')
            # halt_on_error: the first race fails the run instead of scrolling by.
            export TSAN_OPTIONS=${TSAN_OPTIONS:-halt_on_error=1:second_deadlock_stack=1}
            ;;
        address)
            scratch=.build-asan
            filter=()
            export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:halt_on_error=1}
            export LSAN_OPTIONS=${LSAN_OPTIONS:-suppressions=$PWD/scripts/sanitize-lsan.supp:print_suppressions=0}
            ;;
        *) echo "sanitize.sh: unknown sanitizer '$kind' (thread or address)" >&2; exit 64 ;;
    esac
    mkdir -p "$scratch"
    # Reuse the dependencies already resolved in .build (no network needed).
    if [ ! -d "$scratch/checkouts" ] && [ -d .build/checkouts ]; then
        cp -a .build/checkouts .build/repositories .build/workspace-state.json "$scratch"/ 2>/dev/null || true
    fi
    log=$scratch/test.log
    echo "sanitize.sh: swift test --sanitize=$kind ${filter[*]} (log $log)" >&2
    set +e
    nice -n 19 swift test --scratch-path "$scratch" --sanitize="$kind" "${filter[@]}" > "$log" 2>&1
    rc=$?
    set -e
    grep -aE "WARNING: ThreadSanitizer|ERROR: AddressSanitizer|ERROR: LeakSanitizer|SUMMARY: |error: .*(failed|XCTAssert)" "$log" | sort | uniq -c | head -n 20 >&2 || true
    grep -aE "Executed [0-9]+ tests?" "$log" | tail -n 1 >&2 || true
    echo "sanitize.sh: $kind: exit $rc" >&2
    [ "$rc" = 0 ] || status=1
done
exit "$status"
