//! `yield_now`: give other tasks a turn.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

/// Yields once: the first poll wakes the task and returns `Pending`, so every
/// task already ready runs before it resumes. Works in any executor (it only
/// wakes itself), and is `Send`.
///
/// # Cancel safety
///
/// Cancel safe: it holds nothing. Dropped after its first poll, the wake it
/// made stands, and the task is polled once more for nothing.
///
/// # Examples
///
/// ```
/// use std::cell::Cell;
/// use std::rc::Rc;
///
/// let ex = nestloop::Executor::new();
/// let turns = Rc::new(Cell::new(0));
/// let t = turns.clone();
/// ex.spawn(async move { t.set(t.get() + 1) });
/// ex.block_on(async {
///     assert_eq!(turns.get(), 0);
///     nestloop::yield_now().await; // the spawned task runs here
///     assert_eq!(turns.get(), 1);
/// });
/// ```
pub fn yield_now() -> YieldNow {
    YieldNow { yielded: false }
}

/// The future of [`yield_now`].
///
/// # Examples
///
/// ```
/// let fut: nestloop::YieldNow = nestloop::yield_now();
/// futures::executor::block_on(fut); // works in any executor
/// ```
#[derive(Debug)]
#[must_use = "futures do nothing unless polled"]
pub struct YieldNow {
    /// Whether the first poll happened.
    yielded: bool,
}

impl Future for YieldNow {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        if self.yielded {
            return Poll::Ready(());
        }
        self.yielded = true;
        cx.waker().wake_by_ref();
        Poll::Pending
    }
}
