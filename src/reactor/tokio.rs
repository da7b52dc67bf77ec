//! Driving a tokio current_thread runtime from nestloop's loops (feature
//! `tokio`, `Builder::tokio_current_thread`).
//!
//! A current_thread runtime makes progress only inside `Runtime::block_on`:
//! there it polls its tasks and, when they are idle, waits on its I/O and
//! time drivers. So a loop that waits, with such an executor active, waits
//! in `block_on` of a future (made by `park`) that completes when work arrives for
//! the loop or its next nestloop timer is near. The tasks the loop polls
//! run outside `block_on`, inside the runtime's context only
//! (`Handle::enter`), so they may nest loops that park in `block_on` again.
//!
//! Three things follow:
//!
//! * A task spawned with `tokio::spawn` is polled inside `block_on`, where
//!   tokio forbids another `block_on`. A loop nested from such a task could
//!   not drive the runtime, and would wait forever for any tokio I/O, so
//!   `check_not_in_park` refuses it with advice.
//! * tokio's timers have a resolution of 1 ms, and fire up to 2 ms late.
//!   The park hands tokio a deadline 2 ms early and waits out the rest in
//!   `std::thread::park_timeout`, so nestloop's own timers keep their
//!   precision; I/O events that arrive in that rest wait until it ends.
//! * A loop that is busy never waits. It hands the runtime a turn (`turn`)
//!   every `TURN_EVERY_POLLS` polls: `block_on` of a future that yields
//!   once, in which tokio runs its ready tasks and polls its drivers without
//!   waiting.

use std::cell::Cell;
use std::future::{Future, poll_fn};
use std::pin::Pin;
use std::task::Poll;
use std::time::{Duration, Instant};

use tokio::runtime::Runtime;

use crate::park::ThreadSignal;
use crate::thread_context;

/// How early tokio's timer is asked to end a park before a nestloop
/// deadline. tokio rounds a deadline up to its next 1 ms tick, and the
/// I/O driver's wait rounds its timeout up to a whole millisecond again, so
/// a tokio timer fires up to 2 ms after its deadline.
const TOKIO_TIMER_SLACK: Duration = Duration::from_millis(2);

/// How often a wait gives the runtimes of other active executors a turn
/// (it blocks in one runtime only): nested `tokio_current_thread`
/// executors each have their own.
pub(crate) const OTHER_RUNTIMES_EVERY: Duration = Duration::from_millis(1);

/// Whether this thread is inside a runtime's `block_on` for a park or a
/// turn (kept in the thread's context; only this file touches it).
fn in_runtime_flag<R>(f: impl FnOnce(&Cell<bool>) -> R) -> R {
    thread_context::with(|cx| f(&cx.in_tokio_runtime))
}

/// Panics with advice if this thread is inside a park or turn of a
/// runtime, i.e. the caller is a task that tokio's scheduler polls: a loop
/// nested there could not drive the runtime.
#[inline]
pub(crate) fn check_not_in_park() {
    if in_runtime_flag(|flag| flag.get()) {
        panic!(
            "nestloop: block_on called from a task spawned with tokio::spawn on the current_thread \
             runtime this thread's nestloop executor drives: tokio polls that task inside the \
             runtime's block_on, which cannot be entered again, so the nested loop could never \
             drive tokio's I/O and timers. Spawn the task with nestloop::spawn (or \
             Executor::spawn) instead: nestloop's tasks can nest block_on at any depth, and \
             tokio::net, tokio::time and tokio::spawn work in them"
        );
    }
}

/// Runs `f` inside the runtime's `block_on`, marked as such.
fn in_runtime<R>(rt: &Runtime, f: impl Future<Output = R>) -> R {
    /// Clears the mark however `block_on` ends (a tokio task's panic is
    /// tokio's to handle, but ours may unwind).
    struct Mark;
    impl Drop for Mark {
        fn drop(&mut self) {
            in_runtime_flag(|flag| flag.set(false));
        }
    }
    in_runtime_flag(|flag| flag.set(true));
    let _mark = Mark;
    rt.block_on(f)
}

/// Lets the runtime run its ready tasks and poll its drivers, without
/// waiting.
pub(crate) fn turn(rt: &Runtime) {
    in_runtime(rt, crate::yield_now());
}

/// Waits until `work_arrived` (checked after each registration of the
/// runtime's waker with `signal`), until `deadline` (a nestloop timer's,
/// kept to std's precision), or until about `turn_by` (a coarse one: the
/// turn of other runtimes, at tokio's precision), driving the runtime
/// meanwhile. The runtime gets at least one turn.
pub(crate) fn park(
    rt: &Runtime,
    signal: &ThreadSignal,
    deadline: Option<Instant>,
    turn_by: Option<Instant>,
    mut work_arrived: impl FnMut() -> bool,
) {
    let early = deadline.map(|d| d.checked_sub(TOKIO_TIMER_SLACK).unwrap_or(d));
    let tokio_deadline = super::earliest(early, turn_by);
    let mut sleep: Option<Pin<Box<tokio::time::Sleep>>> = None;
    let mut first = true;
    in_runtime(
        rt,
        poll_fn(|cx| {
            signal.reactor.register(cx.waker());
            let mut ready = work_arrived();
            if !ready && let Some(at) = tokio_deadline {
                if at <= Instant::now() {
                    ready = true;
                } else {
                    // Made here, inside the runtime (a `Sleep` registers
                    // with the runtime's timer).
                    let sleep = sleep.get_or_insert_with(|| {
                        Box::pin(tokio::time::sleep_until(tokio::time::Instant::from_std(at)))
                    });
                    ready = sleep.as_mut().poll(cx).is_ready();
                }
            }
            if !ready {
                first = false;
                return Poll::Pending;
            }
            if first {
                // Give tokio its turn before returning.
                first = false;
                cx.waker().wake_by_ref();
                return Poll::Pending;
            }
            Poll::Ready(())
        }),
    );
    signal.reactor.running();
    // The rest of the wait, at std's precision, unless the wait ended for
    // the other runtimes' turn: the loop gives it and waits again. (A std
    // park does not see tokio's I/O: it is only for the last 2 ms before
    // a nestloop timer.)
    let now = Instant::now();
    if turn_by.is_some_and(|by| now >= by) {
        return;
    }
    if let Some(deadline) = deadline
        && now < deadline
        && !work_arrived()
    {
        signal.park(Some(deadline));
    }
}
