//! The deadlock check (R9): run when a `block_on` loop is about to park
//! with no timer pending, it panics when nothing on the thread can ever wake
//! the loop's future, instead of letting the thread sleep forever.

use crate::context::{Abridged, BlockOnState, Innermost, ThreadState};
use crate::sync::{Arc, Ordering, fence};
use crate::task;

/// Called when a `block_on` future is pending, nothing is ready and no
/// timer is pending: panics if no waker of the future can ever fire and no
/// task on the thread can ever be woken again (R9). While the thread exits
/// it runs whatever the executor's `detect_deadlock` says (a wait there
/// would hang the thread's exit and whoever joins it), with words of its
/// own. `detect`: the loop's executor's `detect_deadlock`.
///
/// The loop holds two references to the waker, so any count above two is a
/// clone somewhere. When no task of the thread can be woken, a clone that
/// sits in the `JoinHandle` slot of a task cannot fire either: that task
/// can never run again, whether it is suspended further down the stack
/// (nest-asyncio issue #66: it called the nested `block_on` that now waits
/// for it) or waits with no waker of it anywhere.
pub(super) fn check_deadlock(ts: &ThreadState, root: &BlockOnState, detect: bool) {
    if !detect && !ts.is_exiting() {
        return;
    }
    let Some(clones) = waker_clones_unwoken(root) else {
        return;
    };
    let executors = ts.registered();
    // A task that can still be woken (by a socket, a channel fed by another
    // thread, a waker kept anywhere) keeps the loop serving: this is
    // `block_on(pending())` running a server, as in tokio and
    // async-executor, not a deadlock.
    if executors.iter().any(|e| e.has_wakeable_task()) {
        return;
    }
    // A live `InterruptHandle` (a Ctrl-C handler's) can end an enclosing
    // `try_block_on`, and with it this wait; so can an interrupt its last
    // handle sent before it went (read after the count: the handle's drop
    // comes after its interrupt, so a count seen at zero shows it).
    if ts.interrupt_may_come() || ts.signal().interrupt_pending() {
        return;
    }
    // The tasks whose `JoinHandle` slot holds the waker, and of those the
    // ones on the stack, in one walk.
    let (mut awaited, mut stuck) = (0, 0);
    if clones != 0 {
        for executor in &executors {
            awaited += executor.count_tasks(|t| {
                let awaits = task::awaiter_is(t, &root.waker);
                stuck += usize::from(awaits && ts.on_this_stack(t.origin()));
                awaits
            });
        }
    }
    if clones != awaited {
        return; // a waker elsewhere (another thread, a channel): it may fire
    }
    // A call blocked in a suspended fiber (R12) that may still be woken
    // is a way out: its task may then finish what this future waits for.
    let awaited_by = |state: &BlockOnState| -> usize {
        executors
            .iter()
            .map(|e| e.count_tasks(|t| task::awaiter_is(t, &state.waker)))
            .sum()
    };
    if ts.suspended_fibers() != 0 {
        // Every one of them stuck: the newest gets the report (its task's
        // handle then resolves, which may unblock the others and this
        // future), as the innermost call does without fibers.
        if ts.suspended_fibers_stuck(awaited_by) {
            ts.report_newest_stuck_fiber();
        }
        return;
    }
    let why = if awaited == 0 {
        "no task is ready, no timer is pending, and no waker of the future exists"
    } else if stuck != 0 {
        "no task is ready, no timer is pending, and it waits for a task that is suspended \
         further down the stack (that task called this block_on, and can only resume after \
         it returns)"
    } else {
        "no task is ready, no timer is pending, and it waits for a task that nothing can wake \
         again (no waker of that task is held anywhere)"
    };
    if ts.is_exiting() {
        super::report(format!(
            "nestloop: this thread is exiting and a block_on at nesting depth {} can never \
             finish: {why}. Finish such work before the thread ends (block_on or await it \
             before the thread's main function returns) or hand it to a thread that keeps \
             running; during thread exit the thread's tasks are dropped newest first, and a \
             destructor may wait only for tasks not dropped yet, timers and other threads.\n{}",
            ts.depth(),
            Abridged(&ts.snapshot(Innermost::Waiting)),
        ));
    }
    let frames = ts.snapshot(Innermost::Waiting);
    let call = frames.iter().last().map_or("block_on", |f| f.kind().name());
    let nested = if ts.depth() > 1 {
        "Await instead of nesting a block_on where the future needs the caller, make sure"
    } else {
        "Make sure"
    };
    super::report(format!(
        "nestloop: deadlock in {call} at nesting depth {}: its future is pending, {why}, so \
         nothing can ever wake it. {nested} something that still runs (a task, a timer, \
         another thread, an InterruptHandle for a try_block_on) holds its waker, or turn \
         this check off with Executor::builder().detect_deadlock(false).\n{}",
        ts.depth(),
        Abridged(&frames),
    ));
}

/// How many clones of the future's waker exist (the loop holds two
/// references of its own), or `None` if the future is woken after all.
fn waker_clones_unwoken(root: &BlockOnState) -> Option<usize> {
    // The count first, then the flag: a waker woken by value (or by
    // reference, then dropped) on another thread marks the `block_on` future woken
    // before its count goes. The count is a `Relaxed` load, and the drop a
    // `Release` subtraction: having seen the drop, this fence makes the
    // wake visible too before anything is concluded. The loom models
    // `the_deadlock_check_sees_a_wake_*` fail without it.
    let clones = Arc::strong_count(&root.wake) - 2;
    fence(Ordering::Acquire);
    (!root.wake.is_woken()).then_some(clones)
}
