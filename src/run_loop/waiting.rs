//! How a `block_on` loop waits when nothing is ready: it parks its thread,
//! or, with features `async-io` and `tokio`, waits in a reactor that
//! processes I/O events on this thread meanwhile (see `crate::reactor`).
//! A busy loop hands the reactor a turn every `TURN_EVERY_POLLS` polls.

use std::time::Instant;

use super::Driver;
use super::deadlock::{check_deadlock, check_exiting};
use crate::context::RootState;
#[cfg(any(feature = "async-io", feature = "tokio"))]
use crate::reactor::{self, TURN_EVERY_POLLS};
use crate::sched::Executor;
#[cfg(feature = "async-io")]
use {
    super::{Step, interrupt::check_interrupt},
    crate::sched::Interrupted,
    std::task::Poll,
};

impl Driver<'_> {
    /// Nothing is ready: checks for a deadlock (R9) unless a timer is
    /// pending, then waits until a wake or the next timer.
    pub(super) fn park(&self, root: &RootState, active: &[Executor]) {
        let deadline = self.before_wait(root, active);
        #[cfg(feature = "tracing")]
        tracing::trace!(
            target: "nestloop",
            depth = self.ts.depth(),
            timeout = ?deadline.map(|d| d.saturating_duration_since(std::time::Instant::now())),
            "loop waits: nothing is ready",
        );
        // At thread exit tokio's own thread-locals may be gone: the loop
        // parks the plain way then.
        #[cfg(feature = "tokio")]
        if let Some(rt) = tokio_runtime(self.executor, active)
            && !self.ts.is_exiting()
        {
            // Other executors' runtimes, active too, get a turn now and
            // another within `OTHER_RUNTIMES_EVERY`: one wait can block in
            // one runtime only.
            let mut deadline = deadline;
            let mut others = other_runtimes(rt, active).peekable();
            if others.peek().is_some() {
                others.for_each(reactor::tokio::turn);
                let soon = Instant::now() + reactor::tokio::OTHER_RUNTIMES_EVERY;
                deadline = Some(deadline.map_or(soon, |d| d.min(soon)));
            }
            reactor::tokio::park(rt, self.ts.signal(), deadline, || {
                self.work_waiting(active) || self.timer_before(deadline)
            });
            return;
        }
        self.ts.signal().park(deadline);
    }

    /// The checks before a wait; returns its deadline, the next timer's.
    fn before_wait(&self, root: &RootState, active: &[Executor]) -> Option<Instant> {
        let ts = self.ts;
        let deadline = ts.timers.borrow_mut().next_deadline();
        if deadline.is_none() && ts.is_exiting() {
            check_exiting(ts, root);
        } else if deadline.is_none() && self.executor.inner.detect_deadlock {
            check_deadlock(ts, root, active);
        }
        ts.batch_pause.parking();
        deadline
    }

    /// Whether a timer now pending is due before `deadline` (`None`:
    /// never): one registered during the wait, by a task the reactor ran.
    #[cfg(feature = "tokio")]
    fn timer_before(&self, deadline: Option<Instant>) -> bool {
        let next = self.ts.timers.borrow_mut().next_deadline();
        next.is_some_and(|next| deadline.is_none_or(|deadline| next < deadline))
    }

    /// Whether this loop waits in `async_io::block_on`: not at thread exit,
    /// where async-io's own thread-locals may be gone, and not when it will
    /// wait in a tokio runtime instead (async-io's helper thread then drives
    /// async-io's reactor, as it does without the feature, and nothing
    /// starts that thread for a loop that only uses tokio).
    #[cfg(feature = "async-io")]
    pub(super) fn waits_in_async_io(&self) -> bool {
        if self.ts.is_exiting() || !reactor::async_io::usable() {
            return false;
        }
        #[cfg(feature = "tokio")]
        if tokio_runtime(self.executor, &self.ts.active_executors()).is_some() {
            return false;
        }
        true
    }

    /// After a busy step: whether the reactor is due a turn (and if so,
    /// the next one is `TURN_EVERY_POLLS` polls away).
    #[cfg(any(feature = "async-io", feature = "tokio"))]
    #[inline]
    pub(super) fn turn_due(&mut self) -> bool {
        if self.polls < self.next_turn {
            return false;
        }
        self.next_turn = self.polls + TURN_EVERY_POLLS;
        true
    }

    /// Gives a driven tokio runtime, if one is active, a turn without
    /// waiting.
    #[cfg(feature = "tokio")]
    pub(super) fn turn_tokio(&self) {
        if self.ts.is_exiting() {
            return;
        }
        let active = self.ts.active_executors();
        if let Some(rt) = tokio_runtime(self.executor, &active) {
            reactor::tokio::turn(rt);
            other_runtimes(rt, &active).for_each(reactor::tokio::turn);
        }
    }
}

/// The current_thread runtime a wait drives: the loop's own executor's,
/// else that of the first active executor that has one.
#[cfg(feature = "tokio")]
fn tokio_runtime<'a>(
    executor: &'a Executor,
    active: &'a [Executor],
) -> Option<&'a tokio::runtime::Runtime> {
    executor
        .inner
        .tokio_runtime
        .as_ref()
        .or_else(|| active.iter().find_map(|e| e.inner.tokio_runtime.as_ref()))
}

/// The runtimes of the active executors other than `rt`.
#[cfg(feature = "tokio")]
fn other_runtimes<'a>(
    rt: &'a tokio::runtime::Runtime,
    active: &'a [Executor],
) -> impl Iterator<Item = &'a tokio::runtime::Runtime> {
    active
        .iter()
        .filter_map(|e| e.inner.tokio_runtime.as_ref())
        .filter(move |other| !std::ptr::eq(*other, rt))
}

/// The rest of `drive` for a `block_on` loop with feature `async-io`: the
/// loop runs inside `async_io::block_on` and waits by returning `Pending`
/// to it (see `reactor::async_io`). With `turn_first`, the reactor gets a
/// turn before the next step.
#[cfg(feature = "async-io")]
pub(super) fn drive_in_async_io(
    driver: &mut Driver<'_>,
    root: &RootState,
    index: usize,
    mut turn_first: bool,
) -> Result<usize, Interrupted> {
    let ts = driver.ts;
    reactor::async_io::block_on(ts.signal(), |wait| {
        if std::mem::take(&mut turn_first) {
            wait.yield_to_reactor();
            return Poll::Pending;
        }
        loop {
            if let Err(interrupted) = check_interrupt(ts, index) {
                return Poll::Ready(Err(interrupted));
            }
            match driver.step() {
                Step::Done => return Poll::Ready(Ok(driver.polls)),
                Step::Busy => {
                    if driver.turn_due() {
                        #[cfg(feature = "tokio")]
                        driver.turn_tokio();
                        wait.yield_to_reactor();
                        return Poll::Pending;
                    }
                }
                Step::Idle(active) => {
                    #[cfg(feature = "tokio")]
                    if tokio_runtime(driver.executor, &active).is_some() {
                        // An executor with a tokio runtime became active
                        // during the loop: its reactor is the one waited
                        // in, and async-io's helper thread drives async-io's
                        // meanwhile.
                        driver.park(root, &active);
                        continue;
                    }
                    let deadline = driver.before_wait(root, &active);
                    wait.register();
                    if driver.work_waiting(&active)
                        || deadline.is_some_and(|deadline| !wait.wake_at(deadline))
                    {
                        wait.resume();
                        continue;
                    }
                    return Poll::Pending;
                }
            }
        }
    })
}
