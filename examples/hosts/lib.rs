//! The host programs are this package's examples (see Cargo.toml); this
//! library holds what they share with the package's tests and the
//! benches.

#[cfg(feature = "http")]
pub mod http;
