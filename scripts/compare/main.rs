//! nestloop's own workloads, timed on whichever nestloop the crate is built
//! against: `scripts/compare.sh` builds it for two commits and runs the
//! builds in alternation, so both see the same machine (see that script).
//! It uses only API every recent commit has.
//!
//! Usage: `compare WORKLOAD [REPS] [IDLE_EXECUTORS]`; prints the best time
//! per operation of REPS runs, in ns. With IDLE_EXECUTORS, that many other
//! executors, each with a pending task, live on the thread.

use std::future::{Future, ready};
use std::hint::black_box;
use std::pin::Pin;
use std::time::{Duration, Instant};

use futures::channel::{mpsc, oneshot};
use futures::{SinkExt, StreamExt};
use nestloop::Executor;

fn spawn_many(ex: &Executor, n: u64) {
    ex.block_on(async {
        let handles: Vec<_> = (0..n).map(|i| ex.spawn(async move { i })).collect();
        for h in handles {
            black_box(h.await.unwrap());
        }
    })
}

fn yield_many(ex: &Executor, tasks: usize, yields: usize) {
    ex.block_on(async {
        let handles: Vec<_> = (0..tasks)
            .map(|_| {
                ex.spawn(async move {
                    for _ in 0..yields {
                        nestloop::yield_now().await;
                    }
                })
            })
            .collect();
        for h in handles {
            h.await.unwrap();
        }
    })
}

fn ping_pong(ex: &Executor, pairs: usize) {
    ex.block_on(async {
        let mut handles = Vec::with_capacity(pairs * 2);
        for _ in 0..pairs {
            let (ping_tx, ping_rx) = oneshot::channel::<()>();
            let (pong_tx, pong_rx) = oneshot::channel::<()>();
            handles.push(ex.spawn(async move {
                ping_tx.send(()).unwrap();
                pong_rx.await.unwrap();
            }));
            handles.push(ex.spawn(async move {
                ping_rx.await.unwrap();
                pong_tx.send(()).unwrap();
            }));
        }
        for h in handles {
            h.await.unwrap();
        }
    })
}

fn chain(ex: &Executor, n: usize) {
    fn link(left: usize, done: oneshot::Sender<()>) -> Pin<Box<dyn Future<Output = ()>>> {
        Box::pin(async move {
            if left == 0 {
                done.send(()).unwrap();
            } else {
                drop(nestloop::spawn(link(left - 1, done)));
            }
        })
    }
    ex.block_on(async {
        let (done, finished) = oneshot::channel();
        drop(nestloop::spawn(link(n, done)));
        finished.await.unwrap();
    })
}

fn ready_top(ex: &Executor, n: u64) {
    for i in 0..n {
        black_box(ex.block_on(ready(black_box(i))));
    }
}

fn nested_ready(ex: &Executor, n: u64) {
    ex.block_on(ex.spawn(async move {
        for i in 0..n {
            black_box(nestloop::block_on(ready(black_box(i))));
        }
    }))
    .unwrap()
}

fn nested_sibling(ex: &Executor, n: u64) {
    ex.block_on(ex.spawn(async move {
        for i in 0..n {
            let (tx, rx) = oneshot::channel();
            drop(nestloop::spawn(async move { tx.send(i).unwrap() }));
            black_box(nestloop::block_on(rx).unwrap());
        }
    }))
    .unwrap()
}

fn remote_messages(ex: &Executor, n: u64) {
    ex.block_on(async {
        let (mut tx, mut rx) = mpsc::channel::<u64>(1024);
        let sender = std::thread::spawn(move || {
            futures::executor::block_on(async move {
                for i in 0..n {
                    tx.send(i).await.unwrap();
                }
            })
        });
        let mut sum = 0;
        while let Some(v) = rx.next().await {
            sum += v;
        }
        sender.join().unwrap();
        black_box(sum);
    })
}

fn round_trips(ex: &Executor, n: u64) {
    ex.block_on(async {
        let (mut to_echo, mut requests) = mpsc::channel::<u64>(1);
        let (mut to_us, mut replies) = mpsc::channel::<u64>(1);
        let echo = std::thread::spawn(move || {
            futures::executor::block_on(async move {
                while let Some(v) = requests.next().await {
                    to_us.send(v + 1).await.unwrap();
                }
            })
        });
        for i in 0..n {
            to_echo.send(i).await.unwrap();
            black_box(replies.next().await.unwrap());
        }
        drop(to_echo);
        echo.join().unwrap();
    })
}

fn sleeps_fire(ex: &Executor, n: u64) {
    ex.block_on(async {
        let handles: Vec<_> = (0..n)
            .map(|i| {
                nestloop::spawn(nestloop::time::sleep(Duration::from_micros(
                    1_000 + (i % 5) * 1_000,
                )))
            })
            .collect();
        for h in handles {
            h.await.unwrap();
        }
    })
}

fn sleeps_dropped(ex: &Executor, n: u64) {
    ex.block_on(async {
        for i in 0..n {
            let mut sleep = std::pin::pin!(nestloop::time::sleep(Duration::from_secs(60 + i)));
            let _ = black_box(futures::poll!(sleep.as_mut()));
        }
    })
}

fn remote_spawn(ex: &Executor, n: u64) {
    let spawner = ex.spawner();
    ex.block_on(async move {
        let (tx, rx) = oneshot::channel();
        std::thread::spawn(move || {
            let handles: Vec<_> = (0..n).map(|i| spawner.spawn(async move { i })).collect();
            tx.send(handles).unwrap();
        });
        for h in rx.await.unwrap() {
            black_box(h.await.unwrap());
        }
    })
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let which = args.get(1).map(String::as_str).unwrap_or("list");
    let reps: usize = args.get(2).map_or(1, |s| s.parse().unwrap());
    let idle: usize = args.get(3).map_or(0, |s| s.parse().unwrap());
    let _idle: Vec<_> = (0..idle)
        .map(|_| {
            let ex = Executor::new();
            let pending = ex.spawn(std::future::pending::<()>());
            (ex, pending)
        })
        .collect();
    let ex = Executor::new();
    let (ops, run): (u64, Box<dyn Fn()>) = match which {
        "spawn" => (10_000, Box::new(|| spawn_many(&ex, 10_000))),
        "yield" => (20_000, Box::new(|| yield_many(&ex, 200, 100))),
        "pingpong" => (1_000, Box::new(|| ping_pong(&ex, 1_000))),
        "chain" => (1_000, Box::new(|| chain(&ex, 1_000))),
        "ready" => (1_000_000, Box::new(|| ready_top(&ex, 1_000_000))),
        "nested_ready" => (100_000, Box::new(|| nested_ready(&ex, 100_000))),
        "nested_sibling" => (10_000, Box::new(|| nested_sibling(&ex, 10_000))),
        "remote_messages" => (100_000, Box::new(|| remote_messages(&ex, 100_000))),
        "round_trips" => (500, Box::new(|| round_trips(&ex, 500))),
        "sleeps_fire" => (10_000, Box::new(|| sleeps_fire(&ex, 10_000))),
        "sleeps_dropped" => (10_000, Box::new(|| sleeps_dropped(&ex, 10_000))),
        "remote_spawn" => (10_000, Box::new(|| remote_spawn(&ex, 10_000))),
        _ => {
            println!(
                "spawn yield pingpong chain ready nested_ready nested_sibling remote_messages \
                 round_trips sleeps_fire sleeps_dropped remote_spawn"
            );
            return;
        }
    };
    let mut best = f64::MAX;
    for _ in 0..reps {
        let start = Instant::now();
        run();
        best = best.min(start.elapsed().as_secs_f64());
    }
    println!("{:.2}", best * 1e9 / ops as f64);
}
