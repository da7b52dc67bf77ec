//! How a `block_on` loop waits when nothing is ready: it parks its thread,
//! or, with features `async-io` and `tokio`, waits in a reactor that
//! processes I/O events on this thread meanwhile (see `crate::reactor`).
//! A busy loop hands the reactor a turn every `TURN_EVERY_POLLS` polls.

use std::time::Instant;

use super::Driver;
use super::deadlock::check_deadlock;
use crate::context::BlockOnState;
#[cfg(any(feature = "async-io", feature = "tokio", feature = "glib"))]
use crate::reactor::TURN_EVERY_POLLS;
use crate::sched::ThisThread;
#[cfg(feature = "async-io")]
use {super::Step, crate::sched::Interrupted, std::task::Poll};

impl Driver<'_> {
    /// Nothing is ready: checks for a deadlock (R9) unless a timer is
    /// pending, then waits until a wake or the next timer.
    pub(super) fn park(&self, root: &BlockOnState) {
        let deadline = self.before_wait(root);
        // The checks may have made work (R9 ended a call stuck in a fiber).
        if self.work_waiting() {
            return;
        }
        #[cfg(feature = "tracing")]
        tracing::trace!(
            target: "nestloop",
            depth = self.ts.depth(),
            timeout = ?deadline.map(|d| d.saturating_duration_since(std::time::Instant::now())),
            "loop waits: nothing is ready",
        );
        // The thread's GLib main context, if an executor has one: every
        // wait iterates it, and tokio runtimes get their turns.
        #[cfg(feature = "glib")]
        if !self.ts.is_exiting()
            && let Some(glib) = self.ts.glib_context()
        {
            #[cfg(feature = "tokio")]
            let turn_by = turn_others(&self.runtimes());
            #[cfg(not(feature = "tokio"))]
            let turn_by = None;
            glib.park(deadline, turn_by, || {
                self.work_waiting() || self.timer_before(deadline)
            });
            return;
        }
        // At thread exit tokio's own thread-locals may be gone: the loop
        // parks the plain way then.
        #[cfg(feature = "tokio")]
        let runtimes = self.runtimes();
        #[cfg(feature = "tokio")]
        if !self.ts.is_exiting()
            && let Some((rt, others)) = runtimes.split_first()
            && let Some(rt) = rt.tokio_runtime.as_ref()
        {
            // One wait can block in one runtime only.
            let turn_by = turn_others(others);
            crate::reactor::tokio::park(rt, self.ts.signal(), deadline, turn_by, || {
                self.work_waiting() || self.timer_before(deadline)
            });
            return;
        }
        self.ts.signal().park(deadline);
    }

    /// While an executor of the thread shuts down (at thread exit, all of
    /// them), a loop about to wait with no timer pending first drops a task
    /// of it that can never run again (`Inner::shut_down_dormant`), and
    /// steps again: the destructor the shutdown is running may wait for
    /// what that task holds (the other end of a channel, an event), which
    /// only its drop gives back. Returns whether it dropped one.
    pub(super) fn shut_down_dormant(&self) -> bool {
        let ts = self.ts;
        let exiting = ts.is_exiting();
        if !exiting && !ts.queue().is_shutting_down() {
            return false;
        }
        if ts.timers.borrow_mut().next_deadline().is_some() {
            return false;
        }
        let Some(here) = ThisThread::get() else {
            return false;
        };
        let executors = if exiting {
            let mut all = ts.registered();
            all.reverse(); // the newest first, as the exit goes
            all
        } else {
            ts.queue().shutting_down(here)
        };
        executors.iter().any(|e| e.shut_down_dormant())
    }

    /// The checks before a wait; returns its deadline, the next timer's.
    fn before_wait(&self, root: &BlockOnState) -> Option<Instant> {
        let ts = self.ts;
        check_other_builds(ts);
        let deadline = ts.timers.borrow_mut().next_deadline();
        if deadline.is_none() {
            check_deadlock(ts, root, self.executor.inner.detect_deadlock);
        }
        ts.batch_pause.parking();
        deadline
    }

    /// Whether a timer now pending is due before `deadline` (`None`:
    /// never): one registered during the wait, by a task the reactor ran.
    #[cfg(any(feature = "tokio", feature = "glib"))]
    fn timer_before(&self, deadline: Option<Instant>) -> bool {
        let next = self.ts.timers.borrow_mut().next_deadline();
        next.is_some_and(|next| deadline.is_none_or(|deadline| next < deadline))
    }

    /// Whether this loop waits in `async_io::block_on`: not at thread exit,
    /// where async-io's own thread-locals may be gone, and not when it will
    /// wait in a tokio runtime or a GLib main context instead (async-io's
    /// helper thread then drives async-io's reactor, as it does without the
    /// feature, and nothing starts that thread for a loop that only uses
    /// tokio).
    #[cfg(feature = "async-io")]
    pub(super) fn waits_in_async_io(&self) -> bool {
        if self.ts.is_exiting() || !crate::reactor::async_io::usable() {
            return false;
        }
        #[cfg(feature = "tokio")]
        if self.ts.has_runtime_executors() {
            return false;
        }
        #[cfg(feature = "glib")]
        if self.ts.glib_context().is_some() {
            return false;
        }
        true
    }

    /// After a busy step: whether the reactor is due a turn (and if so,
    /// the next one is `TURN_EVERY_POLLS` polls away).
    #[cfg(any(feature = "async-io", feature = "tokio", feature = "glib"))]
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
        turn_each(&self.runtimes());
    }

    /// The executors of the thread that own a current_thread runtime, the
    /// loop's own executor first: a wait blocks in the first one's runtime
    /// (R1: every loop drives every executor's reactor).
    #[cfg(feature = "tokio")]
    fn runtimes(&self) -> Vec<std::rc::Rc<crate::sched::Inner>> {
        let mut runtimes = self.ts.runtime_executors();
        if let Some(own) = runtimes
            .iter()
            .position(|e| std::rc::Rc::ptr_eq(e, &self.executor.inner))
        {
            runtimes.swap(0, own);
        }
        runtimes
    }
}

/// Panics if another nestloop build loaded in the process (a different
/// version, features or compiler: copies of the same build share one state
/// per thread) has tasks or timers waiting on this thread: only that
/// build's loops run them, and this loop is about to wait, so they would
/// wait as long as it does.
fn check_other_builds(ts: &crate::context::ThreadState) {
    crate::context::register_build();
    let Some((version, waiting)) = crate::thread_context::other_builds_waiting_here() else {
        return;
    };
    super::report(format!(
        "nestloop: this thread runs two different builds of nestloop (this one, {}, and \
         another, {version}: a different version, set of features or compiler), and a loop \
         of this one is about to wait at nesting depth {} while {waiting} piece(s) of work \
         of the other (ready tasks, pending timers) wait on this thread. Each build runs only \
         its own tasks and timers, so they would wait for as long as this loop does. Depend \
         on one nestloop build across the process: the same version and features in every \
         crate, plugin and notebook cell that uses it.",
        env!("CARGO_PKG_VERSION"),
        ts.depth(),
    ));
}

/// Gives each executor's runtime a turn without waiting.
#[cfg(feature = "tokio")]
fn turn_each(executors: &[std::rc::Rc<crate::sched::Inner>]) {
    executors
        .iter()
        .filter_map(|e| e.tokio_runtime.as_ref())
        .for_each(crate::reactor::tokio::turn);
}

/// Gives the runtimes of `executors` (those a wait does not block in) a
/// turn now, and returns when they are due the next one: about
/// `OTHER_RUNTIMES_EVERY` from now (`None`: there are none).
#[cfg(feature = "tokio")]
fn turn_others(executors: &[std::rc::Rc<crate::sched::Inner>]) -> Option<Instant> {
    if executors.is_empty() {
        return None;
    }
    turn_each(executors);
    Some(Instant::now() + crate::reactor::tokio::OTHER_RUNTIMES_EVERY)
}

/// The rest of `drive` for a `block_on` loop with feature `async-io`: the
/// loop runs inside `async_io::block_on` and waits by returning `Pending`
/// to it (see `reactor::async_io`). With `turn_first`, the reactor gets a
/// turn before the next step.
#[cfg(feature = "async-io")]
pub(super) fn drive_in_async_io(
    driver: &mut Driver<'_>,
    root: &BlockOnState,
    index: usize,
    mut turn_first: bool,
) -> Result<usize, Interrupted> {
    let ts = driver.ts;
    crate::reactor::async_io::block_on(ts.signal(), |wait| {
        if std::mem::take(&mut turn_first) {
            wait.yield_to_reactor();
            return Poll::Pending;
        }
        loop {
            match driver.stops(index) {
                Ok(false) => {}
                Ok(true) => return Poll::Ready(Ok(driver.polls)),
                Err(interrupted) => return Poll::Ready(Err(interrupted)),
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
                Step::Idle => {
                    if driver.shut_down_dormant() {
                        continue;
                    }
                    #[cfg(feature = "tokio")]
                    if driver.ts.has_runtime_executors() {
                        // An executor with a tokio runtime was made during
                        // the loop: its reactor is the one waited in, and
                        // async-io's helper thread drives async-io's
                        // meanwhile.
                        driver.park(root);
                        continue;
                    }
                    let deadline = driver.before_wait(root);
                    wait.register();
                    if driver.work_waiting()
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
