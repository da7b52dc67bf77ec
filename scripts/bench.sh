#!/usr/bin/env bash
# Regenerates BENCHMARKS.md: runs every benchmark on nestloop and its peers
# in one go (several minutes), then tabulates the medians and the ratios.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo bench -p nestloop-benches --bench peers "$@"
cargo bench -p nestloop-benches --bench memory | grep '^|' > target/memory-table.md
cargo bench -p nestloop-benches --bench remote | grep '^|' > target/remote-table.md
python3 scripts/bench_table.py > BENCHMARKS.md
echo "wrote BENCHMARKS.md"
