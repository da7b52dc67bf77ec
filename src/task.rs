//! Tasks: one `Arc` allocation holding the state word, the future (then its
//! result), the awaiter's waker and the way back to the executor.
//!
//! The `Arc` is the waker (through `futures::task::ArcWake`, polled through a
//! borrowed `waker_ref`, so a poll costs no reference-count traffic), the
//! entry in the run queues and the slab (as `Arc<dyn Runnable>`), and the
//! target of the `JoinHandle` (as `Arc<dyn JoinTarget<T>>`).

use std::future::Future;
use std::panic::{AssertUnwindSafe, catch_unwind, resume_unwind};
use std::sync::Arc;
use std::task::{Context, Poll, Waker};

use futures::task::{ArcWake, waker_ref};

use crate::executor::{Inner, Interrupted, Shared, TaskRef};
use crate::frames;
use crate::join::{AbortTarget, JoinError, JoinHandle, JoinTarget, drop_contained};
use crate::park::thread_key;
use crate::raw::{COMPLETED, HANDLE, RUNNING, Running, SCHEDULED, TAKEN, TaskCore};
use crate::sync::{AtomicUsize, Mutex, Ordering};

/// The slab key of a task spawned from another thread and not yet adopted.
pub(crate) const UNADOPTED: usize = usize::MAX;

/// A task as the executor sees it, whatever its future type.
pub(crate) trait Runnable: Send + Sync + 'static {
    /// Polls the task once (on its executor's thread). Returns whether a
    /// poll ran (false for a stale queue entry or a cancellation).
    fn run(self: Arc<Self>, executor: &Inner) -> bool;
    /// Shutdown: requests cancellation and drops the future now unless it is
    /// being polled further down the stack. Returns whether it dropped it.
    fn shut_down(self: Arc<Self>, executor: &Inner) -> bool;
    /// Cancels a task of a `Spawner` whose executor is gone (any thread).
    /// Returns whether it did.
    fn cancel_orphan(self: Arc<Self>) -> bool;
    /// The task's key in its executor's slab, or `UNADOPTED`.
    fn key(&self) -> usize;
    /// Sets the slab key.
    fn set_key(&self, key: usize);
    /// Whether the task has not completed yet.
    fn is_live(&self) -> bool;
    /// Whether the task is on the stack (being polled) and the waker of
    /// whoever awaits its `JoinHandle` is `waker`: that waker cannot fire
    /// before the task's poll returns.
    fn stuck_awaiter_is(&self, waker: &Waker) -> bool;
}

/// The single allocation of a task.
pub(crate) struct TaskCell<F: Future> {
    /// State word and future/result cell.
    core: TaskCore<F>,
    /// The executor's thread-safe side, where wakes go.
    shared: Arc<Shared>,
    /// Key in the executor's slab (`UNADOPTED` before adoption). Only the
    /// owner thread writes it.
    key: AtomicUsize,
    /// The waker of whoever awaits the `JoinHandle`. A mutex rather than an
    /// `AtomicWaker` so the deadlock check can see whose waker it is.
    awaiter: Mutex<Option<Waker>>,
}

/// Creates a task for `Executor::spawn`: owned by this thread, scheduled,
/// with a handle.
pub(crate) fn new_local<F>(future: F, shared: Arc<Shared>) -> (TaskRef, JoinHandle<F::Output>)
where
    F: Future + 'static,
    F::Output: 'static,
{
    let cell = Arc::new(TaskCell {
        core: TaskCore::new(future, SCHEDULED | HANDLE),
        shared,
        key: AtomicUsize::new(UNADOPTED),
        awaiter: Mutex::new(None),
    });
    let handle = JoinHandle::new(cell.clone());
    (cell, handle)
}

/// Creates a task for `Spawner::spawn`: owned by the executor's thread,
/// scheduled, with a handle, not yet adopted.
pub(crate) fn new_remote<F>(future: F, shared: Arc<Shared>) -> (TaskRef, JoinHandle<F::Output>)
where
    F: Future + Send + 'static,
    F::Output: Send + 'static,
{
    let owner = shared.signal.key();
    let cell = Arc::new(TaskCell {
        core: TaskCore::new_send(future, SCHEDULED | HANDLE, owner),
        shared,
        key: AtomicUsize::new(UNADOPTED),
        awaiter: Mutex::new(None),
    });
    let handle = JoinHandle::new(cell.clone());
    (cell, handle)
}

impl<F: Future + 'static> TaskCell<F> {
    /// Stores the result, wakes the awaiter and leaves the slab.
    fn finish(
        &self,
        running: Running<'_, F>,
        result: Result<F::Output, JoinError>,
        executor: Option<&Inner>,
    ) {
        let (orphan, awaited) = running.complete(result);
        if let Some(orphan) = orphan {
            drop_contained(orphan);
        }
        if let Some(executor) = executor {
            let removed = executor.remove(self.key.load(Ordering::Relaxed));
            drop(removed);
        }
        // Last: the awaiter's waker is user code and may panic; the task is
        // consistent by now. (A handle that registers after `complete` sees
        // the result when it checks again.)
        if awaited {
            let awaiter = self.awaiter.lock().take();
            if let Some(waker) = awaiter {
                waker.wake();
            }
        }
    }

    /// Drops the future (containing a panic) and completes as cancelled.
    fn cancel(&self, mut running: Running<'_, F>, executor: Option<&Inner>) {
        if let Err(payload) = catch_unwind(AssertUnwindSafe(|| running.drop_future())) {
            drop_contained(payload);
        }
        self.finish(running, Err(JoinError::cancelled()), executor);
    }

    /// Queues the task after a poll during which it was woken.
    fn requeue(self: Arc<Self>, executor: &Inner) {
        if let Err(task) = executor.push_local(self) {
            executor.shared.push_remote(task);
        }
    }
}

impl<F: Future + 'static> Runnable for TaskCell<F> {
    fn run(self: Arc<Self>, executor: &Inner) -> bool {
        let Some(mut running) = self.core.begin() else {
            return false;
        };
        if running.cancel_requested() {
            self.cancel(running, Some(executor));
            return false;
        }
        let poll = {
            let waker = waker_ref(&self);
            let mut cx = Context::from_waker(&waker);
            let _owner = frames::enter_owner(executor);
            let _context = executor.poll_context();
            catch_unwind(AssertUnwindSafe(|| running.poll(&mut cx)))
        };
        match poll {
            Ok(Poll::Pending) => match running.suspend() {
                Ok(true) => self.requeue(executor),
                Ok(false) => {}
                Err(running) => self.cancel(running, Some(executor)),
            },
            Ok(Poll::Ready(output)) => {
                let result = match catch_unwind(AssertUnwindSafe(|| running.drop_future())) {
                    Ok(()) => Ok(output),
                    Err(payload) => {
                        drop_contained(output);
                        Err(JoinError::panic(payload))
                    }
                };
                self.finish(running, result, Some(executor));
            }
            Err(payload) if payload.is::<Interrupted>() => {
                // An interrupt unwinding to a `try_block_on` below: this
                // task's poll was cut short, so it is cancelled, and the
                // unwinding goes on.
                self.cancel(running, Some(executor));
                resume_unwind(payload);
            }
            Err(payload) => {
                if let Err(second) = catch_unwind(AssertUnwindSafe(|| running.drop_future())) {
                    drop_contained(second);
                }
                self.finish(running, Err(JoinError::panic(payload)), Some(executor));
            }
        }
        true
    }

    fn shut_down(self: Arc<Self>, executor: &Inner) -> bool {
        if self.core.request_cancel().is_none() {
            return false;
        }
        match self.core.begin() {
            Some(running) => {
                self.cancel(running, Some(executor));
                true
            }
            None => false,
        }
    }

    fn cancel_orphan(self: Arc<Self>) -> bool {
        match self.core.begin() {
            Some(running) => {
                self.cancel(running, None);
                true
            }
            None => false,
        }
    }

    fn key(&self) -> usize {
        self.key.load(Ordering::Relaxed)
    }

    fn set_key(&self, key: usize) {
        self.key.store(key, Ordering::Relaxed);
    }

    fn is_live(&self) -> bool {
        self.core.state() & COMPLETED == 0
    }

    fn stuck_awaiter_is(&self, waker: &Waker) -> bool {
        self.core.state() & RUNNING != 0
            && self
                .awaiter
                .lock()
                .as_ref()
                // The data pointer alone: `will_wake` also compares vtable
                // addresses, which the same vtable need not share (Miri and
                // separate codegen units duplicate them). The data pointer of
                // a root's waker is its `Arc`, which nothing else points at.
                .is_some_and(|w| w.data() == waker.data())
    }
}

impl<F: Future + 'static> ArcWake for TaskCell<F> {
    fn wake_by_ref(arc_self: &Arc<Self>) {
        if arc_self.core.schedule() {
            arc_self.shared.schedule(arc_self.clone());
        }
    }
}

impl<F: Future + 'static> AbortTarget for TaskCell<F> {
    fn abort(self: Arc<Self>) {
        let Some(previous) = self.core.request_cancel() else {
            return; // finished: its result stands
        };
        if previous & RUNNING != 0 {
            return; // on the stack: cancelled when its poll returns
        }
        let adopted = self.key() != UNADOPTED;
        if adopted && self.shared.signal.key() == thread_key() {
            // On the owner thread: drop the future right away.
            if let Some(executor) = frames::try_with(|s| s.executor_for(&self.shared)).flatten() {
                if let Some(running) = self.core.begin() {
                    self.cancel(running, Some(&executor));
                }
                return;
            }
        }
        if self.core.schedule() {
            let shared = self.shared.clone();
            shared.schedule(self);
        }
    }

    fn is_finished(&self) -> bool {
        self.core.state() & COMPLETED != 0
    }
}

impl<F: Future + 'static> JoinTarget<F::Output> for TaskCell<F> {
    fn poll_join(&self, cx: &mut Context<'_>) -> Poll<Result<F::Output, JoinError>> {
        if let Some(result) = self.core.take_result() {
            return Poll::Ready(result);
        }
        if self.core.state() & TAKEN != 0 {
            panic!("nestloop: JoinHandle polled again after it returned the task's result");
        }
        let mut slot = self.awaiter.lock();
        let replaced = match &*slot {
            Some(current) if current.will_wake(cx.waker()) => None,
            _ => slot.replace(cx.waker().clone()),
        };
        drop(slot);
        drop(replaced);
        self.core.note_awaiter();
        match self.core.take_result() {
            Some(result) => Poll::Ready(result),
            None => Poll::Pending,
        }
    }

    fn drop_handle(&self) {
        if let Some(result) = self.core.drop_handle() {
            drop_contained(result);
        }
    }
}

#[cfg(test)]
mod tests {
    /// Guards the per-task memory that BENCHMARKS.md reports: one `Arc`
    /// allocation of the cell (plus its 16-byte header) per task.
    #[test]
    fn a_task_of_an_empty_future_stays_small() {
        let cell = std::mem::size_of::<super::TaskCell<std::future::Ready<()>>>();
        assert!(cell <= 72, "TaskCell grew to {cell} bytes");
        assert_eq!(std::mem::size_of::<crate::join::JoinError>(), 8);
    }
}
