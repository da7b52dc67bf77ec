//! A line-oriented REPL whose command handlers are synchronous code that
//! waits with `nestloop::block_on`, while background tasks keep running.
//!
//! ```sh
//! printf 'spawn tick 20\nsleep 200\ntasks\nquit\n' | cargo run -q --example repl
//! ```
//!
//! Commands: `spawn NAME MS`, `sleep MS`, `tasks`, `cancel NAME`,
//! `wait NAME MS`, `help`, `quit`. Input is read on a helper thread and
//! handed over a channel, so ticks keep coming while the prompt waits. Each
//! line runs in `Executor::try_block_on`: Ctrl-C interrupts the running line
//! (like Python's KeyboardInterrupt) instead of killing the REPL.

use std::cell::{Cell, RefCell};
use std::collections::BTreeMap;
use std::future::poll_fn;
use std::io::{self, BufRead, IsTerminal, Write};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::rc::Rc;
use std::task::{Poll, Waker};
use std::time::Duration;

use futures::StreamExt;
use futures::channel::mpsc;
use nestloop::time::{MissedTickBehavior, interval, sleep, timeout};
use nestloop::{Executor, InterruptHandle, JoinHandle};

/// Where the REPL writes: shared by the line handlers and the tickers.
type Out = Rc<RefCell<Box<dyn Write>>>;

/// Writes one line and flushes it.
fn say(out: &Out, line: impl AsRef<str>) {
    let mut out = out.borrow_mut();
    let _ = writeln!(out, "{}", line.as_ref());
    let _ = out.flush();
}

/// A background task that ticks.
struct Ticker {
    /// Ticks so far.
    count: Rc<Cell<u64>>,
    /// Period in milliseconds.
    period_ms: u64,
    /// Wakers of `wait` commands, woken at each tick.
    waiters: Rc<RefCell<Vec<Waker>>>,
    /// The task.
    handle: JoinHandle<()>,
}

/// What a line asks the REPL to do next.
enum Next {
    Continue,
    Quit,
}

/// The REPL's state: its executor, its tickers and its output.
pub struct Repl {
    /// Runs the tickers and the lines.
    executor: Executor,
    /// Live tickers by name.
    tickers: RefCell<BTreeMap<String, Ticker>>,
    /// Output.
    out: Out,
}

impl Repl {
    /// A REPL writing to `out`.
    pub fn new(out: impl Write + 'static) -> Self {
        Repl {
            executor: Executor::new(),
            tickers: RefCell::default(),
            out: Rc::new(RefCell::new(Box::new(out))),
        }
    }

    /// The handle that interrupts the running line (Ctrl-C).
    pub fn interrupt_handle(&self) -> InterruptHandle {
        self.executor.interrupt_handle()
    }

    /// Reads lines from `input` (on a helper thread) until `quit` or the end
    /// of input, prompting when `prompt` is set.
    pub fn run(&self, input: impl BufRead + Send + 'static, prompt: bool) {
        let (tx, mut lines) = mpsc::unbounded::<String>();
        std::thread::spawn(move || {
            for line in input.lines() {
                let Ok(line) = line else { break };
                if tx.unbounded_send(line).is_err() {
                    break;
                }
            }
        });
        loop {
            if prompt {
                let mut out = self.out.borrow_mut();
                let _ = write!(out, "> ");
                let _ = out.flush();
            }
            // Waiting for input is a block_on too: the tickers keep ticking.
            let Some(line) = self.executor.block_on(lines.next()) else {
                break;
            };
            // Each line is interruptible, and a panic in it is reported.
            let outcome = catch_unwind(AssertUnwindSafe(|| {
                self.executor.try_block_on(async { self.handle(&line) })
            }));
            match outcome {
                Ok(Ok(Next::Continue)) => {}
                Ok(Ok(Next::Quit)) => break,
                Ok(Err(_interrupted)) => say(&self.out, "interrupted"),
                Err(panic) => {
                    let msg = panic
                        .downcast_ref::<String>()
                        .map(String::as_str)
                        .or_else(|| panic.downcast_ref::<&str>().copied())
                        .unwrap_or("a panic");
                    say(&self.out, format!("error: {msg}"));
                }
            }
        }
        self.executor.shutdown();
        say(&self.out, "bye");
    }

    /// Runs one line: synchronous code that blocks on async work.
    fn handle(&self, line: &str) -> Next {
        let words: Vec<&str> = line.split_whitespace().collect();
        let out = &self.out;
        match words.as_slice() {
            [] => {}
            ["spawn", name, ms] => match ms.parse::<u64>() {
                Ok(ms) if ms > 0 => self.spawn_ticker(name, ms),
                _ => say(out, "usage: spawn NAME MS (MS > 0)"),
            },
            ["sleep", ms] => match ms.parse::<u64>() {
                Ok(ms) => {
                    // Blocks this line; the tickers run meanwhile.
                    nestloop::block_on(sleep(Duration::from_millis(ms)));
                    say(out, format!("slept {ms} ms"));
                }
                Err(_) => say(out, "usage: sleep MS"),
            },
            ["tasks"] => {
                let tickers = self.tickers.borrow();
                for (name, t) in tickers.iter() {
                    say(
                        out,
                        format!("{name}: {} ticks, every {} ms", t.count.get(), t.period_ms),
                    );
                }
                say(out, format!("{} live tasks", self.executor.task_count()));
            }
            ["cancel", name] => match self.tickers.borrow_mut().remove(*name) {
                Some(t) => {
                    t.handle.abort();
                    say(out, format!("cancelled {name}"));
                }
                None => say(out, format!("no task named {name}")),
            },
            ["wait", name, ms] => match ms.parse::<u64>() {
                Ok(ms) => self.wait_for_tick(name, ms),
                Err(_) => say(out, "usage: wait NAME MS"),
            },
            ["help"] => say(
                out,
                "commands: spawn NAME MS | sleep MS | tasks | cancel NAME | wait NAME MS | help | quit",
            ),
            ["quit"] | ["exit"] => return Next::Quit,
            _ => say(out, format!("unknown command: {line} (try help)")),
        }
        Next::Continue
    }

    /// `spawn NAME MS`: a task that prints `tick NAME N` every MS ms.
    fn spawn_ticker(&self, name: &str, ms: u64) {
        if self.tickers.borrow().contains_key(name) {
            say(&self.out, format!("a task named {name} is already running"));
            return;
        }
        let count = Rc::new(Cell::new(0));
        let waiters: Rc<RefCell<Vec<Waker>>> = Rc::default();
        let (c, w, out, label) = (
            count.clone(),
            waiters.clone(),
            self.out.clone(),
            name.to_owned(),
        );
        let handle = self.executor.spawn(async move {
            let period = Duration::from_millis(ms);
            let mut ticks = interval(period);
            ticks.set_missed_tick_behavior(MissedTickBehavior::Delay);
            ticks.tick().await; // the first tick is immediate: skip it
            loop {
                ticks.tick().await;
                c.set(c.get() + 1);
                say(&out, format!("tick {label} {}", c.get()));
                for waker in w.borrow_mut().drain(..) {
                    waker.wake();
                }
            }
        });
        self.tickers.borrow_mut().insert(
            name.to_owned(),
            Ticker {
                count,
                period_ms: ms,
                waiters,
                handle,
            },
        );
        say(&self.out, format!("spawned {name} (every {ms} ms)"));
    }

    /// `wait NAME MS`: blocks until NAME ticks again or MS ms pass.
    fn wait_for_tick(&self, name: &str, ms: u64) {
        let (count, waiters) = match self.tickers.borrow().get(name) {
            Some(t) => (t.count.clone(), t.waiters.clone()),
            None => {
                say(&self.out, format!("no task named {name}"));
                return;
            }
        };
        let seen = count.get();
        let next_tick = poll_fn(|cx| {
            if count.get() > seen {
                Poll::Ready(count.get())
            } else {
                waiters.borrow_mut().push(cx.waker().clone());
                Poll::Pending
            }
        });
        match nestloop::block_on(timeout(Duration::from_millis(ms), next_tick)) {
            Ok(n) => say(&self.out, format!("{name} ticked ({n})")),
            Err(_) => say(&self.out, format!("no tick from {name} within {ms} ms")),
        }
    }
}

fn main() {
    let repl = Repl::new(io::stdout());
    let interrupt = repl.interrupt_handle();
    // Ctrl-C interrupts the running line, not the REPL.
    if let Err(err) = ctrlc::set_handler(move || interrupt.interrupt()) {
        eprintln!("Ctrl-C will end the REPL: {err}");
    }
    let interactive = io::stdin().is_terminal();
    if interactive {
        println!(
            "nestloop REPL: try `spawn tick 500`, `sleep 2000` (Ctrl-C interrupts it), `help`"
        );
    }
    repl.run(io::BufReader::new(io::stdin()), interactive);
}
