//! Working with tokio (feature `tokio`).
//!
//! * **nestloop inside tokio.** `block_on` called on a worker thread of a
//!   tokio multi-thread runtime (from a tokio task, say) runs through
//!   [`tokio::task::block_in_place`], so tokio moves its other tasks to
//!   another thread and they keep running while the nestloop loop blocks this
//!   one. Inside a tokio *current_thread* runtime, blocking its only thread
//!   would stall every tokio task and timer the future may need, so
//!   `block_on` panics there with a `nestloop:` message instead.
//! * **tokio inside nestloop.** Futures of `tokio::net` and `tokio::time`
//!   need a tokio runtime context while they are polled. Give an executor a
//!   runtime handle with [`Builder::tokio_handle`](crate::Builder::tokio_handle)
//!   (every poll of its tasks and `block_on` futures enters that context), or
//!   wrap one future with [`with_runtime`]. The runtime's I/O and timer
//!   drivers must run somewhere: use a multi-thread runtime, whose worker
//!   threads drive them.
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

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use pin_project_lite::pin_project;
use tokio::runtime::{Handle, RuntimeFlavor};

/// Runs `f` (a nestloop loop that is about to block this thread) so that a
/// tokio runtime this thread serves is not stalled: through `block_in_place`
/// on a multi-thread runtime; refused on a current_thread runtime.
pub(crate) fn blocking<R>(f: impl FnOnce() -> R) -> R {
    let Ok(handle) = Handle::try_current() else {
        return f();
    };
    match handle.runtime_flavor() {
        RuntimeFlavor::CurrentThread => panic!(
            "nestloop: block_on called inside a tokio current_thread runtime: it would block \
             the runtime's only thread, so the tokio tasks, timers and I/O its future may need \
             could never run. Use a multi_thread runtime (nestloop then blocks through \
             tokio::task::block_in_place), run the nestloop loop outside tokio, or .await the \
             future instead"
        ),
        // The other flavors hand this thread's work to another thread first
        // (and just run `f` when this thread is not one of theirs).
        _ => tokio::task::block_in_place(f),
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
        let _context = this.handle.enter();
        this.future.poll(cx)
    }
}
