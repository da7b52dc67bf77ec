#!/usr/bin/env bash
# Compares two commits of nestloop on its own workloads, on the same
# machine at the same time: builds scripts/compare/main.rs against each
# (release), then runs the two builds in alternation, ROUNDS rounds each
# workload, pinned to one CPU (this machine's two vCPUs run at different
# speeds), and prints the median of each build's best-of-20 times per
# operation, with new/old ratios. Also counts instructions (callgrind, one
# run each) where valgrind is installed: repeatable where times are not.
#
#   scripts/compare.sh OLD [NEW]      # NEW defaults to the work tree
#   ROUNDS=9 IDLE=100 scripts/compare.sh HEAD~3
#
# IDLE=N runs every workload with N other executors on the thread, each
# with a pending task. OLD_EXECUTOR / NEW_EXECUTOR replace the executor the
# workloads run on in that build (an expression), e.g. to compare fibers on
# and off in one tree:
#
#   NEW_EXECUTOR='Executor::builder().fibers(true).build()' scripts/compare.sh HEAD
set -euo pipefail
cd "$(dirname "$0")/.."
old=${1:?usage: scripts/compare.sh OLD [NEW]}
new=${2:-}
rounds=${ROUNDS:-5}
idle=${IDLE:-0}
work=target/compare
mkdir -p "$work"

build() { # build NAME SOURCE_DIR [EXECUTOR]
    local dir="$work/$1"
    mkdir -p "$dir"
    sed "s|^    let ex = Executor::new();|    let ex = ${3:-Executor::new()};|" scripts/compare/main.rs > "$dir/main.rs"
    sed "s|@NESTLOOP@|$2|" scripts/compare/Cargo.toml.in > "$dir/Cargo.toml"
    (cd "$dir" && cargo build -q --release) >&2
    echo "$dir/target/release/compare"
}

checkout() { # checkout REV -> a directory with that commit's tree
    local dir="$work/tree-$(git rev-parse --short "$1")"
    if [ ! -d "$dir" ]; then
        git worktree add -f --detach "$dir" "$1" >&2
    fi
    (cd "$dir" && pwd)
}

old_bin=$(build old "$(checkout "$old")" "${OLD_EXECUTOR:-}")
if [ -n "$new" ]; then new_src=$(checkout "$new"); else new_src=$(pwd); fi
new_bin=$(build new "$new_src" "${NEW_EXECUTOR:-}")

pin=()
command -v taskset >/dev/null && pin=(taskset -c 0)
median() { sort -g | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
instructions() {
    valgrind --tool=callgrind --callgrind-out-file=/dev/null "$@" 2>&1 |
        sed -n 's/.*refs: *\([0-9,]*\).*/\1/p' | tr -d ,
}

printf '| workload | old (ns/op) | new (ns/op) | new/old |'
command -v valgrind >/dev/null && printf ' instructions old | new | new/old |'
echo
printf '|---|---|---|---|'
command -v valgrind >/dev/null && printf '%s' '---|---|---|'
echo
for w in $("$old_bin" list); do
    o=(); n=()
    for _ in $(seq "$rounds"); do
        o+=("$("${pin[@]}" "$old_bin" "$w" 20 "$idle")")
        n+=("$("${pin[@]}" "$new_bin" "$w" 20 "$idle")")
    done
    mo=$(printf '%s\n' "${o[@]}" | median)
    mn=$(printf '%s\n' "${n[@]}" | median)
    printf '| %s | %s | %s | %.3f |' "$w" "$mo" "$mn" "$(echo "$mn / $mo" | bc -l)"
    if command -v valgrind >/dev/null; then
        io=$(instructions "$old_bin" "$w" 1 "$idle")
        in=$(instructions "$new_bin" "$w" 1 "$idle")
        printf ' %s | %s | %.3f |' "$io" "$in" "$(echo "$in / $io" | bc -l)"
    fi
    echo
done
