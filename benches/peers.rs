//! The same workloads on nestloop and on its peers, in one run:
//! tokio (current_thread, and a LocalSet on it), futures' LocalPool and
//! async-executor's LocalExecutor. Throughput is per operation (task, yield,
//! ping-pong pair, call, message, spawn, round trip).
//!
//! ```sh
//! cargo bench --bench peers
//! ```

use std::future::{Future, ready};
use std::hint::black_box;
use std::pin::Pin;
use std::time::Duration;

use criterion::measurement::WallTime;
use criterion::{BenchmarkGroup, Criterion, Throughput, criterion_group, criterion_main};
use futures::channel::{mpsc, oneshot};
use futures::{SinkExt, StreamExt};

#[path = "common/peers.rs"]
mod peers;

use peers::{
    AsyncExecutor, LocalPool, Nestloop, Peer, TokioCurrentThread, TokioLocalSet, remote_messages,
};

/// `n` round trips to a thread that echoes each message back, one message
/// in flight at a time: the latency of a wake from another thread, where
/// `remote_messages` measures throughput.
fn remote_round_trips<P: Peer>(peer: &P, n: u64) -> u64 {
    peer.block_on(async {
        let (mut to_echo, mut requests) = mpsc::channel::<u64>(1);
        let (mut to_us, mut replies) = mpsc::channel::<u64>(1);
        let echo = std::thread::spawn(move || {
            futures::executor::block_on(async move {
                while let Some(v) = requests.next().await {
                    to_us.send(v + 1).await.unwrap();
                }
            })
        });
        let mut sum = 0;
        for i in 0..n {
            to_echo.send(i).await.unwrap();
            sum += replies.next().await.unwrap();
        }
        drop(to_echo);
        echo.join().unwrap();
        sum
    })
}

/// Spawn `n` trivial tasks, then await every handle.
fn spawn_many<P: Peer>(peer: &P, n: u64) -> u64 {
    peer.block_on(async {
        let handles: Vec<_> = (0..n).map(|i| peer.spawn(async move { i })).collect();
        let mut sum = 0;
        for h in handles {
            sum += h.await;
        }
        sum
    })
}

/// `tasks` tasks that each yield `yields` times.
fn yield_many<P: Peer>(peer: &P, tasks: usize, yields: usize) {
    peer.block_on(async {
        let handles: Vec<_> = (0..tasks)
            .map(|_| {
                peer.spawn(async move {
                    for _ in 0..yields {
                        P::yield_now().await;
                    }
                })
            })
            .collect();
        for h in handles {
            h.await;
        }
    })
}

/// `pairs` pairs of tasks exchanging one oneshot message each way.
fn ping_pong<P: Peer>(peer: &P, pairs: usize) {
    peer.block_on(async {
        let mut handles = Vec::with_capacity(pairs * 2);
        for _ in 0..pairs {
            let (ping_tx, ping_rx) = oneshot::channel::<()>();
            let (pong_tx, pong_rx) = oneshot::channel::<()>();
            handles.push(peer.spawn(async move {
                ping_tx.send(()).unwrap();
                pong_rx.await.unwrap();
            }));
            handles.push(peer.spawn(async move {
                ping_rx.await.unwrap();
                pong_tx.send(()).unwrap();
            }));
        }
        for h in handles {
            h.await;
        }
    })
}

/// A chain of `n` tasks, each spawning the next; the last one reports.
fn spawn_chain<P: Peer>(peer: &P, n: usize) {
    fn link<P: Peer>(
        left: usize,
        done: oneshot::Sender<()>,
    ) -> Pin<Box<dyn Future<Output = ()> + Send>> {
        Box::pin(async move {
            if left == 0 {
                done.send(()).unwrap();
            } else {
                P::spawn_from_task(link::<P>(left - 1, done));
            }
        })
    }
    peer.block_on(async {
        let (done, finished) = oneshot::channel();
        P::spawn_from_task(link::<P>(n, done));
        finished.await.unwrap();
    })
}

/// A workload, run on any peer.
trait Workload {
    /// Group name.
    const NAME: &'static str;
    /// Operations per iteration (criterion reports time per operation).
    const OPERATIONS: u64;
    fn run<P: Peer>(peer: &P);
}

struct Spawn;
impl Workload for Spawn {
    const NAME: &'static str = "spawn 10k tasks, await all (per task)";
    const OPERATIONS: u64 = 10_000;
    fn run<P: Peer>(peer: &P) {
        black_box(spawn_many(peer, Self::OPERATIONS));
    }
}

struct Yield;
impl Workload for Yield {
    const NAME: &'static str = "200 tasks x 100 yields (per yield)";
    const OPERATIONS: u64 = 200 * 100;
    fn run<P: Peer>(peer: &P) {
        yield_many(peer, 200, 100);
    }
}

struct PingPong;
impl Workload for PingPong {
    const NAME: &'static str = "1k task pairs, oneshot each way (per pair)";
    const OPERATIONS: u64 = 1_000;
    fn run<P: Peer>(peer: &P) {
        ping_pong(peer, Self::OPERATIONS as usize);
    }
}

struct BlockOnReady;
impl Workload for BlockOnReady {
    const NAME: &'static str = "top-level block_on(ready) (per call)";
    const OPERATIONS: u64 = 1_000;
    fn run<P: Peer>(peer: &P) {
        for _ in 0..Self::OPERATIONS {
            black_box(peer.block_on(ready(black_box(1))));
        }
    }
}

struct RemoteMessages;
impl Workload for RemoteMessages {
    const NAME: &'static str = "another thread sends 100k messages (per message)";
    const OPERATIONS: u64 = 100_000;
    fn run<P: Peer>(peer: &P) {
        black_box(remote_messages(peer, Self::OPERATIONS));
    }
}

struct RemoteRoundTrips;
impl Workload for RemoteRoundTrips {
    const NAME: &'static str = "another thread echoes 500 messages (per round trip)";
    const OPERATIONS: u64 = 500;
    fn run<P: Peer>(peer: &P) {
        let n = Self::OPERATIONS;
        assert_eq!(black_box(remote_round_trips(peer, n)), n * (n + 1) / 2);
    }
}

struct SpawnChain;
impl Workload for SpawnChain {
    const NAME: &'static str = "chain of 1k spawns (per spawn)";
    const OPERATIONS: u64 = 1_000;
    fn run<P: Peer>(peer: &P) {
        spawn_chain(peer, Self::OPERATIONS as usize);
    }
}

fn on_peer<P: Peer, W: Workload>(group: &mut BenchmarkGroup<'_, WallTime>) {
    let peer = P::new();
    group.bench_function(P::name(), |b| b.iter(|| W::run(&peer)));
}

/// Runs `W` on every peer, side by side in one group.
fn on_all_peers<W: Workload>(c: &mut Criterion) {
    let mut group = c.benchmark_group(W::NAME);
    group.throughput(Throughput::Elements(W::OPERATIONS));
    on_peer::<Nestloop, W>(&mut group);
    on_peer::<TokioCurrentThread, W>(&mut group);
    on_peer::<TokioLocalSet, W>(&mut group);
    on_peer::<LocalPool, W>(&mut group);
    on_peer::<AsyncExecutor, W>(&mut group);
    group.finish();
}

fn peers(c: &mut Criterion) {
    on_all_peers::<Spawn>(c);
    on_all_peers::<Yield>(c);
    on_all_peers::<PingPong>(c);
    on_all_peers::<BlockOnReady>(c);
    on_all_peers::<RemoteMessages>(c);
    on_all_peers::<SpawnChain>(c);
    on_all_peers::<RemoteRoundTrips>(c);
}

/// Calls per iteration of the nested-call benchmarks.
const NESTED_CALLS: u64 = 1_000;

/// Nested calls from inside a task: nestloop's `block_on`, async-executor's
/// `block_on(ex.run(..))` (the one peer that survives nesting), and a plain
/// function call as the floor.
fn nested(c: &mut Criterion) {
    let mut group = c.benchmark_group("nested call of a ready future, from a task (per call)");
    group.throughput(Throughput::Elements(NESTED_CALLS));
    let ex = nestloop::Executor::new();
    group.bench_function("plain function call", |b| {
        b.iter(|| {
            ex.block_on(ex.spawn(async {
                for i in 0..NESTED_CALLS {
                    black_box(plain(black_box(i)));
                }
            }))
            .unwrap()
        })
    });
    group.bench_function("nestloop block_on", |b| {
        b.iter(|| {
            ex.block_on(ex.spawn(async {
                for i in 0..NESTED_CALLS {
                    black_box(nestloop::block_on(ready(black_box(i))));
                }
            }))
            .unwrap()
        })
    });
    let local = std::rc::Rc::new(async_executor::LocalExecutor::new());
    group.bench_function("async-executor block_on(ex.run)", |b| {
        b.iter(|| {
            let l = local.clone();
            futures_lite::future::block_on(local.run(local.spawn(async move {
                for i in 0..NESTED_CALLS {
                    black_box(futures_lite::future::block_on(l.run(ready(black_box(i)))));
                }
            })))
        })
    });
    group.finish();

    let mut group = c.benchmark_group("nested call waiting for a sibling task (per call)");
    group.throughput(Throughput::Elements(NESTED_CALLS));
    group.bench_function("nestloop block_on", |b| {
        b.iter(|| {
            ex.block_on(ex.spawn(async {
                for i in 0..NESTED_CALLS {
                    let (tx, rx) = oneshot::channel();
                    drop(nestloop::spawn(async move { tx.send(i).unwrap() }));
                    black_box(nestloop::block_on(rx).unwrap());
                }
            }))
            .unwrap()
        })
    });
    group.bench_function("async-executor block_on(ex.run)", |b| {
        b.iter(|| {
            let l = local.clone();
            futures_lite::future::block_on(local.run(local.spawn(async move {
                for i in 0..NESTED_CALLS {
                    let (tx, rx) = oneshot::channel();
                    l.spawn(async move { tx.send(i).unwrap() }).detach();
                    black_box(futures_lite::future::block_on(l.run(rx)).unwrap());
                }
            })))
        })
    });
    group.finish();
}

#[inline(never)]
fn plain(i: u64) -> u64 {
    i
}

/// Timers: sleeps that fire, and sleeps that are polled once and dropped.
fn timers(c: &mut Criterion) {
    const SLEEPS: u64 = 10_000;
    let mut group = c.benchmark_group("10k sleeps of 1-5 ms that fire (per sleep)");
    group.throughput(Throughput::Elements(SLEEPS));
    group.sample_size(20);
    let ex = nestloop::Executor::new();
    group.bench_function("nestloop", |b| {
        b.iter(|| {
            ex.block_on(async {
                let handles: Vec<_> = (0..SLEEPS)
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
        })
    });
    let rt = peers::current_thread_runtime();
    group.bench_function("tokio current_thread", |b| {
        b.iter(|| {
            rt.block_on(async {
                let handles: Vec<_> = (0..SLEEPS)
                    .map(|i| {
                        tokio::spawn(tokio::time::sleep(Duration::from_micros(
                            1_000 + (i % 5) * 1_000,
                        )))
                    })
                    .collect();
                for h in handles {
                    h.await.unwrap();
                }
            })
        })
    });
    group.finish();

    let mut group = c.benchmark_group("10k sleeps polled once and dropped (per sleep)");
    group.throughput(Throughput::Elements(SLEEPS));
    group.bench_function("nestloop", |b| {
        b.iter(|| {
            ex.block_on(async {
                for i in 0..SLEEPS {
                    let mut sleep =
                        std::pin::pin!(nestloop::time::sleep(Duration::from_secs(60 + i)));
                    let _ = black_box(futures::poll!(sleep.as_mut()));
                }
            })
        })
    });
    group.bench_function("tokio current_thread", |b| {
        b.iter(|| {
            rt.block_on(async {
                for i in 0..SLEEPS {
                    let mut sleep = std::pin::pin!(tokio::time::sleep(Duration::from_secs(60 + i)));
                    let _ = black_box(futures::poll!(sleep.as_mut()));
                }
            })
        })
    });
    group.finish();
}

/// Another thread spawns 10k tasks: nestloop's `Spawner` against tokio's
/// `Handle::spawn` onto a current_thread runtime.
fn remote_spawn(c: &mut Criterion) {
    const TASKS: u64 = 10_000;
    let mut group = c.benchmark_group("another thread spawns 10k tasks (per task)");
    group.throughput(Throughput::Elements(TASKS));
    let ex = nestloop::Executor::new();
    group.bench_function("nestloop Spawner", |b| {
        b.iter(|| {
            let spawner = ex.spawner();
            ex.block_on(async move {
                let (tx, rx) = oneshot::channel();
                std::thread::spawn(move || {
                    let handles: Vec<_> = (0..TASKS)
                        .map(|i| spawner.spawn(async move { i }))
                        .collect();
                    tx.send(handles).unwrap();
                });
                for h in rx.await.unwrap() {
                    black_box(h.await.unwrap());
                }
            })
        })
    });
    let rt = peers::current_thread_runtime();
    group.bench_function("tokio Handle::spawn", |b| {
        b.iter(|| {
            let handle = rt.handle().clone();
            rt.block_on(async move {
                let (tx, rx) = oneshot::channel();
                std::thread::spawn(move || {
                    let handles: Vec<_> =
                        (0..TASKS).map(|i| handle.spawn(async move { i })).collect();
                    tx.send(handles).unwrap();
                });
                for h in rx.await.unwrap() {
                    black_box(h.await.unwrap());
                }
            })
        })
    });
    group.finish();
}

/// R1 drives every executor of the thread: an executor with no ready task
/// must cost the loops nothing. The yield workload on one executor, alone
/// on its thread and beside 100 idle executors, each with a pending task.
fn idle_executors(c: &mut Criterion) {
    const TASKS: usize = 200;
    const YIELDS: usize = 100;
    let mut group = c.benchmark_group("200 tasks x 100 yields, idle executors beside (per yield)");
    group.throughput(Throughput::Elements((TASKS * YIELDS) as u64));
    for idle in [0, 100] {
        let _idle: Vec<_> = (0..idle)
            .map(|_| {
                let ex = nestloop::Executor::new();
                let pending = ex.spawn(std::future::pending::<()>());
                (ex, pending)
            })
            .collect();
        let peer = Nestloop::new();
        group.bench_function(format!("nestloop, {idle} idle executors"), |b| {
            b.iter(|| yield_many(&peer, TASKS, YIELDS))
        });
    }
    group.finish();
}

criterion_group!(benches, peers, nested, timers, remote_spawn, idle_executors);
criterion_main!(benches);
