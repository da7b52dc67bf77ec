//! plugin-a's source, built as another shared object.
#[path = "../../a/src/lib.rs"]
mod plugin;
