//! What a task does, whatever its future type: the operations behind the
//! vtable of `Task` (one allocation per task holding the header, the future
//! and then its result; see `cell.rs`).
//!
//! The reference a run queue holds is the one `poll` works with: a task woken
//! during its poll goes back to the queue with it, a finished task releases
//! it together with the task list's reference, in one atomic operation.

use std::future::Future;
use std::mem;
use std::panic::{AssertUnwindSafe, catch_unwind, resume_unwind};
use std::task::{Context, Poll, Waker};

use super::awaiter::AwaiterSlot;
use super::cell::{Completed, Running, Suspended};
use super::join::{JoinError, drop_contained};
use super::state::Cancel;
use super::task_ref::TaskRef;
use super::typed::Task;
use crate::sched::{Inner, Interrupted, ThisThread};

/// Stores the result, wakes the awaiter and leaves the task list; releases
/// the claimer's reference.
fn finish<F: Future + 'static>(
    running: Running<F>,
    result: Result<F::Output, JoinError>,
    executor: Option<&Inner>,
) {
    let Completed {
        orphan,
        awaited,
        task,
    } = running.complete(result);
    if let Some(orphan) = orphan {
        drop_contained(orphan);
    }
    let listed = executor.and_then(|executor| executor.remove(task.as_ref()));
    // Last: the awaiter's waker is user code and may panic; the task is
    // consistent by now. (A handle that registers after `complete` sees
    // the result when it checks again.)
    let awaiter = if awaited {
        task.header().lock_awaiter().with(mem::take).into_waker()
    } else {
        None
    };
    let task = task.erase();
    match listed {
        Some(listed) => task.release_pair(listed),
        None => drop(task),
    }
    if let Some(waker) = awaiter {
        waker.wake();
    }
}

/// Drops the future (containing a panic) and completes as cancelled.
fn cancel<F: Future + 'static>(mut running: Running<F>, executor: Option<&Inner>) {
    // The task's own destructors, not the aborting code's: no task-locals.
    let _locals = crate::task_local::enter_new_poll();
    if let Err(payload) = catch_unwind(AssertUnwindSafe(|| running.drop_future())) {
        drop_contained(payload);
    }
    finish(running, Err(JoinError::cancelled()), executor);
}

/// Polls the task once (on its executor's thread), with the run queue's
/// reference. Returns whether a poll ran (false for a stale queue entry or
/// a cancellation).
pub(crate) fn poll<F: Future + 'static>(task: Task<F>, executor: &Inner) -> bool {
    let Ok(mut running) = task.begin(Some(ThisThread::of(executor))) else {
        return false;
    };
    if running.cancel_requested() {
        cancel(running, Some(executor));
        return false;
    }
    let poll = catch_unwind(AssertUnwindSafe(|| running.poll(executor)));
    match poll {
        Ok(Poll::Pending) => match running.suspend() {
            Suspended::Requeue(queued) => executor.push_local(queued),
            Suspended::Idle => {}
            Suspended::Aborted(running) => cancel(running, Some(executor)),
        },
        Ok(Poll::Ready(output)) => {
            let result = match catch_unwind(AssertUnwindSafe(|| running.drop_future())) {
                Ok(()) => Ok(output),
                Err(payload) => {
                    drop_contained(output);
                    Err(JoinError::panic(payload))
                }
            };
            finish(running, result, Some(executor));
        }
        Err(payload) if payload.is::<Interrupted>() || payload.is::<crate::fiber::Unwound>() => {
            // An interrupt unwinding to a `try_block_on` below, or a
            // cancelled fiber unwinding its stack: this task's poll was
            // cut short, so it is cancelled, and the unwinding goes on.
            cancel(running, Some(executor));
            resume_unwind(payload);
        }
        Err(payload) => {
            if let Err(second) = catch_unwind(AssertUnwindSafe(|| running.drop_future())) {
                drop_contained(second);
            }
            #[cfg(feature = "tokio")]
            let payload = match super::join::panic_message(&*payload)
                .and_then(crate::tokio::explain_missing_runtime)
            {
                Some(advice) => Box::new(advice),
                None => payload,
            };
            finish(running, Err(JoinError::panic(payload)), Some(executor));
        }
    }
    true
}

/// Shutdown: requests cancellation and drops the future now unless it is
/// being polled further down the stack. Returns whether it dropped it.
pub(crate) fn shut_down<F: Future + 'static>(task: Task<F>, executor: &Inner) -> bool {
    if let Cancel::Completed = task.header().state.request_cancel() {
        return false;
    }
    match task.begin(Some(ThisThread::of(executor))) {
        Ok(running) => {
            cancel(running, Some(executor));
            true
        }
        Err(_) => false,
    }
}

/// Cancels a task of a `Spawner` whose executor is gone (any thread).
/// Returns whether it did.
pub(crate) fn cancel_orphan<F: Future + 'static>(task: Task<F>) -> bool {
    match task.begin(ThisThread::get()) {
        Ok(running) => {
            cancel(running, None);
            true
        }
        Err(_) => false,
    }
}

/// `JoinHandle::abort` and `AbortHandle::abort`, with a reference of their
/// own.
pub(crate) fn abort<F: Future + 'static>(task: Task<F>) {
    let header = task.header();
    match header.state.request_cancel() {
        Cancel::Completed => return, // finished: its result stands
        Cancel::Running => {
            // Being polled: cancelled when its poll returns, or (R12) at
            // once if that poll is suspended in a fiber, which its thread's
            // loop looks for.
            header.shared.signal.note_abort();
            return;
        }
        Cancel::Idle => {}
    }
    if header.is_adopted() {
        // On the owner thread: drop the future right away.
        let executor = ThisThread::get().and_then(|here| header.shared.local_executor(here));
        if let Some(executor) = executor {
            if let Ok(running) = task.begin(Some(ThisThread::of(&executor))) {
                cancel(running, Some(&executor));
            }
            return;
        }
    }
    task.as_ref().wake_by_ref();
}

/// Takes the result, or registers the awaiter's waker.
pub(crate) fn poll_join<F: Future + 'static>(
    task: &Task<F>,
    cx: &mut Context<'_>,
) -> Poll<Result<F::Output, JoinError>> {
    if let Some(result) = task.take_result() {
        return Poll::Ready(result);
    }
    let header = task.header();
    let state = header.state.load();
    if state.result_taken() {
        panic!("nestloop: JoinHandle polled again after it returned the task's result");
    }
    // Cloning a waker is user code, and a slot may box it: never under the
    // slot's lock. A handle polled again with the same waker clones
    // nothing.
    let fresh_slot = || AwaiterSlot::new(cx.waker().clone());
    let mut fresh = (!state.has_awaiter()).then(fresh_slot);
    let replaced = loop {
        let mut slot = header.lock_awaiter();
        let stored = slot.with(|slot| {
            if let Some(waker) = fresh.take() {
                return Some(mem::replace(slot, waker));
            }
            slot.will_wake(cx.waker()).then(AwaiterSlot::default)
        });
        match stored {
            Some(replaced) => {
                slot.unlock_registered();
                break replaced;
            }
            None => {
                drop(slot);
                fresh = Some(fresh_slot());
            }
        }
    };
    drop(replaced);
    match task.take_result() {
        Some(result) => Poll::Ready(result),
        None => Poll::Pending,
    }
}

/// Whether `waker` (a `block_on` future's) is the waker registered by whoever awaits
/// `task`'s `JoinHandle`.
pub(crate) fn awaiter_is(task: &TaskRef, waker: &Waker) -> bool {
    task.header().lock_awaiter().with(|slot| {
        // The data pointer alone: `will_wake` also compares vtable
        // addresses, which the same vtable need not share (Miri and
        // separate codegen units duplicate them). The data pointer of a
        // `block_on` future's waker is its `Arc`, which nothing else points at.
        slot.data() == Some(waker.data())
    })
}

#[cfg(test)]
mod tests {
    /// Guards the per-task memory that BENCHMARKS.md reports: one
    /// allocation of header and cell per task (eight words, and two for the
    /// task's id and spawn location).
    #[test]
    fn a_task_of_an_empty_future_stays_small() {
        let cell = std::mem::size_of::<crate::task::cell::TaskCell<std::future::Ready<()>>>();
        assert!(cell <= 80, "a task grew to {cell} bytes");
        assert_eq!(std::mem::size_of::<crate::task::JoinError>(), 8);
    }
}
