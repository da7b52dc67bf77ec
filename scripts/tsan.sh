#!/usr/bin/env bash
# Runs the tests that cross threads under ThreadSanitizer (nightly, with the
# standard library rebuilt instrumented): the threads and stress tests, a
# short soak, and the tokio tests. Prints TSan's reports and fails on any.
set -euo pipefail
cd "$(dirname "$0")/.."

rustup component add --toolchain nightly rust-src
target="$(rustc -vV | sed -n 's/^host: //p')"
export RUSTFLAGS="-Zsanitizer=thread"
export RUSTDOCFLAGS="-Zsanitizer=thread"
# A data race is a failure. Races TSan cannot judge (synchronization
# through the kernel) are listed, with the reason, in the suppressions file.
export TSAN_OPTIONS="halt_on_error=1 second_deadlock_stack=1 suppressions=$PWD/scripts/tsan-suppressions.txt"
tsan=(cargo +nightly test -q -Zbuild-std --target "$target" --target-dir target/tsan)

"${tsan[@]}" --test threads --test stress
SOAK_SECS="${SOAK_SECS:-3}" "${tsan[@]}" --test stress soak -- --ignored
"${tsan[@]}" --features tokio --test tokio
echo "ThreadSanitizer: no reports"
