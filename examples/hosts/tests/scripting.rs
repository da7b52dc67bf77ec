//! Runs the Rhai scripting example and checks its output.

#[path = "../../../tests/common/mod.rs"]
mod common;

#[allow(dead_code)] // the example's `main` is not used here
#[path = "../examples/scripting.rs"]
mod scripting;

#[test]
fn a_script_blocks_on_async_work_served_by_other_tasks() {
    let (total, beats, lines) = common::watchdog(|| {
        let out = common::Captured::default();
        let (total, beats) = scripting::run(out.clone()).expect("the script runs");
        let text = out.text();
        (
            total,
            beats,
            text.lines().map(str::to_owned).collect::<Vec<_>>(),
        )
    });
    assert_eq!(total, 321);
    // Every fetch was answered by the service task while the script waited.
    let expected = [
        "script: start",
        "service: greeting -> \"hello\"",
        "script: fetched greeting = hello",
        "service: a -> \"1\"",
        "script: a = 1",
        "service: b -> \"20\"",
        "script: b = 20",
        "service: c -> \"300\"",
        "script: c = 300",
        "script: total = 321",
    ];
    assert_eq!(&lines[..expected.len()], expected);
    // The heartbeat kept going during the blocking calls (about 40 ms of them).
    assert!(beats >= 5, "only {beats} heartbeats while the script ran");
}
