//! The same workloads on nestloop and on its peers, in one run:
//! tokio (current_thread, and a LocalSet on it), futures' LocalPool and
//! async-executor's LocalExecutor. Throughput is per operation (task, yield,
//! ping-pong pair, call, message, spawn).
//!
//! ```sh
//! cargo bench --bench peers
//! ```

use std::cell::RefCell;
use std::future::{Future, ready};
use std::hint::black_box;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll};

use criterion::measurement::WallTime;
use criterion::{BenchmarkGroup, Criterion, Throughput, criterion_group, criterion_main};
use futures::FutureExt;
use futures::StreamExt;
use futures::channel::{mpsc, oneshot};
use futures::task::LocalSpawnExt;

/// An executor under test, driven the way its users drive it.
trait Peer: Clone + 'static {
    /// What `spawn` returns: a future of the task's output.
    type Handle<T: Send + 'static>: Future<Output = T> + Send + 'static;

    fn name() -> &'static str;
    fn new() -> Self;
    fn block_on<F: Future>(&self, future: F) -> F::Output;
    /// Spawns from inside `block_on`.
    fn spawn<F>(&self, future: F) -> Self::Handle<F::Output>
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static;
    /// The executor's own yield.
    fn yield_now() -> impl Future<Output = ()> + Send;
    /// Spawns a detached task from inside a task, without a handle to the
    /// executor (the chain workload's futures must be `Send` for tokio).
    fn spawn_from_task(future: impl Future<Output = ()> + Send + 'static);
}

thread_local! {
    /// The LocalPool of this thread's benchmarks, for `spawn_from_task`.
    static POOL_SPAWNER: RefCell<Option<futures::executor::LocalSpawner>> = const { RefCell::new(None) };
    /// The async-executor of this thread's benchmarks, for `spawn_from_task`.
    static LOCAL_EXECUTOR: RefCell<Option<Rc<async_executor::LocalExecutor<'static>>>> = const { RefCell::new(None) };
}

/// Yields once by waking itself (what `nestloop::yield_now` does).
struct YieldOnce(bool);

impl Future for YieldOnce {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        if self.0 {
            return Poll::Ready(());
        }
        self.0 = true;
        cx.waker().wake_by_ref();
        Poll::Pending
    }
}

#[derive(Clone)]
struct Nestloop(nestloop::Executor);

impl Peer for Nestloop {
    type Handle<T: Send + 'static> =
        futures::future::Map<nestloop::JoinHandle<T>, fn(Result<T, nestloop::JoinError>) -> T>;

    fn name() -> &'static str {
        "nestloop"
    }
    fn new() -> Self {
        Nestloop(nestloop::Executor::new())
    }
    fn block_on<F: Future>(&self, future: F) -> F::Output {
        self.0.block_on(future)
    }
    fn spawn<F>(&self, future: F) -> Self::Handle<F::Output>
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        self.0.spawn(future).map(Result::unwrap)
    }
    fn yield_now() -> impl Future<Output = ()> + Send {
        nestloop::yield_now()
    }
    fn spawn_from_task(future: impl Future<Output = ()> + Send + 'static) {
        drop(nestloop::spawn(future));
    }
}

#[derive(Clone)]
struct TokioCurrentThread(Rc<tokio::runtime::Runtime>);

impl Peer for TokioCurrentThread {
    type Handle<T: Send + 'static> = futures::future::Map<
        tokio::task::JoinHandle<T>,
        fn(Result<T, tokio::task::JoinError>) -> T,
    >;

    fn name() -> &'static str {
        "tokio current_thread"
    }
    fn new() -> Self {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        TokioCurrentThread(Rc::new(rt))
    }
    fn block_on<F: Future>(&self, future: F) -> F::Output {
        self.0.block_on(future)
    }
    fn spawn<F>(&self, future: F) -> Self::Handle<F::Output>
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        tokio::spawn(future).map(Result::unwrap)
    }
    fn yield_now() -> impl Future<Output = ()> + Send {
        tokio::task::yield_now()
    }
    fn spawn_from_task(future: impl Future<Output = ()> + Send + 'static) {
        drop(tokio::spawn(future));
    }
}

#[derive(Clone)]
struct TokioLocalSet(Rc<(tokio::runtime::Runtime, tokio::task::LocalSet)>);

impl Peer for TokioLocalSet {
    type Handle<T: Send + 'static> = futures::future::Map<
        tokio::task::JoinHandle<T>,
        fn(Result<T, tokio::task::JoinError>) -> T,
    >;

    fn name() -> &'static str {
        "tokio LocalSet"
    }
    fn new() -> Self {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        TokioLocalSet(Rc::new((rt, tokio::task::LocalSet::new())))
    }
    fn block_on<F: Future>(&self, future: F) -> F::Output {
        self.0.1.block_on(&self.0.0, future)
    }
    fn spawn<F>(&self, future: F) -> Self::Handle<F::Output>
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        tokio::task::spawn_local(future).map(Result::unwrap)
    }
    fn yield_now() -> impl Future<Output = ()> + Send {
        tokio::task::yield_now()
    }
    fn spawn_from_task(future: impl Future<Output = ()> + Send + 'static) {
        drop(tokio::task::spawn_local(future));
    }
}

#[derive(Clone)]
struct LocalPool(
    Rc<RefCell<futures::executor::LocalPool>>,
    futures::executor::LocalSpawner,
);

impl Peer for LocalPool {
    type Handle<T: Send + 'static> = futures::future::RemoteHandle<T>;

    fn name() -> &'static str {
        "futures LocalPool"
    }
    fn new() -> Self {
        let pool = futures::executor::LocalPool::new();
        let spawner = pool.spawner();
        POOL_SPAWNER.with(|s| *s.borrow_mut() = Some(spawner.clone()));
        LocalPool(Rc::new(RefCell::new(pool)), spawner)
    }
    fn block_on<F: Future>(&self, future: F) -> F::Output {
        self.0.borrow_mut().run_until(future)
    }
    fn spawn<F>(&self, future: F) -> Self::Handle<F::Output>
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        self.1.spawn_local_with_handle(future).unwrap()
    }
    fn yield_now() -> impl Future<Output = ()> + Send {
        YieldOnce(false)
    }
    fn spawn_from_task(future: impl Future<Output = ()> + Send + 'static) {
        POOL_SPAWNER.with(|s| s.borrow().as_ref().unwrap().spawn_local(future).unwrap());
    }
}

#[derive(Clone)]
struct AsyncExecutor(Rc<async_executor::LocalExecutor<'static>>);

impl Peer for AsyncExecutor {
    type Handle<T: Send + 'static> = async_executor::Task<T>;

    fn name() -> &'static str {
        "async-executor"
    }
    fn new() -> Self {
        let ex = Rc::new(async_executor::LocalExecutor::new());
        LOCAL_EXECUTOR.with(|e| *e.borrow_mut() = Some(ex.clone()));
        AsyncExecutor(ex)
    }
    fn block_on<F: Future>(&self, future: F) -> F::Output {
        futures_lite::future::block_on(self.0.run(future))
    }
    fn spawn<F>(&self, future: F) -> Self::Handle<F::Output>
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        self.0.spawn(future)
    }
    fn yield_now() -> impl Future<Output = ()> + Send {
        futures_lite::future::yield_now()
    }
    fn spawn_from_task(future: impl Future<Output = ()> + Send + 'static) {
        LOCAL_EXECUTOR.with(|e| e.borrow().as_ref().unwrap().spawn(future).detach());
    }
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

/// Another thread sends `n` messages over an unbounded channel.
fn remote_messages<P: Peer>(peer: &P, n: u64) -> u64 {
    peer.block_on(async {
        let (tx, rx) = mpsc::unbounded::<u64>();
        let sender = std::thread::spawn(move || {
            for i in 0..n {
                tx.unbounded_send(i).unwrap();
            }
        });
        let sum = rx.fold(0, |acc, v| async move { acc + v }).await;
        sender.join().unwrap();
        sum
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
}

criterion_group!(benches, peers);
criterion_main!(benches);
