//! Nothing: the benchmarks are this package's bench targets (see Cargo.toml).
