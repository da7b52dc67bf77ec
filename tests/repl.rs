//! Drives the REPL example with scripted input and checks its output.

mod common;

#[allow(dead_code)] // the example's `main` is not used here
#[path = "../examples/repl.rs"]
mod repl;

use std::io;
use std::time::Duration;

use common::watchdog;

/// Runs the REPL on `script` and returns its output lines.
fn run_script(script: &'static str) -> Vec<String> {
    watchdog(move || {
        let out = common::Captured::default();
        let repl = repl::Repl::new(out.clone());
        repl.run(io::Cursor::new(script), false);
        let text = out.text();
        text.lines().map(str::to_owned).collect()
    })
}

#[test]
fn ticks_keep_coming_while_a_line_sleeps() {
    let lines = run_script("spawn tick 20\nsleep 200\ntasks\nquit\n");
    assert_eq!(lines[0], "spawned tick (every 20 ms)");
    let slept = lines.iter().position(|l| l == "slept 200 ms").unwrap();
    let ticks_during_sleep = lines[1..slept]
        .iter()
        .filter(|l| l.starts_with("tick tick "))
        .count();
    assert!(
        ticks_during_sleep >= 5,
        "only {ticks_during_sleep} ticks during the sleep: {lines:?}"
    );
    assert!(
        lines
            .iter()
            .any(|l| l.starts_with("tick: ") && l.ends_with("every 20 ms"))
    );
    assert!(lines.contains(&"1 live tasks".to_owned()));
    assert_eq!(lines.last().unwrap(), "bye");
}

#[test]
fn wait_cancel_and_errors() {
    let lines = run_script(
        "spawn t 10\nwait t 1000\ncancel t\ntasks\nwait t 10\ncancel t\nspawn t x\nfrobnicate\nhelp\n",
    );
    assert!(
        lines.iter().any(|l| l.starts_with("t ticked (")),
        "{lines:?}"
    );
    assert!(lines.contains(&"cancelled t".to_owned()));
    assert!(lines.contains(&"0 live tasks".to_owned()), "{lines:?}");
    assert_eq!(lines.iter().filter(|l| *l == "no task named t").count(), 2);
    assert!(lines.contains(&"usage: spawn NAME MS (MS > 0)".to_owned()));
    assert!(
        lines
            .iter()
            .any(|l| l.starts_with("unknown command: frobnicate"))
    );
    assert!(lines.iter().any(|l| l.starts_with("commands: ")));
    // End of input without `quit` exits cleanly.
    assert_eq!(lines.last().unwrap(), "bye");
}

#[test]
fn wait_times_out_when_no_tick_comes() {
    let lines = run_script("spawn slow 10000\nwait slow 30\nquit\n");
    assert!(
        lines.contains(&"no tick from slow within 30 ms".to_owned()),
        "{lines:?}"
    );
}

#[test]
fn an_interrupt_ends_the_running_line_and_the_repl_goes_on() {
    let lines = watchdog(|| {
        let out = common::Captured::default();
        let repl = repl::Repl::new(out.clone());
        let interrupt = repl.interrupt_handle();
        // Ctrl-C, 100 ms into a one-hour sleep.
        std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(100));
            interrupt.interrupt();
        });
        repl.run(
            io::Cursor::new("spawn t 20\nsleep 3600000\ntasks\nquit\n"),
            false,
        );
        let text = out.text();
        text.lines().map(str::to_owned).collect::<Vec<_>>()
    });
    let interrupted = lines
        .iter()
        .position(|l| l == "interrupted")
        .expect("no interrupt");
    assert!(
        lines[..interrupted]
            .iter()
            .any(|l| l.starts_with("tick t "))
    );
    // The REPL went on: the next line ran, the ticker survived.
    assert!(
        lines[interrupted..].contains(&"1 live tasks".to_owned()),
        "{lines:?}"
    );
    assert_eq!(lines.last().unwrap(), "bye");
}
