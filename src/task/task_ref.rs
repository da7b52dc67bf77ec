#![allow(unsafe_code)]
//! [`TaskRef`]: an owned, counted reference to a task of any future type,
//! the entry of run queues, the task list, `AbortHandle`s and wakers; the
//! vtable type it calls through ([`VTable`]); [`JoinRef`], the reference a
//! `JoinHandle<T>` holds.
//!
//! Invariant: every `TaskRef` stands for one count in its task's state
//! word, and the release of the last one frees the task through the
//! header's vtable, which `allocate` (`cell.rs`) set for the task's own
//! future type. The pointer field is private to this file: a `TaskRef` is
//! made from a pointer only through the `unsafe` `TaskRef::from_raw`,
//! whose callers (`cell.rs`, `typed.rs`, `waker.rs`, `intrusive.rs`) hand
//! over a count that an allocation or a transition just made or that a
//! queue, list or waker owns, or wrap one they merely borrow in
//! `ManuallyDrop`. `Send` and
//! `Sync` rest on what other threads can reach through it: the header's
//! atomics, the awaiter's slot behind its lock bit (`awaiter.rs`), the
//! executor's shared part (`hold.rs`); the links only on the owner thread
//! (`intrusive.rs`); the future only where `Header::may_touch` allows. A
//! `JoinRef<T>` is made only with its task (`typed.rs`), so `T` is the type
//! the vtable's `poll_join` writes.

use std::marker::PhantomData;
use std::mem::{self, ManuallyDrop};
use std::ptr::NonNull;
use std::task::{Context, Poll};

use super::join::JoinError;
use crate::sched::{Inner, Shared, ThisThread};

use super::cell::Header;
use super::origin::Origin;
use super::state::{Schedule, Snapshot};

/// The operations that depend on the future's type (see `crate::task`).
pub(super) struct VTable {
    /// Polls the task once; takes the caller's reference.
    pub(super) poll: fn(TaskRef, &Inner) -> bool,
    /// Cancels the task at shutdown; takes the caller's reference.
    pub(super) shut_down: fn(TaskRef, &Inner) -> bool,
    /// Cancels a task whose executor is gone; takes the caller's reference.
    pub(super) cancel_orphan: fn(TaskRef) -> bool,
    /// `abort()`.
    pub(super) abort: fn(&TaskRef),
    /// The `JoinHandle` goes away; takes its reference.
    pub(super) drop_handle: fn(TaskRef),
    /// Takes the result into `*out` (a `Poll<Result<F::Output, JoinError>>`)
    /// or registers the awaiter. Returns true when it used up the handle's
    /// reference (see `Task::take_last`).
    pub(super) poll_join: unsafe fn(&TaskRef, *mut (), &mut Context<'_>) -> bool,
    /// Frees the allocation; the reference count is zero.
    pub(super) dealloc: unsafe fn(NonNull<Header>),
}

/// An owned reference to a task of any future type: the entry of run
/// queues, the task list, `AbortHandle`s and (through `JoinRef`) handles.
pub(crate) struct TaskRef(NonNull<Header>);

// SAFETY: through a `TaskRef`, other threads only reach the header (atomics,
// the awaiter's slot behind its lock bit, the executor's shared part; never
// the task-list links, see `TaskList`) and the vtable's operations, which
// touch the future only on a thread where that is allowed
// (`Header::may_touch`) and the result only as `TaskCell`'s protocol
// allows (see `Running`).
unsafe impl Send for TaskRef {}
// SAFETY: as for `Send`; `&TaskRef` gives nothing more than `&Header`.
unsafe impl Sync for TaskRef {}

impl TaskRef {
    /// A reference standing for one count of the task's state word.
    ///
    /// # Safety
    ///
    /// `ptr` points at the header of a live task, and the caller hands over
    /// a count of its state word that no other `TaskRef` stands for, or
    /// keeps the result in `ManuallyDrop` to borrow a reference it holds.
    #[inline]
    pub(super) unsafe fn from_raw(ptr: NonNull<Header>) -> TaskRef {
        TaskRef(ptr)
    }

    /// The task's header, as a pointer (a list link, a waker's data).
    #[inline]
    pub(super) fn as_ptr(&self) -> NonNull<Header> {
        self.0
    }

    /// The part of the task that does not depend on the future type: its
    /// state word, vtable, executor and awaiter.
    #[inline]
    pub(crate) fn header(&self) -> &Header {
        // SAFETY: this reference keeps the allocation alive; the header is
        // only ever accessed through shared references.
        unsafe { self.0.as_ref() }
    }

    /// Polls the task once (on its executor's thread). Returns whether a
    /// poll ran (false for a stale queue entry or a cancellation).
    #[inline]
    pub(crate) fn poll(self, executor: &Inner) -> bool {
        (self.header().vtable.poll)(self, executor)
    }

    /// The address of the task's executor's shared part, to compare.
    #[inline]
    pub(crate) fn executor_id(&self) -> *const Shared {
        &**self.header().shared
    }

    /// The task's executor, if `here` is its thread and it is alive.
    #[inline]
    pub(crate) fn executor_here(&self, here: ThisThread) -> Option<std::rc::Rc<Inner>> {
        self.header().shared.local_executor(here)
    }

    /// Shutdown: requests cancellation and drops the future now unless it is
    /// being polled further down the stack. Returns whether it dropped it.
    pub(crate) fn shut_down(self, executor: &Inner) -> bool {
        (self.header().vtable.shut_down)(self, executor)
    }

    /// Cancels a task of a `Spawner` whose executor is gone (any thread).
    /// Returns whether it did.
    pub(crate) fn cancel_orphan(self) -> bool {
        (self.header().vtable.cancel_orphan)(self)
    }

    /// See [`crate::JoinHandle::abort`].
    pub(crate) fn abort(&self) {
        (self.header().vtable.abort)(self);
    }

    /// Whether the task has completed (with a result, a panic or cancelled).
    #[inline]
    pub(crate) fn is_finished(&self) -> bool {
        self.header().state.load().is_completed()
    }

    /// Whether the task can never run again: not finished, not queued, not
    /// on the stack, and no waker of it (nor `AbortHandle`) exists beyond
    /// its `JoinHandle` (see `Header::wakeable_if_idle`).
    pub(crate) fn is_dormant(&self) -> bool {
        self.header().wakeable_if_idle() == Some(false)
    }

    /// Whether the task is claimed: being polled (or cancelled) further
    /// down the stack, or (R12) suspended in a poll on a stack of its own.
    pub(crate) fn is_claimed(&self) -> bool {
        self.header().state.load().is_claimed()
    }

    /// Who the task is: its id and where it was spawned.
    pub(crate) fn origin(&self) -> Origin {
        self.header().origin
    }

    /// Wakes the task through a reference it keeps: marks it scheduled and
    /// queues a new reference, unless it is queued, running (then it is
    /// requeued when its poll returns) or completed.
    #[inline]
    pub(crate) fn wake_by_ref(&self) {
        if let Schedule::Queue = self.header().state.schedule_by_ref() {
            // The reference `schedule_by_ref` just counted.
            TaskRef(self.0).enqueue();
        }
    }

    /// Puts this reference, of a task just marked scheduled, in its
    /// executor's run queue: the local one on the executor's thread, else
    /// the injection queue.
    ///
    /// Out of line: inlined, it makes every wake save registers on entry,
    /// even the common wake of a running task (a yield), which only sets a
    /// bit (+8 instructions per yield).
    #[inline(never)]
    pub(super) fn enqueue(self) {
        let shared: *const Shared = &**self.header().shared;
        // SAFETY: `self` keeps the task, and the task's hold keeps `Shared`,
        // alive until the reference is handed over. `push_local_here` hands
        // it over only on the executor's thread, where the executor it finds
        // holds its own `Arc` of `Shared` for the rest of the call and
        // nothing can run the task before the call returns.
        let task = match unsafe { &*shared }.push_local_here(self) {
            Ok(()) => return,
            Err(task) => task,
        };
        // Another thread may run and free the task as soon as it is pushed:
        // keep `Shared` alive for `push_remote` with a reference of its own.
        let shared = task.header().shared.to_arc();
        Shared::push_remote(&shared, task);
    }

    /// Releases this reference, freeing the task if it was the last.
    #[inline]
    fn release(self, count: usize) {
        let left = self.header().state.release(count);
        self.released(left);
    }

    /// Forgets this reference, which a combined transition has already taken
    /// off the count, leaving the state word `state`; frees the task if no
    /// reference is left.
    #[inline]
    pub(super) fn released(self, state: Snapshot) {
        let this = ManuallyDrop::new(self);
        if state.ref_count() == 0 {
            // SAFETY: that was the last reference, and it is forgotten.
            unsafe { (this.header().vtable.dealloc)(this.0) };
        }
    }

    /// Releases two references to the same task with one atomic operation
    /// (`self` and `other`, which must point at the same task).
    #[inline]
    pub(crate) fn release_pair(self, other: TaskRef) {
        debug_assert_eq!(
            self.0, other.0,
            "nestloop: internal error: pair of different tasks"
        );
        mem::forget(other);
        self.release(2);
    }
}

impl Clone for TaskRef {
    #[inline]
    fn clone(&self) -> Self {
        self.header().state.inc_ref();
        TaskRef(self.0)
    }
}

impl Drop for TaskRef {
    #[inline]
    fn drop(&mut self) {
        TaskRef(self.0).release(1);
    }
}

impl std::fmt::Debug for TaskRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TaskRef")
            .field("state", &self.header().state.load())
            .finish()
    }
}

/// The reference a `JoinHandle<T>` holds: made only together with its task,
/// so `T` is the task's output type.
pub(crate) struct JoinRef<T> {
    /// The handle's reference; `None` once the result was taken (with it,
    /// see `Task::take_last`, or before it was released).
    task: Option<TaskRef>,
    /// The task's output type, which `poll_join` writes.
    _output: PhantomData<T>,
}

impl<T> JoinRef<T> {
    pub(super) fn new(task: TaskRef) -> Self {
        JoinRef {
            task: Some(task),
            _output: PhantomData,
        }
    }

    /// The task, unless the handle used its reference up with the result.
    #[inline]
    pub(crate) fn task(&self) -> Option<&TaskRef> {
        self.task.as_ref()
    }

    /// Takes the result, or registers the awaiter's waker.
    #[inline]
    pub(crate) fn poll_join(&mut self, cx: &mut Context<'_>) -> Poll<Result<T, JoinError>> {
        let Some(task) = &self.task else {
            panic!("nestloop: JoinHandle polled again after it returned the task's result");
        };
        let mut out: Poll<Result<T, JoinError>> = Poll::Pending;
        let poll_join = task.header().vtable.poll_join;
        // SAFETY: `JoinRef<T>` is only made (by `new_local`/`new_remote`)
        // for a task whose output is `T`, so `out` has the type the vtable's
        // `poll_join` writes.
        let spent = unsafe { poll_join(task, (&raw mut out).cast(), cx) };
        if spent {
            // Released (the task is freed): forget it.
            mem::forget(self.task.take());
        } else if out.is_ready() {
            // The result is taken: the handle has no more use for the task
            // (`is_terminated` from now on).
            self.release();
        }
        out
    }

    /// Whether the result was taken (see `FusedFuture for JoinHandle`).
    #[inline]
    pub(crate) fn is_terminated(&self) -> bool {
        self.task.is_none()
    }

    /// Gives the handle's reference back (the handle is dropped, or it took
    /// the result).
    fn release(&mut self) {
        if let Some(task) = self.task.take() {
            (task.header().vtable.drop_handle)(task);
        }
    }
}

impl<T> Drop for JoinRef<T> {
    fn drop(&mut self) {
        self.release();
    }
}
