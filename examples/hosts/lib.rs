//! Nothing: the host programs are this package's examples (see Cargo.toml).
