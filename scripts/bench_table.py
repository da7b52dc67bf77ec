#!/usr/bin/env python3
"""Turns criterion's results (target/criterion) and the memory table into
BENCHMARKS.md: time per operation on each executor, and nestloop's ratio to
the best peer."""
import datetime
import json
import os
import platform
import subprocess

CRITERION = "target/criterion"
PEERS = ["tokio current_thread", "tokio LocalSet", "futures LocalPool", "async-executor"]
# Workload -> target ratio to the best peer (issue #4).
TARGETS = {
    "spawn 10k tasks, await all (per task)": 0.67,
    "200 tasks x 100 yields (per yield)": 0.67,
    "1k task pairs, oneshot each way (per pair)": 0.67,
    "top-level block_on(ready) (per call)": 1.0,
    "another thread sends 100k messages (per message)": 1.0,
    "chain of 1k spawns (per spawn)": 0.67,
}
# The cross-thread message row, judged by its interleaved rounds.
REMOTE = "another thread sends 100k messages (per message)"
OTHERS = [
    "another thread echoes 500 messages (per round trip)",
    "nested call of a ready future, from a task (per call)",
    "nested call waiting for a sibling task (per call)",
    "10k sleeps of 1-5 ms that fire (per sleep)",
    "10k sleeps polled once and dropped (per sleep)",
    "another thread spawns 10k tasks (per task)",
    "200 tasks x 100 yields, idle executors beside (per yield)",
]


def per_op(group, bench):
    """Median nanoseconds per operation, or None."""
    base = os.path.join(CRITERION, group, bench, "new")
    try:
        with open(os.path.join(base, "estimates.json")) as f:
            median = json.load(f)["median"]["point_estimate"]
        with open(os.path.join(base, "benchmark.json")) as f:
            throughput = json.load(f).get("throughput") or {}
    except (OSError, KeyError, ValueError):
        return None
    elements = throughput.get("Elements", 1)
    return median / elements


def fmt(ns):
    if ns is None:
        return "-"
    if ns >= 1000:
        return f"{ns / 1000:.2f} µs"
    return f"{ns:.1f} ns"


def print_table(bench):
    """Prints the Markdown table that `cargo bench --bench <bench>` left in
    target/ (see scripts/bench.sh)."""
    try:
        with open(f"target/{bench}-table.md") as f:
            print(f.read().rstrip())
    except OSError:
        print(f"(run `cargo bench --bench {bench}`)")


def interleaved_ratio():
    """nestloop's ratio in the interleaved cross-thread table, or None."""
    try:
        with open("target/remote-table.md") as f:
            for line in f:
                cells = [c.strip() for c in line.strip().strip("|").split("|")]
                if cells[0] == "nestloop":
                    return float(cells[2])
    except (OSError, ValueError, IndexError):
        pass
    return None


def machine():
    cpu = "unknown CPU"
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    rustc = subprocess.run(["rustc", "--version"], capture_output=True, text=True).stdout.strip()
    return f"{cpu}, {os.cpu_count()} cores, {platform.system()} {platform.machine()}, {rustc}"


def main():
    print("# Benchmarks")
    print()
    print("nestloop against tokio (current_thread, and a LocalSet on it), futures'")
    print("LocalPool and async-executor's LocalExecutor, on the same workloads in one")
    print("run. Median time per operation; lower is better. The ratio is nestloop's")
    print("time over the best peer's (below 1.0: nestloop is faster).")
    print()
    print(f"Machine: {machine()}. Run on {datetime.date.today().isoformat()}.")
    print("Shared, noisy machines move absolute numbers by 10-20% between runs;")
    print("compare ratios within one run.")
    print()
    print("Regenerate with:")
    print()
    print("```sh")
    print("scripts/bench.sh")
    print("```")
    print()
    print("| workload | nestloop | " + " | ".join(PEERS) + " | best peer | ratio | target |")
    print("|---|" + "---|" * (len(PEERS) + 4))
    for group, target in TARGETS.items():
        ours = per_op(group, "nestloop")
        peers = [per_op(group, p) for p in PEERS]
        known = [p for p in peers if p is not None]
        best = min(known) if known else None
        ratio = f"{ours / best:.2f}" if ours and best else "-"
        judged = ours / best if ours and best else None
        if group == REMOTE and interleaved_ratio() is not None:
            # Criterion runs the executors one after another, and this row
            # moves by 2-3x when the machine changes regime in between; the
            # interleaved rounds (below) run all of them under the same
            # conditions, so the verdict comes from there.
            judged = interleaved_ratio()
            ratio += f" (interleaved: {judged:.2f})"
        met = "met" if judged is not None and judged <= target else "not met"
        cells = " | ".join(fmt(p) for p in peers)
        print(f"| {group} | {fmt(ours)} | {cells} | {fmt(best)} | {ratio} | ≤ {target} ({met}) |")
    print()
    print("The cross-thread message row measures the channel and the allocator more")
    print("than the executor: in a profile, nestloop's own code is under 2% of the")
    print("samples (malloc and free of the channel's nodes, the channel and its")
    print("`AtomicWaker` take the rest, in the same shares for tokio). On this")
    print("shared 2-core machine the row has two regimes that switch over minutes.")
    print("In the slow one (about 240 ns per message) all five executors stay")
    print("within 1-3% of each other: a full run of this table that fell there")
    print("read 1.03 for nestloop, LocalPool and async-executor alike and")
    print("1.00-1.01 for the two tokio flavours, so the row's verdict is a tie,")
    print("whichever side of 1.0 it lands. In the fast one (about 80-115 ns) what")
    print("differs is rhythm, not work. A receiver polled as soon as the sender's")
    print("wake lands takes a few dozen messages per wake, and every wake costs")
    print("the sender an unpark system call and both threads cache misses on the")
    print("channel's shared state; tokio's loop passes through `epoll_wait`")
    print("between polls, which lets bigger batches pile up. nestloop's `block_on`")
    print("loop tells a stream from a reply: work from another thread that arrives")
    print("less than 2 µs after the loop went idle, or while it was busy, waits")
    print("3 µs (the loop yields its thread) before its poll, so the receiver")
    print("takes a couple of hundred messages per wake (a third as many futex")
    print("calls per million messages). A wake that comes later, like the echo in")
    print("the round-trip row below, is polled at once: in a run of that row the")
    print("pause fired for 2 of 280,000 wakes. An earlier version paused on every")
    print("wake from another thread (commits 7c4d581, reverted in 2a80c64) and")
    print("made that round trip 30% slower.")
    print("The other rows are stable to a few percent.")
    print()
    print("The same workload with the executors interleaved (`cargo bench --bench")
    print("remote`: 31 rounds, each executor once per round in rotating order, so")
    print("all of them run under the same conditions), median per message. The")
    print("row's verdict above comes from here: criterion runs the executors one")
    print("after another, and when the machine switches regime in between, the")
    print("criterion ratio lands anywhere from 0.37 to 2.94 (two runs of this")
    print("table).")
    print()
    print_table("remote")
    print()
    print("## Memory")
    print()
    print("Bytes (and allocations) per spawned pending task, counted by a global")
    print("allocator, including the amortized growth of queues and task lists")
    print("(`cargo bench --bench memory`). Target for nestloop: ≤ 64 bytes for an")
    print("empty future.")
    print()
    print("Where nestloop's bytes go for an empty future: the task is one")
    print("allocation of 64 bytes and nothing else grows with it. Eight words:")
    print("the state word (flags, the awaiter's lock bit, the reference count),")
    print("the vtable, the executor's shared part, the two links of the")
    print("executor's task list (so shutdown reaches every pending task), the")
    print("link of the local run queue (linked through the tasks: no buffer to")
    print("grow), the awaiter's waker in one word (the wakers nestloop makes,")
    print("a task's or a `block_on`'s, are stored as their data pointer; any")
    print("other waker is boxed when it registers), and the future, which")
    print("shares its bytes with the result")
    print("(the state word says which one is there).")
    print()
    print_table("memory")
    print()
    print("## Nesting, timers and other threads")
    print()
    print("| workload | results (per operation) |")
    print("|---|---|")
    for group in OTHERS:
        path = os.path.join(CRITERION, group)
        if not os.path.isdir(path):
            continue
        results = []
        for bench in sorted(os.listdir(path)):
            if bench == "report":
                continue
            results.append(f"{bench}: {fmt(per_op(group, bench))}")
        print(f"| {group} | " + "; ".join(results) + " |")
    print()
    print("Every loop runs the tasks of every executor of its thread (R1) from one")
    print("run queue, so an executor with no ready task costs the loops nothing:")
    print("the last row runs the yield workload alone on its thread and beside 100")
    print("executors that each hold a pending task.")
    print()
    print("## Comparing commits")
    print()
    print("`scripts/compare.sh OLD [NEW]` builds nestloop's own workloads")
    print("(`scripts/compare/main.rs`) against two commits and runs the builds in")
    print("alternation, pinned to one CPU, with instruction counts from")
    print("callgrind: how a change is checked for slowdowns. `IDLE=100` adds 100")
    print("idle executors to the thread.")
    print()
    # Measured by other benches (helpers, compare.sh) and summarised by
    # hand: kept as they are when this file is regenerated.
    print(STATIC_SECTIONS, end="")


STATIC_SECTIONS = """## HTTP on one thread

`cargo bench -p nestloop-benches --bench http --features http` (run of
2026-12-06, release): 100 GET requests per iteration with reqwest, one
after another over one kept-alive connection, to a hyper server on
127.0.0.1 that is a task of the same executor; everything on the
benchmark's thread, no tokio worker threads.

| row | requests per second | time per request | vs tokio |
|---|---|---|---|
| nestloop, a task's synchronous helper `block_on`s each request (fibers) | 22,773 | 43.9 µs | 0.85 |
| nestloop, the same helper with fibers off (nested loops) | 21,482 | 46.6 µs | 0.80 |
| nestloop, awaited in the `block_on` future | 24,196 | 41.3 µs | 0.90 |
| tokio current_thread (`LocalSet` for the server), awaited | 26,803 | 37.3 µs | 1 |

## Fibers (R12)

`cargo bench -p nestloop-benches --bench helpers` (run of 2026-12-06,
release): synchronous helpers that wait in a `block_on` inside a task,
with fibers on (`Builder::fibers(true)`: the call suspends its task's
stack) and off (the call nests a loop), against the same work awaited
directly.

The server scenario: connections arriving at a fixed interval, each
handler waiting 20-50 ms; latency is what a client waits beyond the work.

| connections, arrivals | mode | p50 | p99 | deepest depth() |
|---|---|---|---|---|
| 200, 100 µs apart | helper, fibers | 0.1 ms | 0.1 ms | 1 |
| 200, 100 µs apart | helper, nested loops | 24.4 ms | 46.9 ms | 200 |
| 200, 100 µs apart | awaited directly | 0.1 ms | 0.1 ms | 1 |
| 200, 5000 µs apart | helper, fibers | 0.1 ms | 0.6 ms | 1 |
| 200, 5000 µs apart | helper, nested loops | 510.2 ms | 996.2 ms | 200 |
| 200, 5000 µs apart | awaited directly | 0.1 ms | 0.2 ms | 1 |
| 2000, 100 µs apart | helper, fibers | 0.1 ms | 0.1 ms | 1 |
| 2000, 100 µs apart | helper, nested loops | 114.8 ms | 218.6 ms | 2000 |
| 2000, 100 µs apart | awaited directly | 0.1 ms | 0.1 ms | 1 |

| a call waiting for a sibling task | per call |
|---|---|
| helper, fibers | 388.0 ns |
| helper, nested loops | 323.0 ns |
| awaited directly | 207.0 ns |

| 10,000 calls waiting at once, 2 MiB thread | resident per call |
|---|---|
| helper, fibers | 4.8 KiB |
| helper, nested loops | 0.4 KiB |
| awaited directly | 0.0 KiB |

nestloop's own workloads with fibers on against fibers off, one tree,
`NEW_EXECUTOR='Executor::builder().fibers(true).build()'
scripts/compare.sh HEAD` (time per operation; instruction counts from
callgrind): nothing that does not wait pays for fibers.

| workload | fibers off (ns/op) | on (ns/op) | on/off | instructions on/off |
|---|---|---|---|---|
| spawn | 56.67 | 57.22 | 1.010 | 1.000 |
| yield | 15.32 | 14.77 | 0.964 | 1.000 |
| pingpong | 285.00 | 286.86 | 1.007 | 1.001 |
| chain | 57.33 | 58.28 | 1.017 | 1.002 |
| ready | 3.41 | 3.25 | 0.953 | 1.000 |
| nested_ready | 17.64 | 14.01 | 0.794 | 0.887 |
| nested_sibling (waits) | 213.13 | 269.75 | 1.266 | 1.097 |
| remote_messages | 70.19 | 70.79 | 1.009 | 1.000 |
| round_trips | 6228.52 | 6249.68 | 1.003 | 0.996 |
| sleeps_fire | 568.39 | 568.18 | 1.000 | 1.000 |
| sleeps_dropped | 105.77 | 106.06 | 1.003 | 1.000 |
| remote_spawn | 97.22 | 97.43 | 1.002 | 1.000 |

A nested ready call is faster on a fiber: the depth check reads the
fiber's known bounds instead of asking for the thread's.

## Summary

Reentrancy costs nothing on the hot path: the outermost `block_on` of a
ready future takes 2.9 ns, against 3.6 ns for futures' LocalPool in the
same run, and a frame is pushed only when something looks for it.
Against the best of tokio (current_thread and LocalSet), futures'
LocalPool and async-executor on their own workloads, in one run on a
2-core machine: spawning and awaiting a task 0.36 of the best peer's time,
yields 0.41, ping-pong pairs 0.65, chained spawns 0.57. Messages streamed
from another thread take 0.94 of the best peer's time (tokio) when the
machine runs both threads fast, and all five executors tie within 3% when
it runs them slowly (the cross-thread row above says why). A round trip
to another thread takes 9.7 µs (async-executor 9.2, tokio 10.5). A nested
`block_on` of a ready future costs 10 ns; an empty pending task takes 80
bytes in one allocation (async-executor: 114, tokio: 141).
"""


if __name__ == "__main__":
    main()
