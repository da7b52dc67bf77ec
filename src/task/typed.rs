#![allow(unsafe_code)]
//! [`Task<F>`]: a reference to a task that knows its future's type. It
//! fills the vtable that [`TaskRef`] calls through (`Task::VTABLE`, one per
//! future type, calling into `crate::task`), creates tasks (`new_local`,
//! `new_remote`) and does the `JoinHandle`'s side: taking the result,
//! dropping the handle, polling for the result through a `JoinRef`.
//!
//! Invariant: a `Task<F>` only ever points at a `TaskCell<F>`. It is made
//! only here, by `Task::typed`, from a reference reached through
//! `Task::<F>::VTABLE`, which `allocate` (`cell.rs`) stores in the header of
//! every task of future type `F` and nothing changes; its `_future` field
//! is private, so no sibling can build one for another type (they may read
//! its `task`). A `JoinRef<T>` is made only by `new_local`/`new_remote`
//! here, with `T` the task's output type, which `poll_join_erased` relies
//! on when it writes the result. The result is moved out only by whoever
//! set `TAKEN` on a completed task (`State::claim_result`,
//! `State::drop_handle`), or holds its last reference (see
//! `TaskCell::take_stage_result`).

use std::future::Future;
use std::marker::PhantomData;
use std::mem::ManuallyDrop;
use std::task::{Context, Poll};

use super::harness;
use super::join::JoinError;
use super::origin::{Origin, TaskId};

use super::cell::{Header, TaskCell};
use super::state::{Claim, DropHandle, State};
use super::task_ref::{JoinRef, TaskRef, VTable};
use crate::sched::SharedHold;

/// An owned reference to a task whose future type is known: what the
/// vtable's operations work with, on the executor's thread.
pub(crate) struct Task<F: Future + 'static> {
    /// The counted reference this one is a typed view of.
    pub(super) task: TaskRef,
    /// The future type (and `!Send`, like the future).
    _future: PhantomData<*const F>,
}

impl<F: Future + 'static> Task<F> {
    /// The vtable of tasks with this future type.
    pub(super) const VTABLE: VTable = VTable {
        poll: |t, ex| harness::poll(Self::typed(t), ex),
        shut_down: |t, ex| harness::shut_down(Self::typed(t), ex),
        cancel_orphan: |t| harness::cancel_orphan(Self::typed(t)),
        abort: |t| harness::abort(Self::typed(t.clone())),
        drop_handle: |t| Self::typed(t).drop_handle(),
        poll_join: Self::poll_join_erased,
        dealloc: Self::dealloc,
    };

    /// Views an erased reference as this type.
    fn typed(task: TaskRef) -> Self {
        Task {
            task,
            _future: PhantomData,
        }
    }

    /// Forgets the future type, keeping the reference.
    pub(crate) fn erase(self) -> TaskRef {
        self.task
    }

    /// The erased reference, borrowed.
    pub(crate) fn as_ref(&self) -> &TaskRef {
        &self.task
    }

    /// The task's allocation, with its future type: the header and the
    /// stage (future or result).
    pub(super) fn cell(&self) -> &TaskCell<F> {
        // SAFETY: the vtable this reference was reached through is
        // `Self::VTABLE`, so the allocation is a `TaskCell<F>` (`repr(C)`,
        // header first); the reference keeps it alive.
        unsafe { self.task.as_ptr().cast::<TaskCell<F>>().as_ref() }
    }

    /// The part of the task that does not depend on the future type.
    pub(crate) fn header(&self) -> &Header {
        self.task.header()
    }

    /// Takes the result if the task completed and nobody took it yet.
    /// Called by the `JoinHandle`.
    pub(crate) fn take_result(&self) -> Option<Result<F::Output, JoinError>> {
        // `claim_result` looks at the word before it writes: no look of its
        // own here.
        match self.header().state.claim_result() {
            Claim::Won => Some(self.cell().take_stage_result()),
            Claim::Lost => None,
        }
    }

    /// The `JoinHandle` goes away with its reference: clears `HANDLE` and
    /// releases the reference in one step, unless an unclaimed result must
    /// be dropped first (contained, see `drop_contained`).
    fn drop_handle(self) {
        let this = ManuallyDrop::new(self);
        match this.header().state.drop_handle() {
            DropHandle::DropResult => {
                let result = this.cell().take_stage_result();
                super::join::drop_contained(result);
                drop(ManuallyDrop::into_inner(this).task);
            }
            DropHandle::Released(left) => ManuallyDrop::into_inner(this).task.released(left),
        }
    }

    /// `VTable::poll_join`.
    ///
    /// # Safety
    ///
    /// `out` must point at a `Poll<Result<F::Output, JoinError>>`.
    unsafe fn poll_join_erased(task: &TaskRef, out: *mut (), cx: &mut Context<'_>) -> bool {
        // SAFETY: borrows the caller's reference.
        let typed = ManuallyDrop::new(Self::typed(unsafe { TaskRef::from_raw(task.as_ptr()) }));
        let (poll, spent) = match typed.take_last() {
            Some(result) => (Poll::Ready(result), true),
            None => (harness::poll_join(&typed, cx), false),
        };
        // SAFETY: per the contract.
        unsafe { *out.cast::<Poll<Result<F::Output, JoinError>>>() = poll };
        spent
    }

    /// For the `JoinHandle`, holding the last reference to a completed
    /// task: takes the result and frees the task. Nobody else can reach the
    /// task, so neither needs an atomic operation. `None` (and nothing
    /// done) in any other state; the caller's reference is gone after
    /// `Some`.
    #[inline]
    fn take_last(&self) -> Option<Result<F::Output, JoinError>> {
        // Acquire: pairs with the release of every other reference and with
        // `complete`'s, so the result and every use of the task are seen.
        let state = self.header().state.load();
        if !state.has_unclaimed_result() || state.ref_count() != 1 {
            return None;
        }
        let result = self.cell().take_stage_result();
        // SAFETY: the caller's was the last reference, and it is used up
        // here (the caller forgets it).
        unsafe { Self::dealloc(self.task.as_ptr()) };
        Some(result)
    }
}

/// The references of a task made by `new_local`, one for each holder.
pub(crate) struct LocalTask<T> {
    /// The task's id.
    pub(crate) id: TaskId,
    /// For the run queue: the task starts scheduled.
    pub(crate) queued: TaskRef,
    /// For the executor's task list.
    pub(crate) listed: TaskRef,
    /// For the `JoinHandle`.
    pub(crate) handle: JoinRef<T>,
}

/// Creates a task for `Executor::spawn`, the one `origin` names: owned by
/// this thread, scheduled, with a handle.
#[inline]
pub(crate) fn new_local<F>(future: F, shared: SharedHold, origin: Origin) -> LocalTask<F::Output>
where
    F: Future + 'static,
    F::Output: 'static,
{
    let task = Task::<F>::allocate(future, shared, State::new_local(3), origin);
    // SAFETY: the second and third of the counts `State::new_local(3)`
    // gave the new task.
    let (listed, handle) = unsafe {
        (
            TaskRef::from_raw(task.as_ptr()),
            TaskRef::from_raw(task.as_ptr()),
        )
    };
    LocalTask {
        id: origin.id,
        queued: task,
        listed,
        handle: JoinRef::new(handle),
    }
}

/// The references of a task made by `new_remote`: it is adopted into the
/// task list on the executor's thread.
pub(crate) struct RemoteTask<T> {
    /// The task's id.
    pub(crate) id: TaskId,
    /// For the injection queue: the task starts scheduled.
    pub(crate) queued: TaskRef,
    /// For the `JoinHandle`.
    pub(crate) handle: JoinRef<T>,
}

/// Creates a task for `Spawner::spawn`: owned by the executor's thread,
/// scheduled, with a handle, not yet adopted.
pub(crate) fn new_remote<F>(future: F, shared: SharedHold, origin: Origin) -> RemoteTask<F::Output>
where
    F: Future + Send + 'static,
    F::Output: Send + 'static,
{
    let task = Task::<F>::allocate(future, shared, State::new_remote(2), origin);
    // SAFETY: the second of the counts `State::new_remote(2)` gave the new
    // task.
    let handle = unsafe { TaskRef::from_raw(task.as_ptr()) };
    RemoteTask {
        id: origin.id,
        queued: task,
        handle: JoinRef::new(handle),
    }
}
