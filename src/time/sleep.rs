//! [`Sleep`]: a timer of the thread's heap, fired by whichever loop runs.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use futures::task::AtomicWaker;

use crate::context;
use crate::park::TimerShared;
use crate::park::thread_key;

/// Waits until `duration` has passed.
///
/// # Panics
///
/// When polled outside any nestloop loop.
///
/// # Cancel safety
///
/// Cancel safe: a `Sleep` holds nothing but its deadline; dropping it ends
/// its timer. To wait for the same deadline across `select` rounds, keep the
/// `Sleep` and await `&mut sleep` (see [`Sleep`]). As in tokio.
///
/// # Examples
///
/// ```
/// use std::time::{Duration, Instant};
///
/// let start = Instant::now();
/// nestloop::block_on(nestloop::time::sleep(Duration::from_millis(10)));
/// assert!(start.elapsed() >= Duration::from_millis(10));
/// ```
pub fn sleep(duration: Duration) -> Sleep {
    sleep_until(Instant::now() + duration)
}

/// Waits until `deadline`.
///
/// # Panics
///
/// When polled outside any nestloop loop.
///
/// # Examples
///
/// ```
/// use std::time::{Duration, Instant};
///
/// let deadline = Instant::now() + Duration::from_millis(10);
/// nestloop::block_on(nestloop::time::sleep_until(deadline));
/// assert!(Instant::now() >= deadline);
/// ```
pub fn sleep_until(deadline: Instant) -> Sleep {
    Sleep {
        deadline,
        timer: None,
    }
}

/// The future of [`sleep`] and [`sleep_until`]. `Send`, `Unpin`.
///
/// # Cancel safety
///
/// Cancel safe. Polled as `&mut sleep` in a loop, it keeps its deadline from
/// one `select` round to the next (a fresh `sleep(d)` each round would start
/// over).
///
/// # Examples
///
/// ```
/// use std::time::Duration;
///
/// nestloop::block_on(async {
///     let mut sleep = nestloop::time::sleep(Duration::from_secs(3600));
///     sleep.reset(std::time::Instant::now()); // due now instead
///     sleep.await;
/// });
/// ```
#[must_use = "futures do nothing unless polled"]
pub struct Sleep {
    /// When it completes.
    deadline: Instant,
    /// The registration in a thread's heap, once polled there.
    timer: Option<Arc<TimerShared>>,
}

impl Sleep {
    /// When the sleep completes.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::{Duration, Instant};
    ///
    /// let at = Instant::now() + Duration::from_secs(1);
    /// assert_eq!(nestloop::time::sleep_until(at).deadline(), at);
    /// ```
    pub fn deadline(&self) -> Instant {
        self.deadline
    }

    /// Whether the deadline has passed.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    ///
    /// assert!(nestloop::time::sleep(Duration::ZERO).is_elapsed());
    /// assert!(!nestloop::time::sleep(Duration::from_secs(60)).is_elapsed());
    /// ```
    pub fn is_elapsed(&self) -> bool {
        Instant::now() >= self.deadline
    }

    /// Moves the deadline (earlier or later); the sleep can be awaited again.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::{Duration, Instant};
    ///
    /// let mut sleep = nestloop::time::sleep(Duration::from_secs(3600));
    /// let sooner = Instant::now() + Duration::from_millis(1);
    /// sleep.reset(sooner);
    /// assert_eq!(sleep.deadline(), sooner);
    /// ```
    pub fn reset(&mut self, deadline: Instant) {
        self.deadline = deadline;
        self.release();
    }

    /// Ends the registration; the heap drops its entry when it reaches it.
    fn release(&mut self) {
        if let Some(timer) = self.timer.take() {
            drop(timer.waker.take());
        }
    }
}

/// Panics unless a nestloop loop runs on this thread.
fn assert_in_loop() {
    if context::depth() == 0 {
        panic!(
            "nestloop: a nestloop timer (sleep, timeout or interval) was polled outside any \
             nestloop loop, where nothing would ever fire it. Await it inside \
             nestloop::block_on or in a task spawned on a nestloop executor"
        );
    }
}

impl Future for Sleep {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        assert_in_loop();
        if self
            .timer
            .as_ref()
            .is_some_and(|t| t.fired.load(Ordering::Acquire))
            || Instant::now() >= self.deadline
        {
            self.release();
            return Poll::Ready(());
        }
        let here = thread_key();
        match &self.timer {
            Some(timer) if timer.thread == here => timer.waker.register(cx.waker()),
            _ => {
                self.release();
                let timer = Arc::new(TimerShared {
                    waker: AtomicWaker::new(),
                    fired: AtomicBool::new(false),
                    thread: here,
                });
                timer.waker.register(cx.waker());
                let deadline = self.deadline;
                context::with(|ts| {
                    ts.timers.borrow_mut().insert(deadline, timer.clone());
                    // Registered while a loop of this thread waits in a
                    // reactor (by a task the reactor runs: a tokio task in
                    // a tokio park): the loop must look at its deadline.
                    ts.signal().local_work();
                });
                self.timer = Some(timer);
            }
        }
        Poll::Pending
    }
}

impl Drop for Sleep {
    fn drop(&mut self) {
        self.release();
    }
}

impl fmt::Debug for Sleep {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Sleep")
            .field("deadline", &self.deadline)
            .field("registered", &self.timer.is_some())
            .finish()
    }
}
