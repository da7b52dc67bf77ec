#!/usr/bin/env bash
# Runs the tests that exercise nestloop's unsafe code (src/task/, src/sched/hold.rs and local.rs,
# src/sched/polled.rs, src/context/: task cells, holds, the poll record, the root table; with
# feature tokio, src/thread_context/runtime.rs) under Miri, with Stacked Borrows and with Tree Borrows.
set -euo pipefail
cd "$(dirname "$0")/.."

rustup component add --toolchain nightly miri rust-src
cargo +nightly miri setup

TESTS=(--lib --test nesting --test reentrancy --test panics --test cancellation
       --test executors --test fairness --test nest_asyncio --test api
       --test threads --test deadlock --test panic_points --test misuse --test interrupt
       --test diagnostics)

for model in "" "-Zmiri-tree-borrows"; do
    echo "== Miri ${model:-(Stacked Borrows)}"
    MIRIFLAGS="$model" cargo +nightly miri test -q -p nestloop "${TESTS[@]}"
    # Feature tokio's unsafe module: runtime contexts that follow a stack.
    MIRIFLAGS="$model" cargo +nightly miri test -q -p nestloop --features tokio --lib thread_context::runtime
done
