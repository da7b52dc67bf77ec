//! Runs the sync-bridging example: a sync trait and a `Drop` impl that block
//! on async work while called from async code.

mod common;

#[allow(dead_code)] // the example's `main` is not used here
#[path = "../examples/sync_bridge.rs"]
mod sync_bridge;

#[test]
fn sync_trait_methods_and_drop_block_on_the_async_store() {
    let log = common::watchdog(sync_bridge::run);
    assert_eq!(
        log,
        [
            "put greeting=hello",
            "get greeting",
            "put copy=hello",
            "get copy",
            "get missing",
            "close session-1",
        ]
    );
}
