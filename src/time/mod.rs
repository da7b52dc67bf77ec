//! Timers: [`sleep`], [`sleep_until`], [`timeout`] and [`interval`].
//!
//! Timers belong to the thread that polls them: each registers in a heap of
//! that thread, and every nestloop loop on the thread (at any depth, of any
//! executor) fires the timers that are due. A loop with nothing to do sleeps
//! until the next deadline; there is no timer thread and no spinning.
//!
//! A timer must be polled inside a nestloop loop (`block_on`,
//! `run_until_stalled`, or a task they run); polled anywhere else it panics,
//! since nothing there would ever fire it. A timer moved to another thread
//! registers with the loops of the thread that polls it next.
//!
//! A timer polled by some other executor's `block_on` called from inside a
//! nestloop task registers, but fires only once a nestloop loop runs again:
//! use `nestloop::block_on` there instead, which keeps the timers going.
//!
//! # Examples
//!
//! ```
//! use std::time::Duration;
//! use nestloop::time;
//!
//! nestloop::block_on(async {
//!     time::sleep(Duration::from_millis(5)).await;
//!     let slow = time::timeout(Duration::from_millis(5), std::future::pending::<()>()).await;
//!     assert!(slow.is_err());
//! });
//! ```

mod heap;

use std::fmt;
use std::future::{Future, poll_fn};
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use futures::task::AtomicWaker;
use pin_project_lite::pin_project;

use crate::frames;
use crate::park::thread_key;

pub(crate) use heap::TimerHeap;
use heap::TimerShared;

/// Waits until `duration` has passed.
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
    if frames::depth() == 0 {
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
                frames::with(|ts| ts.timers.borrow_mut().insert(deadline, timer.clone()));
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

/// Runs `future` with a time limit: `Ok(output)` if it completes within
/// `duration`, else `Err(Elapsed)` (and `future` is dropped with the
/// `Timeout`).
///
/// `future` is polled first, so a future that is ready at once wins even
/// with a zero duration.
///
/// # Panics
///
/// When the timer part is polled outside any nestloop loop.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use nestloop::time::timeout;
///
/// nestloop::block_on(async {
///     assert_eq!(timeout(Duration::ZERO, async { 1 }).await, Ok(1));
///     assert!(timeout(Duration::from_millis(1), std::future::pending::<()>()).await.is_err());
/// });
/// ```
pub fn timeout<F: Future>(duration: Duration, future: F) -> Timeout<F> {
    Timeout {
        future,
        sleep: sleep(duration),
    }
}

/// Like [`timeout`], with a deadline instead of a duration.
///
/// # Examples
///
/// ```
/// use std::time::{Duration, Instant};
///
/// let deadline = Instant::now() + Duration::from_millis(1);
/// let result = nestloop::block_on(nestloop::time::timeout_at(deadline, std::future::pending::<()>()));
/// assert!(result.is_err());
/// ```
pub fn timeout_at<F: Future>(deadline: Instant, future: F) -> Timeout<F> {
    Timeout {
        future,
        sleep: sleep_until(deadline),
    }
}

pin_project! {
    /// The future of [`timeout`]. `Send` when the inner future is.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    ///
    /// let limited = nestloop::time::timeout(Duration::from_secs(1), async { "fast" });
    /// assert_eq!(nestloop::block_on(limited), Ok("fast"));
    /// ```
    #[must_use = "futures do nothing unless polled"]
    pub struct Timeout<F> {
        #[pin]
        future: F,
        sleep: Sleep,
    }
}

impl<F> Timeout<F> {
    /// The inner future.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    ///
    /// let limited = nestloop::time::timeout(Duration::from_secs(1), std::future::ready(5));
    /// assert_eq!(limited.get_ref().clone().into_inner(), 5);
    /// ```
    pub fn get_ref(&self) -> &F {
        &self.future
    }

    /// The inner future, mutably.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    ///
    /// let mut limited = nestloop::time::timeout(Duration::from_secs(1), std::future::ready(5));
    /// let inner: &mut std::future::Ready<i32> = limited.get_mut();
    /// assert_eq!(nestloop::block_on(inner), 5);
    /// ```
    pub fn get_mut(&mut self) -> &mut F {
        &mut self.future
    }

    /// The inner future.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    ///
    /// let limited = nestloop::time::timeout(Duration::from_secs(1), async { 3 });
    /// assert_eq!(nestloop::block_on(limited.into_inner()), 3);
    /// ```
    pub fn into_inner(self) -> F {
        self.future
    }

    /// When the time limit expires.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::{Duration, Instant};
    ///
    /// let at = Instant::now() + Duration::from_secs(1);
    /// assert_eq!(nestloop::time::timeout_at(at, async {}).deadline(), at);
    /// ```
    pub fn deadline(&self) -> Instant {
        self.sleep.deadline()
    }
}

impl<F: Future> Future for Timeout<F> {
    type Output = Result<F::Output, Elapsed>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        if let Poll::Ready(output) = this.future.poll(cx) {
            return Poll::Ready(Ok(output));
        }
        match Pin::new(this.sleep).poll(cx) {
            Poll::Ready(()) => Poll::Ready(Err(Elapsed(()))),
            Poll::Pending => Poll::Pending,
        }
    }
}

impl<F: fmt::Debug> fmt::Debug for Timeout<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Timeout")
            .field("future", &self.future)
            .field("deadline", &self.sleep.deadline)
            .finish()
    }
}

/// The error of a [`timeout`] whose time ran out.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
///
/// let err = nestloop::block_on(nestloop::time::timeout(
///     Duration::ZERO,
///     std::future::pending::<()>(),
/// ))
/// .unwrap_err();
/// assert_eq!(err.to_string(), "deadline has elapsed");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Elapsed(());

impl fmt::Display for Elapsed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("deadline has elapsed")
    }
}

impl std::error::Error for Elapsed {}

impl From<Elapsed> for std::io::Error {
    fn from(_: Elapsed) -> Self {
        std::io::ErrorKind::TimedOut.into()
    }
}

/// What an [`Interval`] does when ticks were missed (the loop was busy past
/// one or more deadlines).
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use nestloop::time::{interval, MissedTickBehavior};
///
/// let mut ticks = interval(Duration::from_millis(10));
/// ticks.set_missed_tick_behavior(MissedTickBehavior::Delay);
/// assert_eq!(ticks.missed_tick_behavior(), MissedTickBehavior::Delay);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum MissedTickBehavior {
    /// Fire the missed ticks at once, one per `tick()`, to catch up with the
    /// original schedule (the default).
    #[default]
    Burst,
    /// Restart the schedule: the next tick is one period after the late one.
    Delay,
    /// Drop the missed ticks: the next tick is the next multiple of the
    /// period on the original schedule.
    Skip,
}

/// Creates an [`Interval`] whose first tick completes at once and later
/// ticks every `period`.
///
/// # Panics
///
/// When `period` is zero. Ticking panics when polled outside any nestloop
/// loop.
///
/// # Examples
///
/// ```
/// use std::time::{Duration, Instant};
///
/// nestloop::block_on(async {
///     let start = Instant::now();
///     let mut ticks = nestloop::time::interval(Duration::from_millis(5));
///     for _ in 0..3 {
///         ticks.tick().await;
///     }
///     assert!(start.elapsed() >= Duration::from_millis(10));
/// });
/// ```
pub fn interval(period: Duration) -> Interval {
    interval_at(Instant::now(), period)
}

/// Creates an [`Interval`] whose first tick completes at `start`.
///
/// # Panics
///
/// When `period` is zero.
///
/// # Examples
///
/// ```
/// use std::time::{Duration, Instant};
///
/// let start = Instant::now() + Duration::from_millis(5);
/// let mut ticks = nestloop::time::interval_at(start, Duration::from_millis(5));
/// let first = nestloop::block_on(ticks.tick());
/// assert_eq!(first, start);
/// ```
pub fn interval_at(start: Instant, period: Duration) -> Interval {
    assert!(
        !period.is_zero(),
        "nestloop: interval period must be greater than zero"
    );
    Interval {
        period,
        next: start,
        sleep: sleep_until(start),
        missed: MissedTickBehavior::default(),
    }
}

/// Ticks at a fixed period; see [`interval`]. `Send`.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
///
/// nestloop::block_on(async {
///     let mut ticks = nestloop::time::interval(Duration::from_millis(1));
///     let first = ticks.tick().await;
///     let second = ticks.tick().await;
///     assert_eq!(second - first, Duration::from_millis(1));
/// });
/// ```
#[derive(Debug)]
pub struct Interval {
    /// Time between ticks.
    period: Duration,
    /// When the next tick is scheduled.
    next: Instant,
    /// Sleeps until `next`.
    sleep: Sleep,
    /// What to do after missing ticks.
    missed: MissedTickBehavior,
}

impl Interval {
    /// Completes at the next tick and returns the instant it was scheduled
    /// for.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    ///
    /// let mut ticks = nestloop::time::interval(Duration::from_millis(1));
    /// let first = nestloop::block_on(ticks.tick());
    /// let second = nestloop::block_on(ticks.tick());
    /// assert!(second > first);
    /// ```
    pub async fn tick(&mut self) -> Instant {
        poll_fn(|cx| self.poll_tick(cx)).await
    }

    /// Polls for the next tick; see [`tick`](Interval::tick).
    ///
    /// # Examples
    ///
    /// ```
    /// use std::future::poll_fn;
    /// use std::time::Duration;
    ///
    /// let mut ticks = nestloop::time::interval(Duration::from_millis(1));
    /// nestloop::block_on(poll_fn(|cx| ticks.poll_tick(cx)));
    /// ```
    pub fn poll_tick(&mut self, cx: &mut Context<'_>) -> Poll<Instant> {
        if Pin::new(&mut self.sleep).poll(cx).is_pending() {
            return Poll::Pending;
        }
        let scheduled = self.next;
        let now = Instant::now();
        self.next = match self.missed {
            MissedTickBehavior::Burst => scheduled + self.period,
            MissedTickBehavior::Delay if now > scheduled + self.period => now + self.period,
            MissedTickBehavior::Skip if now > scheduled + self.period => {
                let behind = now.duration_since(scheduled).as_nanos();
                let periods = behind / self.period.as_nanos() + 1;
                let periods = u32::try_from(periods).unwrap_or(u32::MAX);
                scheduled + self.period.saturating_mul(periods)
            }
            _ => scheduled + self.period,
        };
        self.sleep.reset(self.next);
        Poll::Ready(scheduled)
    }

    /// Makes the next tick complete one period from now.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::{Duration, Instant};
    ///
    /// let mut ticks = nestloop::time::interval(Duration::from_millis(5));
    /// ticks.reset();
    /// let before = Instant::now();
    /// nestloop::block_on(ticks.tick());
    /// assert!(before.elapsed() >= Duration::from_millis(4));
    /// ```
    pub fn reset(&mut self) {
        self.next = Instant::now() + self.period;
        self.sleep.reset(self.next);
    }

    /// The time between ticks.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    ///
    /// let ticks = nestloop::time::interval(Duration::from_millis(3));
    /// assert_eq!(ticks.period(), Duration::from_millis(3));
    /// ```
    pub fn period(&self) -> Duration {
        self.period
    }

    /// The current [`MissedTickBehavior`].
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use nestloop::time::MissedTickBehavior;
    ///
    /// let ticks = nestloop::time::interval(Duration::from_millis(3));
    /// assert_eq!(ticks.missed_tick_behavior(), MissedTickBehavior::Burst);
    /// ```
    pub fn missed_tick_behavior(&self) -> MissedTickBehavior {
        self.missed
    }

    /// Sets what to do after missed ticks.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use nestloop::time::MissedTickBehavior;
    ///
    /// let mut ticks = nestloop::time::interval(Duration::from_millis(3));
    /// ticks.set_missed_tick_behavior(MissedTickBehavior::Skip);
    /// ```
    pub fn set_missed_tick_behavior(&mut self, behavior: MissedTickBehavior) {
        self.missed = behavior;
    }
}
