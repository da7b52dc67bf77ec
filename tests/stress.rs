//! Stress and soak: many tasks, deep nesting, and threads waking and
//! spawning onto an executor that nests at random. Exact counts at the end.
//!
//! The soak test is ignored by default; run it for the full minute with
//!
//! ```sh
//! cargo test --release --test stress soak -- --ignored --nocapture
//! ```
//!
//! and set `SOAK_SECS` to change its duration (.ci/run uses 10).

mod common;

use std::cell::Cell;
use std::rc::Rc;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use common::{watchdog, watchdog_with};
use futures::StreamExt;
use futures::channel::mpsc;
use nestloop::{Executor, block_on, depth, spawn, yield_now};

/// A small deterministic random source (xorshift64*).
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

#[test]
fn a_million_spawned_tasks() {
    let n: usize = if cfg!(miri) { 1_000 } else { 1_000_000 };
    let (sum, count) = watchdog_with(8 << 20, Duration::from_secs(120), move || {
        let ex = Executor::new();
        let sum = ex.block_on(async {
            let handles: Vec<_> = (0..n).map(|i| spawn(async move { i as u64 })).collect();
            let mut sum = 0;
            for h in handles {
                sum += h.await.unwrap();
            }
            sum
        });
        (sum, ex.task_count())
    });
    let n = n as u64;
    assert_eq!(sum, n * (n - 1) / 2);
    assert_eq!(count, 0);
}

#[test]
fn thousand_deep_nesting_with_work_at_every_level() {
    let levels = if cfg!(miri) { 20 } else { 1000 };
    let (reached, ticks, count) = watchdog_with(16 << 20, Duration::from_secs(120), move || {
        let ex = Executor::builder().fibers(false).max_depth(levels).build();
        let ticks = Rc::new(Cell::new(0usize));
        fn level(ex: &Executor, ticks: &Rc<Cell<usize>>, levels: usize) -> usize {
            let (ex2, t) = (ex.clone(), ticks.clone());
            ex.block_on(async move {
                // A sibling at every level that needs the loops above it.
                let t2 = t.clone();
                let sibling = ex2.spawn(async move {
                    yield_now().await;
                    t2.set(t2.get() + 1);
                });
                let deepest = if depth() < levels {
                    let (ex3, t3) = (ex2.clone(), t.clone());
                    ex2.spawn(async move { level(&ex3, &t3, levels) })
                        .await
                        .unwrap()
                } else {
                    depth()
                };
                sibling.await.unwrap();
                deepest
            })
        }
        let reached = level(&ex, &ticks, levels);
        (reached, ticks.get(), ex.task_count())
    });
    assert_eq!(reached, levels);
    assert_eq!(ticks, levels);
    assert_eq!(count, 0);
}

/// Counts of the soak run, checked exactly at the end.
#[derive(Default)]
struct SoakCounts {
    remote_spawned: AtomicUsize,
    remote_completed: AtomicUsize,
    sent: AtomicU64,
    received: AtomicU64,
}

/// Runs the soak scenario for `secs` seconds and checks its counts.
fn soak_for(secs: u64) {
    let counts = Arc::new(SoakCounts::default());
    let c = counts.clone();
    let (local_spawned, local_done, max_depth) =
        watchdog_with(8 << 20, Duration::from_secs(secs + 120), move || {
            let ex = Executor::new();
            let stop = Arc::new(AtomicBool::new(false));
            let (tx, mut rx) = mpsc::unbounded::<u64>();
            // Consumes what the threads send: other-thread wakes.
            let c2 = c.clone();
            let consumer = ex.spawn(async move {
                while let Some(v) = rx.next().await {
                    c2.received.fetch_add(v, Ordering::SeqCst);
                }
            });
            let threads: Vec<_> = (0..8)
                .map(|t| {
                    let (spawner, stop, c, tx) =
                        (ex.spawner(), stop.clone(), c.clone(), tx.clone());
                    std::thread::spawn(move || {
                        let mut rng = Rng(0x9E37_79B9_7F4A_7C15 ^ (t + 1));
                        let mut handles = Vec::new();
                        while !stop.load(Ordering::SeqCst) {
                            match rng.below(4) {
                                0 => {
                                    c.remote_spawned.fetch_add(1, Ordering::SeqCst);
                                    let c = c.clone();
                                    handles.push(spawner.spawn(async move {
                                        yield_now().await;
                                        c.remote_completed.fetch_add(1, Ordering::SeqCst);
                                    }));
                                }
                                1 | 2 => {
                                    let v = rng.below(1000);
                                    c.sent.fetch_add(v, Ordering::SeqCst);
                                    tx.unbounded_send(v).unwrap();
                                }
                                _ => std::thread::sleep(Duration::from_micros(rng.below(200))),
                            }
                            if handles.len() > 64 {
                                // Await a batch from this thread.
                                for h in handles.drain(..) {
                                    futures::executor::block_on(h).unwrap();
                                }
                            }
                        }
                        for h in handles {
                            futures::executor::block_on(h).unwrap();
                        }
                    })
                })
                .collect();
            drop(tx);

            let deadline = Instant::now() + Duration::from_secs(secs);
            let local_spawned = Rc::new(Cell::new(0usize));
            let local_done = Rc::new(Cell::new(0usize));
            let max_depth = Rc::new(Cell::new(0usize));
            let mut rng = Rng(42);
            // The executor nests at random while the threads hammer it.
            fn wander(
                rng: &mut Rng,
                spawned: &Rc<Cell<usize>>,
                done: &Rc<Cell<usize>>,
                max_depth: &Rc<Cell<usize>>,
            ) {
                max_depth.set(max_depth.get().max(depth()));
                let steps = rng.below(8);
                for _ in 0..steps {
                    match rng.below(6) {
                        0 if depth() < 8 => {
                            let mut inner = Rng(rng.next());
                            let (s, d, m) = (spawned.clone(), done.clone(), max_depth.clone());
                            block_on(async move {
                                yield_now().await;
                                wander(&mut inner, &s, &d, &m);
                            });
                        }
                        1 => {
                            spawned.set(spawned.get() + 1);
                            let d = done.clone();
                            let mut inner = Rng(rng.next());
                            let (s2, d2, m2) = (spawned.clone(), done.clone(), max_depth.clone());
                            drop(spawn(async move {
                                yield_now().await;
                                if inner.below(3) == 0 {
                                    wander(&mut inner, &s2, &d2, &m2);
                                }
                                d.set(d.get() + 1);
                            }));
                        }
                        2 if depth() < 8 => {
                            block_on(nestloop::time::sleep(Duration::from_micros(rng.below(300))))
                        }
                        _ if depth() < 8 => block_on(yield_now()),
                        _ => {}
                    }
                }
            }
            ex.block_on(async {
                while Instant::now() < deadline {
                    wander(&mut rng, &local_spawned, &local_done, &max_depth);
                    yield_now().await;
                }
                stop.store(true, Ordering::SeqCst);
                // Keep driving while the threads finish and await their tasks.
                while threads.iter().any(|t| !t.is_finished()) {
                    nestloop::time::sleep(Duration::from_millis(1)).await;
                }
                for t in threads {
                    t.join().unwrap();
                }
                consumer.await.unwrap();
                while local_done.get() < local_spawned.get() {
                    yield_now().await;
                }
            });
            assert_eq!(ex.task_count(), 0);
            (local_spawned.get(), local_done.get(), max_depth.get())
        });
    let remote = counts.remote_spawned.load(Ordering::SeqCst);
    println!(
        "soak {secs}s: {remote} remote tasks, {local_spawned} local tasks, {} sent, max depth {max_depth}",
        counts.sent.load(Ordering::SeqCst)
    );
    assert_eq!(counts.remote_completed.load(Ordering::SeqCst), remote);
    assert_eq!(
        counts.received.load(Ordering::SeqCst),
        counts.sent.load(Ordering::SeqCst)
    );
    assert_eq!(local_done, local_spawned);
    assert!(
        max_depth >= 3,
        "the executor did not nest (max depth {max_depth})"
    );
}

#[test]
fn soak_briefly() {
    if cfg!(miri) {
        return;
    }
    watchdog(|| soak_for(1));
}

#[test]
#[ignore = "a minute long; .ci/run runs it with SOAK_SECS=10"]
fn soak() {
    let secs = std::env::var("SOAK_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(60);
    soak_for(secs);
}
