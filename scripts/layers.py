#!/usr/bin/env python3
"""Checks that src/'s top-level modules import only the layers below them.

The layers, lowest first (see CONTRIBUTING.md). A module may name any module
of a lower layer; `task` and `sched` name each other (a woken task must know
where to queue, and the executor runs its tasks): the one declared cycle.
Imports are read from `crate::NAME` paths and `use crate::{...}` lists
outside `#[cfg(test)] mod ... {` blocks and `tests.rs` files (tests may reach
anywhere).

Also checks that every file allowing unsafe code opens with an "Invariant:"
paragraph and is at most 400 lines, and that no file is over 600 lines.

Run from the project root: `python3 scripts/layers.py`. Exits 1 on a breach.
"""
import os
import re
import sys

LAYERS = [
    ["sync", "yield_now"],  # the loom shim; a leaf that names no module
    ["thread_context"],  # the one thread-local, shared by copies of a build
    ["tokio"],  # tokio interop: with_runtime, blocking, the advice
    ["task_local"],  # task-local keys, and the poll marks the loops set
    ["park"],  # thread identity, wakeups, the timer heap
    ["fiber"],  # stacks of their own (R12): the switch and the stack pool
    ["reactor"],  # async-io's and tokio's reactors, driven while a loop waits
    ["task", "sched"],  # a task's life; executors and where a wake goes
    ["context"],  # the thread's state: frame stack, roots, registry
    ["time"],  # sleep, timeout, interval
    ["run_loop"],  # block_on, run_until_stalled, the step
    ["executor"],  # the public handles' methods
    ["join_set"],  # JoinSet, which spawns as the crate's free `spawn` does
]
RANK = {name: i for i, layer in enumerate(LAYERS) for name in layer}
ROOT = "src"

problems = []


def top_module(path):
    first = os.path.relpath(path, ROOT).split(os.sep)[0]
    return first[:-3] if first.endswith(".rs") else first


for directory, _, names in os.walk(ROOT):
    for name in sorted(names):
        if not name.endswith(".rs"):
            continue
        path = os.path.join(directory, name)
        text = open(path, encoding="utf-8").read()
        lines = text.count("\n")
        if lines > 600:
            problems.append(f"{path}: {lines} lines (over 600)")
        if "allow(unsafe_code)" in text:
            if lines > 400:
                problems.append(f"{path}: unsafe file of {lines} lines (over 400)")
            if "Invariant:" not in "".join(text.splitlines(True)[:40]):
                problems.append(f"{path}: unsafe file without an Invariant: paragraph")
        me = top_module(path)
        if me == "lib" or name == "tests.rs":
            continue  # the crate root, and unit tests, may name anything
        tests = re.search(r"#\[cfg\(test\)\]\s*mod\s+\w+\s*\{", text)
        if tests:
            text = text[: tests.start()]
        named = set(re.findall(r"crate::(\w+)", text))
        for group in re.findall(r"use crate::\{([^}]*)\}", text):
            named |= set(re.findall(r"(?:^|,)\s*(\w+)", group))
        for other in sorted(named):
            if other in ("self", me) or other not in RANK:
                continue
            if RANK[other] > RANK[me] or (
                RANK[other] == RANK[me] and {me, other} != {"task", "sched"}
            ):
                problems.append(f"{path}: {me} names {other}, a layer above or beside it")
        if me not in RANK:
            problems.append(f"{path}: module {me} is in no layer (add it to LAYERS)")

for problem in problems:
    print(problem)
print("layers:", "ok" if not problems else f"{len(problems)} problem(s)")
sys.exit(1 if problems else 0)
