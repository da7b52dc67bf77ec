//! Drives the REPL example with scripted input and checks its output.

#[path = "../../../tests/common/mod.rs"]
mod common;

#[allow(dead_code)] // the example's `main` is not used here
#[path = "../examples/repl.rs"]
mod repl;

use std::io::{self, Write};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

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

/// Output shared with another thread, for the test that watches it live.
#[derive(Clone, Default)]
struct SharedOutput(Arc<Mutex<Vec<u8>>>);

impl SharedOutput {
    fn text(&self) -> String {
        String::from_utf8(self.0.lock().unwrap().clone()).unwrap()
    }
}

impl Write for SharedOutput {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

#[test]
fn an_interrupt_ends_the_running_line_and_the_repl_goes_on() {
    let out = SharedOutput::default();
    let (reader, mut input) = io::pipe().unwrap();
    let repl_out = out.clone();
    let (handle_tx, handle_rx) = std::sync::mpsc::channel();
    let repl_thread = std::thread::spawn(move || {
        let repl = repl::Repl::new(repl_out);
        handle_tx.send(repl.interrupt_handle()).unwrap();
        repl.run(io::BufReader::new(reader), false);
    });
    let interrupt = handle_rx.recv().unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    let wait_for = |what: &str| {
        while !out.text().contains(what) {
            assert!(Instant::now() < deadline, "no {what:?} in {:?}", out.text());
            std::thread::sleep(Duration::from_millis(5));
        }
    };
    writeln!(input, "spawn t 20").unwrap();
    wait_for("spawned t");
    writeln!(input, "sleep 3600000").unwrap();
    wait_for("tick t 2");
    // Ctrl-C until the line is interrupted (one at the prompt does nothing).
    while !out.text().contains("interrupted") {
        interrupt.interrupt();
        assert!(
            Instant::now() < deadline,
            "never interrupted: {:?}",
            out.text()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    // The REPL goes on, and so does the background task.
    writeln!(input, "tasks\nwait t 5000\nquit").unwrap();
    wait_for("bye");
    repl_thread.join().unwrap();
    let text = out.text();
    let after = &text[text.find("interrupted").unwrap()..];
    assert!(after.contains("1 live tasks"), "{text}");
    assert!(after.contains("t ticked ("), "{text}");
}
