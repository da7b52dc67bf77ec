//! HTTP requests on one thread: reqwest against a hyper server on
//! 127.0.0.1 (`nestloop_hosts::http`), both on the benchmark's thread,
//! made by synchronous helpers that `block_on` each request, against the
//! same requests awaited directly.
//!
//! Each iteration is 100 GET requests, one after another, over one
//! kept-alive connection (the client and the server start once per row,
//! outside the timed part). Throughput is per request.
//!
//! | row | executor | how the client waits |
//! |---|---|---|
//! | `nestloop helper` | `Executor::builder().tokio_current_thread()` (fibers, the default) | a task's synchronous helper, `nestloop::block_on` per request |
//! | `nestloop helper, fibers off` | the same with `.fibers(false)` | the same, nesting a loop per request |
//! | `nestloop awaited` | the same as `nestloop helper` | `.await` in the `block_on` future |
//! | `tokio current_thread` | `Builder::new_current_thread().enable_all()`, a `LocalSet` for the server | `.await` in the `block_on` future |
//!
//! ```sh
//! cargo bench -p nestloop-benches --bench http --features http
//! ```

use std::rc::Rc;
use std::time::Duration;

use criterion::{Criterion, SamplingMode, Throughput, criterion_group, criterion_main};
use nestloop_hosts::http::{self, Server, get};

/// Requests per iteration.
const REQUESTS: u64 = 100;

/// The requests of one iteration, awaited.
async fn awaited(client: &reqwest::Client, url: &str) {
    for _ in 0..REQUESTS {
        let body = client.get(url).send().await.unwrap().text().await.unwrap();
        assert_eq!(body, "hello from /bench");
    }
}

/// A nestloop row: the server a task of `ex`; `helper` makes each request
/// from a task's synchronous code, else the `block_on` future awaits it.
fn nestloop_row(ex: &nestloop::Executor, helper: bool) -> impl FnMut() + '_ {
    let (server, client) = ex.block_on(async { (Server::start().await, reqwest::Client::new()) });
    let url = server.url("bench");
    move || {
        let (client, url) = (client.clone(), url.clone());
        ex.block_on(async move {
            if helper {
                let task = nestloop::spawn(async move {
                    for _ in 0..REQUESTS {
                        assert_eq!(get(&client, &url).unwrap(), "hello from /bench");
                    }
                });
                task.await.unwrap();
            } else {
                awaited(&client, &url).await;
            }
        });
        let _ = &server;
    }
}

fn requests(c: &mut Criterion) {
    let mut group = c.benchmark_group("100 HTTP/1.1 requests, one thread (per request)");
    group.throughput(Throughput::Elements(REQUESTS));
    group.sampling_mode(SamplingMode::Flat);
    group.sample_size(20);
    group.warm_up_time(Duration::from_secs(1));
    group.measurement_time(Duration::from_secs(3));

    // Each row starts its server and client before its `bench_function`
    // (which calls its closure for every sample).
    let ex = nestloop::Executor::builder().tokio_current_thread().build();
    let mut run = nestloop_row(&ex, true);
    group.bench_function("nestloop helper", |b| b.iter(&mut run));
    let mut run = nestloop_row(&ex, false);
    group.bench_function("nestloop awaited", |b| b.iter(&mut run));
    drop(run);
    let nesting = nestloop::Executor::builder()
        .tokio_current_thread()
        .fibers(false)
        .build();
    let mut run = nestloop_row(&nesting, true);
    group.bench_function("nestloop helper, fibers off", |b| b.iter(&mut run));

    {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let local = tokio::task::LocalSet::new();
        let url = local.block_on(&rt, async {
            let (listener, addr) = http::bind().await;
            let stats = Rc::new(http::Stats::default());
            tokio::task::spawn_local(http::accept_loop(listener, stats, |connection| {
                tokio::task::spawn_local(connection);
            }));
            format!("http://{addr}/bench")
        });
        let client = reqwest::Client::new();
        group.bench_function("tokio current_thread", |b| {
            b.iter(|| local.block_on(&rt, awaited(&client, &url)))
        });
    }

    group.finish();
}

criterion_group!(benches, requests);
criterion_main!(benches);
