//! A Rhai script runs inside a nestloop task and calls synchronous Rust
//! functions that wait for async work with `nestloop::block_on`, while other
//! tasks (a key-value service and a heartbeat) keep running.
//!
//! ```sh
//! cargo run --example scripting
//! ```

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::io::{self, Write};
use std::rc::Rc;
use std::time::Duration;

use futures::StreamExt;
use futures::channel::{mpsc, oneshot};
use nestloop::time::{interval, sleep};
use rhai::{Engine, EvalAltResult};

/// The script: plain synchronous calls, each of which waits for async work.
const SCRIPT: &str = r#"
print("script: start");
let greeting = fetch("greeting");
print(`script: fetched greeting = ${greeting}`);
sleep_ms(20);
let total = 0;
for key in ["a", "b", "c"] {
    let value = parse_int(fetch(key));
    print(`script: ${key} = ${value}`);
    total += value;
}
print(`script: total = ${total}`);
total
"#;

/// A request to the key-value service: a key and where to send the value.
type Request = (String, oneshot::Sender<String>);

/// Writes a line to the shared output.
fn say(out: &Rc<RefCell<Box<dyn Write>>>, line: &str) {
    let mut out = out.borrow_mut();
    let _ = writeln!(out, "{line}");
    let _ = out.flush();
}

/// Runs the script and returns its result and the number of heartbeats that
/// happened while it ran.
pub fn run(out: impl Write + 'static) -> Result<(i64, u64), Box<EvalAltResult>> {
    let out: Rc<RefCell<Box<dyn Write>>> = Rc::new(RefCell::new(Box::new(out)));
    nestloop::block_on(async move {
        // An async key-value service: answers after a simulated network delay.
        let (requests, mut incoming) = mpsc::unbounded::<Request>();
        let store: HashMap<&str, &str> =
            [("greeting", "hello"), ("a", "1"), ("b", "20"), ("c", "300")].into();
        let o = out.clone();
        let service = nestloop::spawn(async move {
            while let Some((key, reply)) = incoming.next().await {
                sleep(Duration::from_millis(5)).await;
                let value = store.get(key.as_str()).copied().unwrap_or("").to_owned();
                say(&o, &format!("service: {key} -> {value:?}"));
                let _ = reply.send(value);
            }
        });
        // A heartbeat that must keep beating while the script blocks.
        let beats = Rc::new(Cell::new(0u64));
        let b = beats.clone();
        let heartbeat = nestloop::spawn(async move {
            let mut every = interval(Duration::from_millis(2));
            loop {
                every.tick().await;
                b.set(b.get() + 1);
            }
        });

        // The engine's functions are synchronous: they block on async work.
        let mut engine = Engine::new();
        let o = out.clone();
        engine.on_print(move |line| say(&o, line));
        let r = requests.clone();
        engine.register_fn("fetch", move |key: &str| -> String {
            let (reply, value) = oneshot::channel();
            r.unbounded_send((key.to_owned(), reply))
                .expect("the service is running");
            // A nested loop: the service task answers while we wait here.
            nestloop::block_on(value).unwrap_or_default()
        });
        engine.register_fn("sleep_ms", |ms: i64| {
            nestloop::block_on(sleep(Duration::from_millis(ms.max(0) as u64)));
        });

        // The script itself runs inside a task.
        let before = beats.get();
        let script = nestloop::spawn(async move { engine.eval::<i64>(SCRIPT) });
        let result = script.await.expect("the script task panicked");
        let during = beats.get() - before;

        drop(requests);
        service.await.expect("the service panicked");
        heartbeat.abort();
        say(&out, &format!("heartbeats while the script ran: {during}"));
        result.map(|total| (total, during))
    })
}

fn main() {
    match run(io::stdout()) {
        Ok((total, _)) => println!("script returned {total}"),
        Err(err) => {
            eprintln!("script failed: {err}");
            std::process::exit(1);
        }
    }
}
