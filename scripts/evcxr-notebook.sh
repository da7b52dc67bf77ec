#!/usr/bin/env bash
# Runs the notebook cells of docs/HOSTS.md ("Jupyter notebooks (evcxr)") in evcxr (the REPL of the Rust Jupyter
# kernel, `cargo install evcxr_repl`), against this checkout, and checks
# what they print: a task spawned in one cell runs while a later cell
# blocks, a later cell awaits a task of an earlier one, an async cell waits
# through nestloop::block_on, and a cell's deadline ends its wait. Not part of
# CI (evcxr takes about 15 minutes to build); run it by hand.
set -euo pipefail
cd "$(dirname "$0")/.."
command -v evcxr >/dev/null || { echo "evcxr not found: cargo install evcxr_repl"; exit 2; }
root=$(pwd)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
# One line per cell, as evcxr reads them.
cat > "$work/cells" <<CELLS
:dep nestloop = { path = "$root" }
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;
let ticks = Arc::new(AtomicUsize::new(0));
let t = ticks.clone(); let ticker = nestloop::spawn(async move { while t.fetch_add(1, Ordering::SeqCst) < 1_000_000 { nestloop::time::sleep(Duration::from_millis(5)).await; } });
nestloop::block_on(nestloop::time::sleep(Duration::from_millis(200)));
println!("ticks after 200 ms: {}", ticks.load(Ordering::SeqCst));
let job = nestloop::spawn(async { nestloop::time::sleep(Duration::from_millis(20)).await; 6 * 7 });
println!("job: {:?}", nestloop::block_on(job));
let later = nestloop::spawn(async { nestloop::time::sleep(Duration::from_millis(20)).await; 6 * 7 });
async {}.await; let got = nestloop::block_on(async { nestloop::time::sleep(Duration::from_millis(20)).await; later.await.unwrap() }); println!("async cell: {}", got);
let bounded = nestloop::block_on(nestloop::time::timeout(Duration::from_millis(50), nestloop::time::sleep(Duration::from_secs(3600)))); println!("bounded wait: {:?}, ticker alive: {}", bounded.is_err(), !ticker.is_finished());
CELLS
out=$(timeout 600 evcxr < "$work/cells" 2>&1 | grep -v '^ *Compiling' || true)
echo "$out"
ticks=$(echo "$out" | sed -n 's/^ticks after 200 ms: \([0-9]*\)$/\1/p')
[ -n "$ticks" ] && [ "$ticks" -ge 10 ] || { echo "FAIL: the ticker of an earlier cell did not run ($ticks ticks)"; exit 1; }
echo "$out" | grep -q '^job: Ok(42)$' || { echo "FAIL: a later cell could not await a task of an earlier one"; exit 1; }
echo "$out" | grep -q '^async cell: 42$' || { echo "FAIL: an async cell could not wait through nestloop::block_on"; exit 1; }
echo "$out" | grep -q '^bounded wait: true, ticker alive: true$' || { echo "FAIL: a cell's deadline did not end its wait"; exit 1; }
echo "ok: $ticks ticks during the 200 ms cell; the job of one cell awaited in the next"
