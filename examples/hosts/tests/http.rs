//! Feature `http`: a hyper server and reqwest clients on one thread, the
//! requests made by synchronous code with `nestloop::block_on`, the
//! server a task of the same executor (built with `tokio_current_thread`).
//! Each scenario runs with fibers on (calls suspend their task's stack)
//! and off (calls nest loops, one to three deep).

#[path = "../../../tests/common/mod.rs"]
mod common;

use std::time::{Duration, Instant};

use common::watchdog;
use nestloop::Executor;
use nestloop_hosts::http::{Server, get, thread_names};

/// Runs `scenario` inside `block_on` of an executor with its own tokio
/// current_thread runtime, fibers on or off, under a watchdog.
fn on_one_thread<T: Send + 'static>(
    fibers: bool,
    scenario: impl AsyncFnOnce() -> T + Send + 'static,
) -> T {
    watchdog(move || {
        Executor::builder()
            .tokio_current_thread()
            .fibers(fibers)
            .build()
            .block_on(scenario())
    })
}

/// Runs `f` in synchronous code `levels` calls deep: each level is a task
/// whose code waits for the next one's with `block_on`.
fn nested<T: 'static>(levels: usize, f: impl FnOnce() -> T + 'static) -> T {
    if levels == 1 {
        return f();
    }
    nestloop::block_on(nestloop::spawn(async move { nested(levels - 1, f) })).unwrap()
}

#[test]
fn callbacks_at_depths_1_to_3_reuse_one_keep_alive_connection() {
    for fibers in [true, false] {
        let (bodies, depths, connections, requests) = on_one_thread(fibers, async || {
            let server = Server::start().await;
            let client = reqwest::Client::new();
            let mut bodies = Vec::new();
            let mut depths = Vec::new();
            for levels in 1..=3 {
                let (client, url) = (client.clone(), server.url(&format!("level/{levels}")));
                let (body, depth) = nested(levels, move || {
                    (get(&client, &url).unwrap(), nestloop::depth())
                });
                bodies.push(body);
                depths.push(depth);
            }
            let stats = &server.stats;
            (
                bodies,
                depths,
                stats.connections.get(),
                stats.requests.get(),
            )
        });
        assert_eq!(
            bodies,
            [
                "hello from /level/1",
                "hello from /level/2",
                "hello from /level/3"
            ]
        );
        assert_eq!((connections, requests), (1, 3), "fibers {fibers}");
        // Nested loops: each level is one more; fibers: each call's
        // task runs one loop down from the caller's, however deep.
        let expected = if fibers { [1, 2, 2] } else { [1, 2, 3] };
        assert_eq!(depths, expected, "fibers {fibers}");
    }
}

#[test]
fn requests_from_several_tasks_are_served_at_once() {
    for fibers in [true, false] {
        let (bodies, max_in_flight) = on_one_thread(fibers, async || {
            let server = Server::start().await;
            let client = reqwest::Client::new();
            let tasks: Vec<_> = (0..8)
                .map(|i| {
                    let (client, url) = (client.clone(), server.url(&format!("slow/{}", 100 + i)));
                    nestloop::spawn(async move { get(&client, &url).unwrap() })
                })
                .collect();
            let mut bodies = Vec::new();
            for task in tasks {
                bodies.push(task.await.unwrap());
            }
            (bodies, server.stats.max_in_flight.get())
        });
        let expected: Vec<String> = (0..8).map(|i| format!("slept {} ms", 100 + i)).collect();
        assert_eq!(bodies, expected);
        // Every helper waits at once: the server had all eight requests
        // in progress together, not one after another.
        assert_eq!(max_in_flight, 8, "fibers {fibers}");
    }
}

#[test]
fn reqwests_timeout_fires_inside_a_callback() {
    for fibers in [true, false] {
        let (timed_out, waited) = on_one_thread(fibers, async || {
            let server = Server::start().await;
            let client = reqwest::Client::builder()
                .timeout(Duration::from_millis(50))
                .build()
                .unwrap();
            let url = server.url("slow/5000");
            let start = Instant::now();
            let error = nested(2, move || get(&client, &url).unwrap_err());
            (error.is_timeout(), start.elapsed())
        });
        assert!(timed_out, "fibers {fibers}");
        assert!(waited < Duration::from_secs(4), "waited {waited:?}");
    }
}

#[test]
fn shutting_the_server_down_closes_its_connections() {
    for fibers in [true, false] {
        let (before, after_kept, after_new) = on_one_thread(fibers, async || {
            let server = Server::start().await;
            let client = reqwest::Client::new();
            let before = get(&client, &server.url("up")).unwrap();
            let url = server.url("down");
            server.shut_down();
            // The kept-alive connection is closed and nobody listens.
            let after_kept = get(&client, &url).is_err();
            let after_new = get(&reqwest::Client::new(), &url).is_err();
            (before, after_kept, after_new)
        });
        assert_eq!(before, "hello from /up");
        assert!(after_kept && after_new, "fibers {fibers}");
    }
}

/// No tokio worker threads: the runtime is driven by the executor's own
/// loops, on the thread that calls `block_on` (Linux only, where threads
/// can be listed; the process's other threads are the test harness's:
/// `http_host`'s output, checked by CI, lists its one thread).
#[test]
fn the_client_and_server_start_no_tokio_threads() {
    let during = on_one_thread(true, async || {
        let server = Server::start().await;
        let client = reqwest::Client::new();
        get(&client, &server.url("x")).unwrap();
        thread_names()
    });
    assert!(
        during.iter().all(|name| !name.starts_with("tokio")),
        "{during:?}"
    );
}
