#!/usr/bin/env bash
# Runs the test binaries under valgrind memcheck: zero errors and zero
# definite leaks, or this fails. Tests that only measure scale or time are
# skipped (valgrind runs code ~50x slower).
set -euo pipefail
cd "$(dirname "$0")/.."

command -v valgrind >/dev/null || { echo "valgrind is not installed" >&2; exit 1; }

SKIP=(
    --skip a_million_spawned_tasks         # scale, not memory
    --skip thousand_deep_nesting           # scale, not memory
    --skip soak                            # time-bound
    --skip sleeps_instead_of_spinning      # measures CPU time
    --skip with_detection_off_the_call_waits # leaves a parked thread behind
    --skip a_thousand_helpers_each_return_near_their_own_deadline # timing
    --skip ten_thousand_helpers_wait_at_once # scale (10,000 fibers)
)

# Build the test binaries and collect their paths.
mapfile -t BINARIES < <(
    cargo test --no-run --message-format=json 2>/dev/null |
        python3 -c '
import json, sys
for line in sys.stdin:
    msg = json.loads(line)
    if msg.get("reason") == "compiler-artifact" and msg.get("profile", {}).get("test") and msg.get("executable"):
        print(msg["executable"])
'
)

status=0
for bin in "${BINARIES[@]}"; do
    echo "== valgrind $(basename "$bin")"
    if ! PROPTEST_CASES=16 valgrind -q --error-exitcode=99 --leak-check=full \
        --errors-for-leak-kinds=definite --show-leak-kinds=definite \
        "$bin" -q --test-threads=1 "${SKIP[@]}"; then
        echo "!! valgrind reported errors or definite leaks in $(basename "$bin")"
        status=1
    fi
done
exit $status
