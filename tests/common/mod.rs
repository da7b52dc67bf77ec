//! Helpers shared by the integration tests.
#![allow(dead_code)]

use std::any::Any;
use std::cell::Cell;
use std::future::Future;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::pin::Pin;
use std::rc::Rc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, mpsc};
use std::task::{Context, Poll};
use std::thread;
use std::time::Duration;

/// How long a scenario may run before the test fails as hung.
pub const DEADLINE: Duration = Duration::from_secs(30);

/// Runs `scenario` on its own thread and fails the test if it does not
/// finish within [`DEADLINE`]; a panic in the scenario fails the test too.
pub fn watchdog<T: Send + 'static>(scenario: impl FnOnce() -> T + Send + 'static) -> T {
    watchdog_with(2 << 20, DEADLINE, scenario)
}

/// [`watchdog`] with a given thread stack size and deadline.
pub fn watchdog_with<T: Send + 'static>(
    stack_size: usize,
    deadline: Duration,
    scenario: impl FnOnce() -> T + Send + 'static,
) -> T {
    let (tx, rx) = mpsc::channel();
    let worker = thread::Builder::new()
        .name("scenario".into())
        .stack_size(stack_size)
        .spawn(move || {
            let result = catch_unwind(AssertUnwindSafe(scenario));
            let _ = tx.send(());
            result
        })
        .expect("spawn scenario thread");
    match rx.recv_timeout(deadline) {
        Ok(()) | Err(mpsc::RecvTimeoutError::Disconnected) => match worker.join() {
            Ok(Ok(value)) => value,
            Ok(Err(payload)) | Err(payload) => std::panic::resume_unwind(payload),
        },
        Err(mpsc::RecvTimeoutError::Timeout) => {
            panic!("scenario hung: still running after {deadline:?}")
        }
    }
}

/// CPU time the calling thread has used, from Linux's schedstat; `None`
/// elsewhere, and under Miri (no host files, and no real time to measure).
pub fn thread_cpu_time() -> Option<Duration> {
    if cfg!(miri) {
        return None;
    }
    let stat = std::fs::read_to_string("/proc/thread-self/schedstat").ok()?;
    let ns: u64 = stat.split_whitespace().next()?.parse().ok()?;
    Some(Duration::from_nanos(ns))
}

/// The message of a panic payload.
pub fn panic_message(payload: &(dyn Any + Send)) -> String {
    if let Some(s) = payload.downcast_ref::<&str>() {
        (*s).to_owned()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "<non-string panic>".to_owned()
    }
}

/// Runs `f`, expecting a panic, and returns its message.
pub fn expect_panic<T>(f: impl FnOnce() -> T) -> String {
    match catch_unwind(AssertUnwindSafe(f)) {
        Ok(_) => panic!("expected a panic"),
        Err(payload) => panic_message(&*payload),
    }
}

/// Counts drops of the values it hands out (thread-safe).
#[derive(Clone, Default)]
pub struct DropCounter(Arc<AtomicUsize>);

impl DropCounter {
    pub fn new() -> Self {
        Self::default()
    }

    /// A value that counts one drop when dropped.
    pub fn token(&self) -> DropToken {
        DropToken(self.0.clone())
    }

    pub fn dropped(&self) -> usize {
        self.0.load(Ordering::SeqCst)
    }
}

/// See [`DropCounter::token`].
pub struct DropToken(Arc<AtomicUsize>);

impl Drop for DropToken {
    fn drop(&mut self) {
        self.0.fetch_add(1, Ordering::SeqCst);
    }
}

/// Observations of a [`Probe`]d future.
#[derive(Clone, Default)]
pub struct ProbeStats {
    pub polls: Rc<Cell<usize>>,
    pub in_poll: Rc<Cell<bool>>,
    pub dropped: Rc<Cell<bool>>,
}

/// Wraps a future; panics if it is polled while already being polled
/// (a reentrant poll) and counts polls and drops.
pub struct Probe<F> {
    inner: Pin<Box<F>>,
    stats: ProbeStats,
}

impl<F> Probe<F> {
    pub fn new(inner: F) -> (Self, ProbeStats) {
        let stats = ProbeStats::default();
        (
            Probe {
                inner: Box::pin(inner),
                stats: stats.clone(),
            },
            stats,
        )
    }
}

impl<F: Future> Future for Probe<F> {
    type Output = F::Output;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        assert!(
            !self.stats.in_poll.get(),
            "reentrant poll of a future on the stack"
        );
        self.stats.in_poll.set(true);
        self.stats.polls.set(self.stats.polls.get() + 1);
        /// Clears `in_poll` on return and unwind.
        struct Leave(Rc<Cell<bool>>);
        impl Drop for Leave {
            fn drop(&mut self) {
                self.0.set(false);
            }
        }
        let _leave = Leave(self.stats.in_poll.clone());
        self.inner.as_mut().poll(cx)
    }
}

impl<F> Drop for Probe<F> {
    fn drop(&mut self) {
        assert!(!self.stats.dropped.get(), "future dropped twice");
        self.stats.dropped.set(true);
    }
}

/// A future that is pending until its flag is set, registering its waker.
pub fn until(flag: Rc<Cell<bool>>) -> impl Future<Output = ()> {
    std::future::poll_fn(move |cx| {
        if flag.get() {
            Poll::Ready(())
        } else {
            // Re-polled by a waker held in a task that sets the flag.
            WAKERS.with(|w| w.borrow_mut().push(cx.waker().clone()));
            Poll::Pending
        }
    })
}

thread_local! {
    static WAKERS: std::cell::RefCell<Vec<std::task::Waker>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// Wakes every waker registered by [`until`] on this thread.
pub fn wake_all_until() {
    let wakers: Vec<_> = WAKERS.with(|w| w.borrow_mut().drain(..).collect());
    for w in wakers {
        w.wake();
    }
}

/// Output a test can read back (a `Write` that keeps what it gets).
#[derive(Clone, Default)]
pub struct Captured(Rc<std::cell::RefCell<Vec<u8>>>);

impl Captured {
    /// Everything written so far.
    pub fn text(&self) -> String {
        String::from_utf8(self.0.borrow().clone()).expect("utf-8 output")
    }
}

impl std::io::Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.borrow_mut().extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// A future that keeps `value` until it is dropped and never completes:
/// a pending task whose drop a [`DropToken`] can observe.
pub async fn hold_forever<T>(value: T) {
    let _value = value;
    std::future::pending::<()>().await;
}

/// A future that yields forever: a task that always has work.
pub async fn busy() {
    loop {
        nestloop::yield_now().await;
    }
}

/// A value whose destructor panics with `message` (after dropping the
/// optional drop token it carries, so the drop is still counted).
pub struct PanicOnDrop {
    message: &'static str,
    _token: Option<DropToken>,
}

impl PanicOnDrop {
    pub fn new(message: &'static str) -> Self {
        PanicOnDrop {
            message,
            _token: None,
        }
    }

    pub fn counted(message: &'static str, token: DropToken) -> Self {
        PanicOnDrop {
            message,
            _token: Some(token),
        }
    }
}

impl Drop for PanicOnDrop {
    fn drop(&mut self) {
        drop(self._token.take());
        panic!("{}", self.message);
    }
}

/// Wakes of [`WakeCounts::wrap`]ped futures, by the thread that woke them.
#[derive(Clone, Default)]
pub struct WakeCounts {
    /// Made on the thread that polls the future.
    pub same_thread: Arc<AtomicUsize>,
    /// Made on any other thread.
    pub other_thread: Arc<AtomicUsize>,
}

impl WakeCounts {
    /// `future`, with every wake of its waker counted by the waking thread.
    pub fn wrap<F: Future>(&self, future: F) -> impl Future<Output = F::Output> + use<F> {
        let counts = self.clone();
        let home = thread::current().id();
        let mut future = Box::pin(future);
        std::future::poll_fn(move |cx| {
            let (inner, counts) = (cx.waker().clone(), counts.clone());
            let waker = waker_fn::waker_fn(move || {
                let count = if thread::current().id() == home {
                    &counts.same_thread
                } else {
                    &counts.other_thread
                };
                count.fetch_add(1, Ordering::SeqCst);
                inner.wake_by_ref();
            });
            future.as_mut().poll(&mut Context::from_waker(&waker))
        })
    }

    /// (same thread, other threads).
    pub fn get(&self) -> (usize, usize) {
        (
            self.same_thread.load(Ordering::SeqCst),
            self.other_thread.load(Ordering::SeqCst),
        )
    }
}

/// Runs a closure when dropped.
pub struct OnDrop<F: FnOnce()>(Option<F>);

impl<F: FnOnce()> OnDrop<F> {
    pub fn new(f: F) -> Self {
        OnDrop(Some(f))
    }
}

impl<F: FnOnce()> Drop for OnDrop<F> {
    fn drop(&mut self) {
        if let Some(f) = self.0.take() {
            f();
        }
    }
}

/// Joins `thread` if it ends within `deadline` (its thread-local
/// destructors included: `join` waits for them); `Err(())` if it is still
/// running then, as hung, or if it panicked.
pub fn join_within<T: Send + 'static>(
    thread: thread::JoinHandle<T>,
    deadline: Duration,
) -> Result<T, ()> {
    let (tx, rx) = mpsc::channel();
    thread::spawn(move || {
        let _ = tx.send(thread.join());
    });
    match rx.recv_timeout(deadline) {
        Ok(Ok(value)) => Ok(value),
        _ => Err(()),
    }
}

/// An executor whose calls nest a loop on the caller's stack (fibers off):
/// for the tests of the nested-loop model (stack order, depth per waiting
/// call, deeper loops polling outer futures), whatever the default is.
pub fn nesting() -> nestloop::Executor {
    nestloop::Executor::builder().fibers(false).build()
}
