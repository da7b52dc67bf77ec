//! The deadlock check (R9): run when a `block_on` loop is about to park
//! with no timer pending, it panics when nothing on the thread can ever wake
//! the loop's future, instead of letting the thread sleep forever.

use crate::context::{Abridged, Innermost, RootState, ThreadState};
use crate::sync::{Arc, Ordering, fence};
use crate::task;

/// Called when a `block_on` future is pending, nothing is ready and no
/// timer is pending: panics if no waker of the future can ever fire and no
/// task on the thread can ever be woken again (R9).
///
/// The loop holds two references to the waker, so any count above two is a
/// clone somewhere. A clone that sits in the `JoinHandle` slot of a task
/// that is on the stack (nest-asyncio issue #66: the task called the nested
/// `block_on` that now waits for it) cannot fire before this loop returns,
/// so it does not count.
pub(super) fn check_deadlock(ts: &ThreadState, root: &RootState) {
    let Some(clones) = waker_clones_unwoken(root) else {
        return;
    };
    // Only a task that called a nested loop can be on the stack: with this
    // loop the only one, none is, and the task list needs no walk.
    let executors = ts.registered();
    let stuck = if clones == 0 || ts.depth() == 1 {
        0
    } else {
        executors
            .iter()
            .map(|e| e.count_tasks(|t| task::stuck_awaiter_is(t, &root.handle)))
            .sum()
    };
    if clones != stuck {
        return;
    }
    // A task that can still be woken (by a socket, a channel fed by another
    // thread, a waker kept anywhere) keeps the loop serving: this is
    // `block_on(pending())` running a server, as in tokio and
    // async-executor, not a deadlock.
    if executors.iter().any(|e| e.has_wakeable_task()) {
        return;
    }
    let why = if stuck == 0 {
        "no task is ready, no timer is pending, and no waker of the future exists"
    } else {
        "no task is ready, no timer is pending, and it waits for a task that is suspended \
         further down the stack (that task called this block_on, and can only resume after \
         it returns)"
    };
    super::report(format!(
        "nestloop: deadlock in block_on at nesting depth {}: its future is pending, {why}, so \
         nothing can ever wake it. Await instead of nesting a block_on where the future needs \
         the caller, make sure something that still runs (a task, a timer, another thread) \
         holds its waker, or turn this check off with \
         Executor::builder().detect_deadlock(false).\n{}",
        ts.depth(),
        Abridged(&ts.snapshot(Innermost::Waiting)),
    ));
}

/// `check_deadlock` while the thread exits (whatever the executor's
/// `detect_deadlock`): no task runs any more, so a future whose every waker
/// sits in the `JoinHandle` of a task of the thread can never finish, and
/// waiting would hang the thread's exit.
pub(super) fn check_exiting(ts: &ThreadState, root: &RootState) {
    let Some(clones) = waker_clones_unwoken(root) else {
        return;
    };
    let awaiting: usize = ts
        .registered()
        .iter()
        .map(|e| e.count_tasks(|t| task::awaiter_is(t, &root.handle)))
        .sum();
    if clones != awaiting {
        return; // a waker elsewhere (another thread, a channel): it may wake
    }
    super::report(format!(
        "nestloop: this thread is exiting: a block_on at nesting depth {} waits for a task, but \
         the thread's executors are shutting down and no task will run again. Finish such work \
         before the thread ends (block_on or await it before the thread's main function \
         returns) or hand it to a thread that keeps running; during thread exit, block_on only \
         runs futures that need no task (timers, other threads).\n{}",
        ts.depth(),
        Abridged(&ts.snapshot(Innermost::Waiting)),
    ));
}

/// How many clones of the future's waker exist (the loop holds two
/// references of its own), or `None` if the future is woken after all.
fn waker_clones_unwoken(root: &RootState) -> Option<usize> {
    // The count first, then the flag: a waker woken by value (or by
    // reference, then dropped) on another thread marks the root woken
    // before its count goes. The count is a `Relaxed` load, and the drop a
    // `Release` subtraction: having seen the drop, this fence makes the
    // wake visible too before anything is concluded. The loom models
    // `the_deadlock_check_sees_a_wake_*` fail without it.
    let clones = Arc::strong_count(&root.waker) - 2;
    fence(Ordering::Acquire);
    (!root.waker.is_woken()).then_some(clones)
}
