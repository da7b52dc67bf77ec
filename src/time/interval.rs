//! [`Interval`]: ticks at a fixed period, and what it does with missed ones.

use std::future::poll_fn;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use futures::stream::{FusedStream, Stream};

use super::sleep::{Sleep, sleep_until};

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
    /// # Cancel safety
    ///
    /// Cancel safe: the schedule lives in the `Interval`, not in the future, so
    /// a `tick()` dropped before it completes (a lost `select`) loses no tick;
    /// the next call returns it. The same holds for [`poll_tick`](Interval::poll_tick)
    /// and the [`Stream`](futures::stream::Stream) impl. As in tokio.
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

/// The ticks as a stream that never ends: each item is the instant the
/// tick was scheduled for, as [`tick`](Interval::tick) returns it (the
/// stream form of tokio's interval is tokio-stream's `IntervalStream`).
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use futures::StreamExt;
///
/// nestloop::block_on(async {
///     let ticks = nestloop::time::interval(Duration::from_millis(1));
///     let three: Vec<_> = ticks.take(3).collect().await;
///     assert_eq!(three[2] - three[0], Duration::from_millis(2));
/// });
/// ```
impl Stream for Interval {
    type Item = Instant;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Instant>> {
        self.get_mut().poll_tick(cx).map(Some)
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        (usize::MAX, None)
    }
}

/// Never terminated: an interval ticks forever.
impl FusedStream for Interval {
    fn is_terminated(&self) -> bool {
        false
    }
}
