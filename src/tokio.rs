//! Working with tokio (feature `tokio`).
//!
//! * **nestloop inside tokio.** The outermost `block_on` of a thread blocks
//!   that thread until its future is done. What that does to tokio depends
//!   on what the thread is doing for tokio:
//!   * **Blocks the thread directly** where the thread does not drive a
//!     tokio scheduler: a thread of tokio's blocking pool (in
//!     [`tokio::task::spawn_blocking`], of either runtime flavor; tokio's own
//!     `Handle::block_on` works there too, tokio issue 2679), a plain thread
//!     that only entered a runtime's context (`Runtime::enter`), and the
//!     thread in a multi-thread runtime's `block_on` (`#[tokio::main]`'s main
//!     function), which is not one of its workers. The runtime's tasks run on
//!     other threads meanwhile. (On a plain thread that entered a
//!     current_thread runtime, that runtime's tasks and timers run only while
//!     some thread is in its `Runtime::block_on`.)
//!   * **Blocks the thread directly, in a `LocalSet` on a multi-thread
//!     runtime** (in its `run_until` future and its `spawn_local` tasks;
//!     tokio issue 7368). tokio refuses `block_in_place` there, and offers no
//!     way to tell the `LocalSet` apart from the runtime's `block_on` it runs
//!     in, so nestloop blocks as it does there. The `LocalSet`'s other tasks
//!     wait until the loop returns: a future that waits for one of them never
//!     completes. Run such work with `tokio::spawn`, or `.await` it.
//!   * **Blocks through [`tokio::task::block_in_place`]** on a worker thread
//!     of a multi-thread runtime (in a `tokio::spawn` task): tokio hands the
//!     worker's other tasks to another thread first, so they keep running
//!     while the nestloop loop blocks this one.
//!   * **Panics** with a `nestloop:` message inside a *current_thread*
//!     runtime: in its `block_on` future, in its tasks and in a `LocalSet` it
//!     runs. Blocking there would stop the runtime's only thread, so the tokio
//!     tasks, timers and I/O the future may need could never run (tokio
//!     refuses `block_in_place` there for the same reason). Call
//!     `nestloop::block_on` inside `spawn_blocking`, use a multi-thread
//!     runtime, or `.await` the future instead.
//!
//!   nestloop tells these apart by asking tokio whether a scheduler runs on
//!   the thread (it polls [`tokio::task::yield_now`] once: a scheduler keeps
//!   the waker, elsewhere tokio wakes it at once) and, where one does, by
//!   the flavor of the current runtime handle (if you entered another
//!   runtime's handle inside a runtime, the entered one decides). Wherever
//!   the loop runs, tokio's cooperative budget is lifted, as `block_in_place`
//!   does, so tokio futures in the loop are not made to yield for good by a
//!   budget only the outer tokio poll could renew. Where the loop blocks
//!   directly inside a runtime's `block_on`, the thread is still inside that
//!   runtime: tokio's own blocking calls made in the loop
//!   (`Handle::block_on`, `blocking_recv`, dropping a `Runtime`) need
//!   [`tokio::task::block_in_place`] around them, as they would in that
//!   `block_on` future.
//! * **tokio inside nestloop.** Futures of `tokio::net` and `tokio::time`
//!   need a tokio runtime context while they are polled, and a thread that
//!   drives the runtime's I/O and timer drivers. Two ways:
//!   * [`Builder::tokio_current_thread`](crate::Builder::tokio_current_thread):
//!     the executor owns a current_thread runtime, its polls enter that
//!     runtime's context, and the loops of its thread drive it while they
//!     wait (in the runtime's `block_on`), at every nesting depth. No tokio
//!     thread runs. A task spawned with `tokio::spawn` runs inside that
//!     `block_on`, so a nested `block_on` called from it panics with advice:
//!     spawn such work with nestloop instead.
//!   * [`Builder::tokio_handle`](crate::Builder::tokio_handle) with the
//!     handle of a multi-thread runtime, whose worker threads drive the I/O
//!     (every poll of the executor's tasks and `block_on` futures enters
//!     its context), or [`with_runtime`] for one future.
//!
//!   In an executor with neither (`Executor::new()`), tokio panics with
//!   "there is no reactor running, must be called from the context of a
//!   Tokio 1.x runtime" when such a future is polled. nestloop passes that
//!   panic on with a `nestloop:` message that names both ways: a task's
//!   [`JoinError`](crate::JoinError) carries it, and a `block_on` whose
//!   future panicked so panics with it (after the panic hook printed
//!   tokio's).
//!
//! # Examples
//!
//! ```
//! use std::time::Duration;
//!
//! let rt = tokio::runtime::Builder::new_multi_thread()
//!     .worker_threads(1)
//!     .enable_all()
//!     .build()
//!     .unwrap();
//! let ex = nestloop::Executor::builder().tokio_handle(rt.handle().clone()).build();
//! let slept = ex.block_on(async {
//!     // tokio's timer, polled by nestloop.
//!     tokio::time::sleep(Duration::from_millis(5)).await;
//!     "done"
//! });
//! assert_eq!(slept, "done");
//! ```
//!
//! Synchronous code in a current_thread runtime's task moves to the
//! blocking pool to wait with nestloop:
//!
//! ```
//! let rt = tokio::runtime::Builder::new_current_thread().build().unwrap();
//! let n = rt.block_on(async {
//!     tokio::task::spawn_blocking(|| nestloop::block_on(async { 6 * 7 }))
//!         .await
//!         .unwrap()
//! });
//! assert_eq!(n, 42);
//! ```

use std::cell::Cell;
use std::future::Future;
use std::pin::{Pin, pin};
use std::sync::{Arc, LazyLock};
use std::task::{Context, Poll, Wake, Waker};

use pin_project_lite::pin_project;
use tokio::runtime::{Handle, RuntimeFlavor};

/// What tokio says, in every version since 1.0, when a future that needs
/// a runtime is polled outside one.
const NO_RUNTIME: &str = "must be called from the context of a Tokio 1.x runtime";

/// nestloop's advice in place of a panic `message` of a task or
/// `block_on` future that is tokio's "no runtime" one; `None` for any other.
pub(crate) fn explain_missing_runtime(message: &str) -> Option<String> {
    if !message.contains(NO_RUNTIME) {
        return None;
    }
    Some(format!(
        "nestloop: a tokio call (tokio::net, tokio::time, tokio::spawn) ran in a task or \
         block_on future of an executor that has no tokio runtime. Build the executor with \
         Executor::builder().tokio_current_thread().build() to give it a current_thread \
         runtime that nestloop's loops drive on this thread (no tokio threads), or with \
         Builder::tokio_handle(handle) to use a running runtime's. (tokio said: {message})"
    ))
}

/// Runs `f`, the outermost nestloop loop of this thread (it blocks the
/// thread until its future is done), in the way the tokio context of the
/// thread allows; see the module docs.
pub(crate) fn blocking<R>(f: impl FnOnce() -> R) -> R {
    let Ok(handle) = Handle::try_current() else {
        // No runtime context: nothing of tokio's runs on this thread.
        return f();
    };
    if !runs_a_scheduler() {
        // A blocking-pool thread, a thread that only entered a context, or a
        // runtime's `block_on` that is not on a worker (a `LocalSet` in it
        // included, which tokio does not let us tell apart): no tokio task
        // waits for this thread, so the loop blocks it directly.
        return unconstrained(f);
    }
    // The thread is a multi-thread worker or runs a current_thread
    // scheduler; the flavor of its current handle tells which (the handle is
    // the scheduler's unless the caller entered another runtime's handle).
    match handle.runtime_flavor() {
        RuntimeFlavor::MultiThread => tokio::task::block_in_place(f),
        _ => panic!(
            "nestloop: block_on called inside a tokio current_thread runtime (in its block_on \
             future, one of its tasks, or a LocalSet it runs): blocking would stop the runtime's \
             only thread, so the tokio tasks, timers and I/O the future may need could never \
             run. Call nestloop::block_on inside tokio::task::spawn_blocking, use a multi_thread \
             runtime (nestloop then blocks through tokio::task::block_in_place), or .await the \
             future instead"
        ),
    }
}

/// Whether a tokio scheduler runs on this thread, with this thread inside
/// it: a current_thread runtime's `block_on` (its tasks included) or a
/// multi-thread worker that holds its run queue.
///
/// Polls `tokio::task::yield_now` once: tokio hands the waker to the
/// scheduler running on the thread, to be woken after its other ready tasks,
/// and wakes it at once where none runs (blocking-pool threads, threads that
/// only entered a context, a `block_on` that is not a worker's, a worker
/// inside `block_in_place`).
fn runs_a_scheduler() -> bool {
    PROBE_WOKEN.set(false);
    let polled = pin!(tokio::task::yield_now()).poll(&mut Context::from_waker(&PROBE_WAKER));
    debug_assert!(
        polled.is_pending(),
        "yield_now is pending on its first poll"
    );
    !PROBE_WOKEN.get()
}

thread_local! {
    /// Set when [`PROBE_WAKER`] is woken on this thread.
    static PROBE_WOKEN: Cell<bool> = const { Cell::new(false) };
}

/// The waker of [`runs_a_scheduler`]'s probe. A scheduler may keep a clone
/// and wake it later, on any thread: that only sets [`PROBE_WOKEN`] there,
/// which the next probe on that thread clears first.
static PROBE_WAKER: LazyLock<Waker> = LazyLock::new(|| Waker::from(Arc::new(Probe)));

/// See [`PROBE_WAKER`].
struct Probe;

impl Wake for Probe {
    fn wake(self: Arc<Self>) {
        PROBE_WOKEN.set(true);
    }

    fn wake_by_ref(self: &Arc<Self>) {
        PROBE_WOKEN.set(true);
    }
}

/// Runs `f` with tokio's cooperative budget lifted (restored on return and
/// on unwind), as `block_in_place` does.
fn unconstrained<R>(f: impl FnOnce() -> R) -> R {
    let mut f = Some(f);
    let run = pin!(tokio::task::coop::unconstrained(std::future::poll_fn(
        |_| Poll::Ready(f.take().map(|f| f()))
    )));
    match run.poll(&mut Context::from_waker(Waker::noop())) {
        Poll::Ready(Some(output)) => output,
        _ => unreachable!("nestloop: internal error: the blocking closure did not run"),
    }
}

/// Polls `future` inside the context of the tokio runtime `handle`, so it
/// can use `tokio::net`, `tokio::time` and `tokio::spawn`. For a whole
/// executor, see [`Builder::tokio_handle`](crate::Builder::tokio_handle).
///
/// # Examples
///
/// ```
/// use std::time::Duration;
///
/// let rt = tokio::runtime::Runtime::new().unwrap();
/// let future = nestloop::tokio::with_runtime(rt.handle().clone(), async {
///     tokio::time::sleep(Duration::from_millis(5)).await;
///     7
/// });
/// assert_eq!(nestloop::block_on(future), 7);
/// ```
pub fn with_runtime<F: Future>(handle: Handle, future: F) -> WithRuntime<F> {
    WithRuntime { handle, future }
}

pin_project! {
    /// The future of [`with_runtime`].
    ///
    /// # Cancel safety
    ///
    /// As cancel safe as the inner future, which it drops with itself.
    ///
    /// # Examples
    ///
    /// ```
    /// let rt = tokio::runtime::Runtime::new().unwrap();
    /// let future: nestloop::tokio::WithRuntime<_> =
    ///     nestloop::tokio::with_runtime(rt.handle().clone(), async { tokio::task::yield_now().await });
    /// nestloop::block_on(future);
    /// ```
    #[derive(Debug)]
    #[must_use = "futures do nothing unless polled"]
    pub struct WithRuntime<F> {
        handle: Handle,
        #[pin]
        future: F,
    }
}

impl<F: Future> Future for WithRuntime<F> {
    type Output = F::Output;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        let this = self.project();
        // Left and entered again with this stack if a `block_on` inside
        // suspends it (R12).
        let _context = crate::thread_context::enter_runtime(this.handle);
        this.future.poll(cx)
    }
}
