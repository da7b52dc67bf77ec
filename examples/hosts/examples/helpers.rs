//! Synchronous helpers that wait, as a server's handlers call them: five
//! connections arrive 1 ms apart, and each handler calls `lookup`, a sync
//! function that blocks on a 10-50 ms operation. Run with fibers off
//! (nested loops, nest-asyncio's model) and on (R12, gevent's model), it
//! prints when each helper returned and the depth it ran at.
//!
//! ```sh
//! cargo run -p nestloop-hosts --example helpers
//! ```

use std::time::{Duration, Instant};

use nestloop::Executor;

/// A synchronous helper: a lookup that takes `ms` milliseconds.
fn lookup(name: &str, ms: u64) -> String {
    let depth = nestloop::depth();
    nestloop::block_on(nestloop::time::sleep(Duration::from_millis(ms)));
    format!("{name} (waited {ms} ms at depth {depth})")
}

fn serve(fibers: bool) {
    println!("fibers {}:", if fibers { "on" } else { "off" });
    let ex = Executor::builder().fibers(fibers).build();
    ex.block_on(async {
        let start = Instant::now();
        let mut handlers = Vec::new();
        // The first connection's lookup is the fastest.
        for (i, ms) in [10, 50, 40, 30, 20].into_iter().enumerate() {
            nestloop::time::sleep(Duration::from_millis(1)).await;
            handlers.push(nestloop::spawn(async move {
                let answer = lookup(&format!("connection {i}"), ms);
                let at = start.elapsed().as_millis();
                println!("  {at:>3} ms: {answer}");
            }));
        }
        for h in handlers {
            h.await.unwrap();
        }
    });
}

fn main() {
    serve(false);
    serve(true);
}
