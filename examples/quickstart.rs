//! Async code calls a synchronous helper; the helper waits for async work
//! with `nestloop::block_on` while a background task keeps ticking.
//!
//! Run it with `cargo run --example quickstart`.

use std::time::{Duration, Instant};

use nestloop::time::{interval, sleep};

/// Prints a line tagged with the time since start and the nesting depth.
fn log(start: Instant, what: &str) {
    println!(
        "[{:>4} ms] depth {}: {what}",
        start.elapsed().as_millis(),
        nestloop::depth()
    );
}

/// A synchronous function, e.g. a scripting-engine callback or a sync trait
/// method, that needs the result of async work.
fn fetch_config(start: Instant, key: &str) -> String {
    log(start, &format!("sync helper fetch_config({key:?}) starts"));
    let key = key.to_owned();
    // Work done by a task of the loop that is already running.
    let task = nestloop::spawn(async move {
        log(start, "task: fetching (takes 60 ms)");
        sleep(Duration::from_millis(60)).await;
        format!("{key}=42")
    });
    // Nested block_on: the thread's loop keeps running the other tasks (and
    // the ticker) until the task is done. With fibers (the default) the
    // caller's stack is suspended meanwhile, so the depth stays 1; with
    // `Executor::builder().fibers(false)` the call nests a loop at depth 2.
    let value = nestloop::block_on(task).expect("the fetch task panicked");
    log(start, &format!("sync helper got {value:?}"));
    value
}

fn main() {
    let start = Instant::now();
    nestloop::block_on(async move {
        log(start, "main future starts");
        let ticker = nestloop::spawn(async move {
            let mut every = interval(Duration::from_millis(20));
            for n in 1.. {
                every.tick().await;
                log(start, &format!("background tick {n}"));
            }
        });

        sleep(Duration::from_millis(30)).await;
        // Async code calling sync code that blocks on async work: the
        // program that tokio, futures and pollster refuse or deadlock on.
        let value = fetch_config(start, "answer");
        log(start, &format!("main future continues with {value:?}"));

        ticker.abort();
        log(start, "done");
    });
    assert_eq!(nestloop::depth(), 0);
}
