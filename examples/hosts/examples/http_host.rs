//! A host whose synchronous callbacks make HTTP requests: a hyper server
//! and reqwest clients on one thread, with no tokio worker threads. The
//! server is a task of the same nestloop executor (built with
//! `tokio_current_thread`, whose runtime its loops drive); a "script"
//! calls synchronous callbacks, each of which waits for a reqwest request
//! with `nestloop::block_on`, from calls nested one to three deep, while
//! other tasks make requests of their own.
//!
//! ```sh
//! cargo run -p nestloop-hosts --example http_host --features http
//! ```

use std::time::{Duration, Instant};

use nestloop::Executor;
use nestloop_hosts::http::{Server, get, thread_names};

/// A synchronous callback `levels` calls deep: each level is a task whose
/// synchronous code waits for the next with `block_on`, as a script
/// engine's nested callbacks do.
fn callback_at(levels: usize, client: reqwest::Client, url: String) -> String {
    if levels == 1 {
        let body = get(&client, &url).expect("the request");
        return format!("{body} (depth {})", nestloop::depth());
    }
    let task = nestloop::spawn(async move { callback_at(levels - 1, client, url) });
    nestloop::block_on(task).expect("the callback's task")
}

fn main() {
    let start = Instant::now();
    let ex = Executor::builder().tokio_current_thread().build();
    ex.block_on(async {
        let server = Server::start().await;
        let client = reqwest::Client::new();
        println!("server on {}", server.addr);

        // Background requests from tasks while the callbacks below wait.
        let background: Vec<_> = (0..3)
            .map(|i| {
                let (client, url) = (
                    client.clone(),
                    server.url(&format!("slow/{}", 30 * (i + 1))),
                );
                nestloop::spawn(async move { get(&client, &url).expect("the request") })
            })
            .collect();

        for levels in 1..=3 {
            let url = server.url(&format!("callback/{levels}"));
            println!("{}", callback_at(levels, client.clone(), url));
        }
        for task in background {
            println!("background: {}", task.await.expect("the task"));
        }

        // reqwest's own timeout fires inside a callback.
        let impatient = reqwest::Client::builder()
            .timeout(Duration::from_millis(50))
            .build()
            .expect("a client");
        let waited = Instant::now();
        let error = get(&impatient, &server.url("slow/2000")).expect_err("a timeout");
        println!(
            "timeout after {:?}: {}",
            waited.elapsed(),
            if error.is_timeout() {
                "is_timeout"
            } else {
                "another error"
            }
        );

        let stats = &server.stats;
        println!(
            "server: {} requests over {} connections (keep-alive), at most {} at once",
            stats.requests.get(),
            stats.connections.get(),
            stats.max_in_flight.get()
        );
        let url = server.url("after");
        server.shut_down();
        match get(&client, &url) {
            Ok(body) => println!("after shutdown, still answered: {body}"),
            Err(error) => println!("after shutdown, a request fails: {error}"),
        }
    });
    println!("threads: {:?}", thread_names());
    println!("done in {:?}", start.elapsed());
}
