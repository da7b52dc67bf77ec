//! R12 in the loop: where a `block_on` on the thread's own stack runs its
//! loop on a fiber (`drive_on_fibers`), where a `block_on` inside a fiber
//! suspends it (`wait_in_fiber`), and where a loop resumes the fibers whose
//! calls were woken (`resume_woken_fibers`). How a fiber switches is the
//! `fiber` and `context` layers' business; this file decides when.
//!
//! The loop of a `block_on` called on the thread's own stack runs on a
//! fiber. When a call inside one of its tasks (or inside a `block_on`
//! future it polls) waits, that fiber suspends with the call, and the loop
//! goes on on a new fiber (Go's hand-off: nothing is paid until a call
//! waits). When the call's future is woken, whichever loop runs resumes
//! the suspended fiber; the call polls its future there and returns as soon
//! as it is done. The loop code below it on that fiber then finishes its
//! step and ends (its fiber handed the thread's loop on when it suspended),
//! which gives control back to the loop that resumed it.

use std::future::Future;
use std::panic::{AssertUnwindSafe, Location, catch_unwind, resume_unwind};
use std::pin::Pin;
use std::rc::Rc;
use std::task::Context;

use super::block_on_future::{BlockOnFuture, resume_panic};
use super::interrupt::check_interrupt;
use super::{Begun, drive};
use crate::context::{self, BlockOnState, LoopResult, ThreadState};
use crate::fiber::{self, Outcome, Resume, Suspend, Unwound};
use crate::sched::Executor;
use crate::task_local;

/// Whether a `block_on` of `executor` whose first poll was pending
/// suspends the fiber it runs on (R12) rather than nest a loop: it runs on
/// a fiber, the executor has fibers, the thread is not panicking (a
/// stack is never switched during an unwind), and no GLib dispatch is in
/// progress on the fiber (feature `glib`: GLib's dispatches must end in
/// order, `thread_context::in_glib_dispatch`).
#[inline]
pub(super) fn may_wait_in_fiber(executor: &Executor) -> bool {
    executor.inner.fiber_stack_size != 0
        && fiber::on_fiber()
        && !std::thread::panicking()
        && !glib_dispatch_here()
}

/// See `thread_context::in_glib_dispatch`; false without feature `glib`.
#[inline]
fn glib_dispatch_here() -> bool {
    #[cfg(feature = "glib")]
    return crate::thread_context::in_glib_dispatch();
    #[cfg(not(feature = "glib"))]
    false
}

/// Whether the loop of a `block_on` of `executor` runs on fibers: the
/// executor has them, and the call is on the thread's own stack (on a
/// fiber, a call that may suspend does: `may_wait_in_fiber`).
#[inline]
pub(super) fn loops_on_fibers(executor: &Executor) -> bool {
    executor.inner.fiber_stack_size != 0 && !fiber::on_fiber() && !std::thread::panicking()
}

/// The loop of the `block_on` at depth index `index` (its future `own`),
/// run on fibers: a new one each time a call on the current one waits.
/// Returns as `drive` does.
pub(super) fn drive_on_fibers(
    ts: &ThreadState,
    executor: &Executor,
    own: &Rc<BlockOnState>,
    location: &'static Location<'static>,
    index: usize,
) -> LoopResult {
    let mut polls = 0;
    loop {
        let id = new_loop_fiber(ts, executor, own, location);
        match ts.resume_fiber(id, Resume::Run) {
            Some(Outcome::Finished(Err(interrupted))) => return Err(interrupted),
            Some(Outcome::Finished(Ok(ran))) => {
                polls += ran;
                if own.done.get() {
                    return Ok(polls);
                }
                // It stopped for an interrupt: acted on here, where the
                // frames of the thread's stack are.
                check_interrupt(ts, index)?;
            }
            // A call on it waits there: the loop goes on on a new fiber.
            Some(Outcome::Suspended(Suspend::Blocked)) => {}
            None => unreachable!("nestloop: internal error: a new fiber was not found"),
        }
    }
}

/// A fiber that runs the loop of the call made at `location` for `own`.
fn new_loop_fiber(
    ts: &ThreadState,
    executor: &Executor,
    own: &Rc<BlockOnState>,
    location: &'static Location<'static>,
) -> usize {
    let (executor, own) = (executor.clone(), own.clone());
    ts.new_fiber(executor.inner.fiber_stack_size, move |first| {
        if first == Resume::Cancel {
            return Ok(0);
        }
        let run = catch_unwind(AssertUnwindSafe(|| {
            context::with(|ts| drive(ts, &executor, Some(&own), location, true))
        }));
        match run {
            Ok(result) => result,
            // Cancelled: its stack is unwound, and the fiber ends.
            Err(payload) if payload.is::<Unwound>() => Ok(0),
            Err(payload) => resume_unwind(payload),
        }
    })
}

/// A plain `block_on` inside a fiber whose first poll was pending
/// (`begun`): suspends the fiber until the future is woken, polls it, and
/// so on until it is done; returns its output (or passes its panic on).
pub(super) fn wait_in_fiber<F: Future>(
    ts: &ThreadState,
    executor: &Executor,
    future: Pin<&mut F>,
    location: &'static Location<'static>,
    begun: Begun,
) -> F::Output {
    let Begun { frame, state, .. } = begun;
    let id = ts
        .current_fiber()
        .expect("nestloop: internal error: waiting in a fiber off any fiber");
    let mut call = BlockOnFuture {
        future,
        outcome: None,
        caller: task_local::current_poll(),
        #[cfg(feature = "tracing")]
        span: tracing::Span::current(),
    };
    /// Stops wakes from asking for this fiber once the call is over.
    struct Unwait<'a>(&'a BlockOnState);
    impl Drop for Unwait<'_> {
        fn drop(&mut self) {
            self.0.wake.wait_in_fiber(None);
        }
    }
    let _unwait = Unwait(&state);
    loop {
        // Woken already (during the last poll, or before the fiber was
        // named for its wakes): it still suspends, so that the loop runs
        // what is ready before the next poll (a future that keeps waking
        // itself cannot starve the tasks, R11), and asks for its own resume.
        if state.wake.wait_in_fiber(Some(id)) {
            ts.signal().requeue_fiber(id);
        }
        ts.hand_off_loop();
        ts.fiber_waits_for(state.clone());
        // The spans and runtime contexts entered on this stack are left
        // while it is suspended.
        let left = crate::thread_context::leave_scopes();
        let resumed = fiber::suspend(Suspend::Blocked);
        left.enter_again();
        match resumed {
            Resume::Run => {}
            Resume::Cancel => resume_unwind(Box::new(Unwound)),
            Resume::Deadlock => super::report(format!(
                "nestloop: deadlock in block_on (a call suspended in a fiber, called at \
                 {location}): its future is pending, no task is ready, no timer is pending, and \
                 every other call waiting in a fiber waits, directly or not, for this one or \
                 for a task that nothing can wake, so nothing can ever wake it. Await instead \
                 of calling block_on where the future needs the caller, or make sure \
                 something that still runs (a task, a timer, another thread) holds its waker."
            )),
        }
        if !state.wake.take_woken() {
            continue; // resumed for an earlier wake
        }
        let _scope = executor.inner.enter_poll_block_on(location);
        let mut cx = Context::from_waker(&state.waker);
        if crate::context::PollBlockOn::poll(&mut call, &mut cx).is_ready() {
            break;
        }
    }
    drop(frame);
    match call.outcome.take() {
        Some(Ok(output)) => output,
        Some(Err(payload)) => resume_panic(payload),
        None => {
            unreachable!("nestloop: internal error: block_on returned before its future finished")
        }
    }
}

/// Resumes the fibers whose waiting call's future was woken (R12), as many
/// as were noted. Returns how many ran.
pub(super) fn resume_woken_fibers(ts: &ThreadState) -> usize {
    let mut resumed = 0;
    while let Some(id) = ts.signal().next_fiber_woken() {
        if ts.resume_fiber(id, Resume::Run).is_some() {
            resumed += 1;
        }
    }
    resumed
}
