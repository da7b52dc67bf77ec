//! The executors nestloop is compared with, behind one trait, shared by the
//! benchmarks.
#![allow(dead_code)]

use std::cell::RefCell;
use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll};

use futures::channel::mpsc;
use futures::task::LocalSpawnExt;
use futures::{FutureExt, StreamExt};

/// An executor under test, driven the way its users drive it.
pub trait Peer: Clone + 'static {
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
pub struct YieldOnce(bool);

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
pub struct Nestloop(nestloop::Executor);

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

/// A tokio join handle that yields the output (panics are not expected).
pub type TokioHandle<T> =
    futures::future::Map<tokio::task::JoinHandle<T>, fn(Result<T, tokio::task::JoinError>) -> T>;

/// The runtime both tokio peers run on.
pub fn current_thread_runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

#[derive(Clone)]
pub struct TokioCurrentThread(Rc<tokio::runtime::Runtime>);

impl Peer for TokioCurrentThread {
    type Handle<T: Send + 'static> = TokioHandle<T>;

    fn name() -> &'static str {
        "tokio current_thread"
    }
    fn new() -> Self {
        let rt = current_thread_runtime();
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
pub struct TokioLocalSet(Rc<(tokio::runtime::Runtime, tokio::task::LocalSet)>);

impl Peer for TokioLocalSet {
    type Handle<T: Send + 'static> = TokioHandle<T>;

    fn name() -> &'static str {
        "tokio LocalSet"
    }
    fn new() -> Self {
        let rt = current_thread_runtime();
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
pub struct LocalPool(
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
pub struct AsyncExecutor(Rc<async_executor::LocalExecutor<'static>>);

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

/// Another thread sends `n` messages over an unbounded channel.
pub fn remote_messages<P: Peer>(peer: &P, n: u64) -> u64 {
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
