#!/usr/bin/env bash
# Runs each libFuzzer target for a bounded time under ASan + UBSan.
#
#   tests/fuzz/run.sh BUILD_DIR SECONDS
#
# Each target starts from the checked-in seeds (tests/fuzz/corpus/<target>)
# plus freshly generated ones (make_corpus), in a scratch corpus under
# BUILD_DIR/corpus/<target> so the checked-in corpus never grows. A crash,
# leak, sanitizer report or timeout fails the run; the input that caused it
# is left in BUILD_DIR/artifacts/. Prints executions per target.
set -euo pipefail
build=${1:?usage: run.sh BUILD_DIR SECONDS}
secs=${2:-60}
src=$(cd "$(dirname "$0")/../.." && pwd)
mkdir -p "$build/artifacts" "$build/corpus-gen"
"$build/bin/make_corpus" "$build/corpus-gen"
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=0}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
export LSAN_OPTIONS=${LSAN_OPTIONS:-suppressions=$src/tests/lsan.supp}
status=0
for target in fuzz_decode fuzz_stored fuzz_records; do
    work="$build/corpus/$target"
    rm -rf "$work"
    mkdir -p "$work"
    for f in "$src/tests/fuzz/corpus/$target/"*; do cp "$f" "$work/checked-in-${f##*/}"; done
    for f in "$build/corpus-gen/$target/"*; do cp "$f" "$work/generated-${f##*/}"; done
    log="$build/$target.log"
    echo "== fuzz: $target for ${secs}s"
    if "$build/bin/$target" -max_total_time="$secs" -timeout=10 -rss_limit_mb=2048 \
        -max_len=65536 -print_final_stats=1 -artifact_prefix="$build/artifacts/$target-" \
        "$work" >"$log" 2>&1; then
        runs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$log" | grep -o '[0-9]*$' || true)
        cov=$(grep -o 'cov: [0-9]*' "$log" | tail -1 || true)
        echo "   ok: ${runs:-?} executions, $cov, corpus $(ls "$work" | wc -l) inputs"
    else
        echo "   FAILED: see $log and $build/artifacts/"
        tail -40 "$log"
        status=1
    fi
done
exit $status
