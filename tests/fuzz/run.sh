#!/bin/sh
# Runs every built fuzz target for SECONDS each, starting from its seed corpus
# (tests/fuzz/corpus/<target>/). Exits non-zero on the first crash, leak or timeout.
set -eu
build=${1:?usage: run.sh BUILD_DIR [SECONDS]}
secs=${2:-30}
here=$(cd "$(dirname "$0")" && pwd)
work="$here/corpus-run/$(basename "$build")"
status=0
found=0
for exe in "$build"/tests/fuzz/fuzz_*; do
        [ -f "$exe" ] && [ -x "$exe" ] || continue
        found=$((found + 1))
        name=$(basename "$exe")
        target=${name#fuzz_}
        mkdir -p "$work/$target"
        seeds="$here/corpus/$target"
        [ -d "$seeds" ] || seeds=""
        echo "fuzz: $name for ${secs}s"
        if ! "$exe" -max_total_time="$secs" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
                -artifact_prefix="$work/$target-" "$work/$target" $seeds \
                >"$work/$target.log" 2>&1; then
                echo "fuzz: $name FAILED (log: $work/$target.log)"
                tail -40 "$work/$target.log"
                status=1
        else
                grep -E '^stat::number_of_executed_(runs|units)' "$work/$target.log" | sed "s/^/fuzz: $name /" || true
        fi
done
if [ "$found" -eq 0 ]; then
        echo "fuzz: no targets built in $build" >&2
        exit 1
fi
exit $status
