#![allow(unsafe_code)]
//! A task's allocation: the [`Header`] (the part that does not depend on
//! the future's type) followed by the cell that holds the future and then
//! its result ([`Stage`]); creating and freeing it (`Task::allocate`,
//! `Task::dealloc`); the claim on the future ([`Running`], from
//! `Task::begin`); moving the result out (`TaskCell::take_stage_result`).
//!
//! Invariant: the cell holds what the state word says (see `Stage`): the
//! future from `allocate` until `Running::drop_future`, then nothing until
//! `Running::complete` stores the result and sets `COMPLETED`, then the
//! result until `take_stage_result` moves it out. Only the holder of a
//! `Running` touches the future: `Task::begin` makes it, and only after
//! winning `State::claim_future` (which sets `CLAIMED` on a task not
//! completed), on a thread that may touch the future (`Header::may_touch`,
//! `state.rs`). After `COMPLETED` only whoever set `TAKEN`
//! (`State::claim_result` or `State::drop_handle`, from `typed.rs`) or
//! holds the last reference touches the result.
//! The allocation is the `Box<TaskCell<F>>` of `allocate`, freed once by
//! `dealloc` when the count in the state word reaches zero (the counting is
//! `task_ref.rs`'s). Upheld here: `Stage`, `TaskCell::stage` and
//! `Running`'s fields are private to this file. `Header`'s fields are
//! `pub(super)` for the siblings that own them: `state` (all, through the
//! transitions of `state.rs`, the only file that touches its bits),
//! `vtable` (`task_ref.rs`), `links` and `queue_next` (`intrusive.rs`; set
//! here only at creation), `awaiter` (`awaiter.rs`; likewise); `origin` is
//! plain data set at creation and only read after (no unsafe code touches
//! it).

use std::future::Future;
use std::marker::PhantomData;
use std::mem::ManuallyDrop;
use std::pin::Pin;
use std::ptr::NonNull;
use std::task::{Context, Poll, RawWaker, Waker};

use super::join::JoinError;
use super::origin::Origin;
use crate::sync::UnsafeCell;

use super::awaiter::AwaiterSlot;
use super::intrusive::{Links, QueueNext, UNQUEUED};
use super::state::{Claim, State, Suspend};
use super::task_ref::{TaskRef, VTable};
use super::typed::Task;
use super::waker::WAKER_VTABLE;
use crate::sched::{Inner, SharedHold, ThisThread};

/// What a task's cell holds over its life, one at a time in the same
/// bytes. The state word says which (no tag of its own, so a task of a
/// small future with a small output spends 8 bytes here, not 16):
///
/// * not `COMPLETED`: the `future` (from `Task::allocate` until
///   `Running::drop_future`, after which only `Running::complete` touches
///   the cell);
/// * `COMPLETED`: the result, `error` if `FAILED` else `output`, until it is
///   moved out (`TaskCell::take_stage_result`); a task is never freed with
///   its result still inside (a handle takes it or drops it, and without a
///   handle `complete` hands it back).
union Stage<F: Future> {
    /// Live until the future is dropped.
    future: ManuallyDrop<F>,
    /// The future's output, once it completed with one.
    output: ManuallyDrop<F::Output>,
    /// Why there is no output: the future panicked or was cancelled.
    error: ManuallyDrop<JoinError>,
}

/// The part of a task that does not depend on the future's type, at the
/// start of its allocation.
pub(crate) struct Header {
    /// The flags that say where the task is in its life, and the
    /// reference count (see `state.rs`).
    pub(super) state: State,
    /// The operations for this task's future type.
    pub(super) vtable: &'static VTable,
    /// The executor's thread-safe side, where wakes go. Released by
    /// `dealloc`, which knows whether it can go back to a reserve.
    pub(crate) shared: ManuallyDrop<SharedHold>,
    /// Neighbours in the executor's task list (see `TaskList`); only the
    /// owner thread touches them.
    pub(super) links: UnsafeCell<Links>,
    /// The task after it in its executor's local run queue (see
    /// `RunQueue`); only the owner thread touches it.
    pub(super) queue_next: UnsafeCell<QueueNext>,
    /// The waker of whoever awaits the `JoinHandle`, behind the state
    /// word's `AWAITER_LOCK` bit (a lock rather than an `AtomicWaker`, so
    /// the deadlock check can see whose waker it is; a bit rather than a
    /// mutex, and one word rather than a `Waker`'s two, to keep the header
    /// small).
    pub(super) awaiter: UnsafeCell<AwaiterSlot>,
    /// The task's id and spawn location (diagnostics, `JoinHandle::id`);
    /// never changes.
    pub(crate) origin: Origin,
}

/// A task's allocation: the header, then the future-then-result cell.
#[repr(C)]
pub(crate) struct TaskCell<F: Future> {
    /// Must stay first: a `TaskRef` points at it.
    header: Header,
    /// The future, then the result.
    stage: UnsafeCell<Stage<F>>,
}

impl<F: Future + 'static> Task<F> {
    /// A new task holding `future`, with the state word `state`, whose
    /// references are all returned as the caller's to hand out.
    pub(super) fn allocate(future: F, shared: SharedHold, state: State, origin: Origin) -> TaskRef {
        let cell = Box::new(TaskCell {
            header: Header {
                state,
                vtable: &Self::VTABLE,
                shared: ManuallyDrop::new(shared),
                links: UnsafeCell::new(Links::UNLISTED),
                queue_next: UnsafeCell::new(UNQUEUED),
                awaiter: UnsafeCell::new(AwaiterSlot::EMPTY),
                origin,
            },
            stage: UnsafeCell::new(Stage {
                future: ManuallyDrop::new(future),
            }),
        });
        // SAFETY: the allocation was just made, with the counts `state`
        // gives it; this reference stands for the first of them.
        unsafe { TaskRef::from_raw(NonNull::from(Box::leak(cell)).cast()) }
    }

    /// Claims the future, on the thread `here`: sets `CLAIMED`, clears
    /// `SCHEDULED`. Gives the reference back when the task is running (on
    /// the stack), completed, or not `here`'s to touch.
    #[inline]
    pub(crate) fn begin(self, here: Option<ThisThread>) -> Result<Running<F>, Self> {
        let header = self.header();
        if !header.may_touch(here) {
            return Err(self);
        }
        match header.state.claim_future() {
            Claim::Won => Ok(Running {
                task: self,
                _not_send: PhantomData,
            }),
            Claim::Lost => Err(self),
        }
    }

    /// `VTable::dealloc`.
    ///
    /// # Safety
    ///
    /// The reference count of the task at `ptr` must be zero.
    pub(super) unsafe fn dealloc(ptr: NonNull<Header>) {
        // SAFETY: the allocation is a `TaskCell<F>` made by `allocate`
        // (`Box`), and with no reference left nothing else can reach it.
        let mut cell = unsafe { Box::from_raw(ptr.cast::<TaskCell<F>>().as_ptr()) };
        // A task is freed only after it completed: the executor completes
        // (cancels) every task it still has before it goes away, a Spawner's
        // task whose executor is gone is cancelled where it is found, and a
        // completed task holds nothing any more (its future was dropped and
        // its result moved out, see `Stage`). Were that ever broken, the
        // future would leak, which is safe; dropping a `!Send` future here,
        // maybe on another thread, would not be. With no reference left, the
        // last release (acquire-release) made every change to the word
        // visible.
        debug_assert!(
            cell.header.state.load_relaxed().is_completed(),
            "nestloop: internal error: a task freed before it completed"
        );
        // SAFETY: taken once, here, and the cell is not used after.
        let hold = unsafe { ManuallyDrop::take(&mut cell.header.shared) };
        drop(cell);
        hold.release(ThisThread::get());
    }
}

impl<F: Future> TaskCell<F> {
    /// Moves the result out of the cell. Only for whoever just set `TAKEN`
    /// on a completed task (won `State::claim_result`, or was told
    /// `DropHandle::DropResult`), or holds its last reference.
    pub(super) fn take_stage_result(&self) -> Result<F::Output, JoinError> {
        // `FAILED` was set with `COMPLETED`, which the caller has seen.
        let state = self.header.state.load_relaxed();
        debug_assert!(
            state.is_completed(),
            "nestloop: internal error: took the result of a running task"
        );
        // SAFETY: the caller set TAKEN on a COMPLETED task
        // (`State::claim_result` or `State::drop_handle`, whose acquire
        // pairs with the release of `State::complete`), which only one
        // party can do, or is the only one left who can reach the task;
        // after COMPLETED nobody else touches the cell, which holds the
        // result `FAILED` names (see `Stage`), moved out once, here.
        self.stage.with_mut(|stage| unsafe {
            if state.is_failed() {
                Err(ManuallyDrop::take(&mut (*stage).error))
            } else {
                Ok(ManuallyDrop::take(&mut (*stage).output))
            }
        })
    }
}

/// What `Running::complete` hands back.
pub(crate) struct Completed<F: Future + 'static> {
    /// The result, when no `JoinHandle` exists: the caller drops it.
    pub(crate) orphan: Option<Result<F::Output, JoinError>>,
    /// Whether an awaiter's waker was registered: the caller wakes it.
    pub(crate) awaited: bool,
    /// The claimer's reference, for the caller to release.
    pub(crate) task: Task<F>,
}

/// How a poll that returned `Pending` ended (`Running::suspend`).
pub(crate) enum Suspended<F: Future + 'static> {
    /// The task was woken meanwhile: the claimer's reference goes back to
    /// the run queue.
    Requeue(TaskRef),
    /// The claimer's reference was released.
    Idle,
    /// An abort arrived meanwhile: the caller keeps the claim and cancels.
    Aborted(Running<F>),
}

/// Exclusive access to a task's future, held while it is polled or dropped,
/// with the claimer's reference. Obtained from `Task::begin`; stays on the
/// thread that claimed it.
pub(crate) struct Running<F: Future + 'static> {
    task: Task<F>,
    _not_send: PhantomData<*const ()>,
}

impl<F: Future + 'static> Running<F> {
    /// Runs `f` on the cell.
    fn with_stage<R>(&mut self, f: impl FnOnce(&mut Stage<F>) -> R) -> R {
        // SAFETY: `Running` exists only for the party that set CLAIMED (see
        // `begin`), and `&mut self` makes this access unique among its uses.
        self.task
            .cell()
            .stage
            .with_mut(|stage| f(unsafe { &mut *stage }))
    }

    /// Whether `abort()` was requested.
    pub(crate) fn cancel_requested(&self) -> bool {
        self.task.header().state.load().is_cancelled()
    }

    /// Polls the future once, inside `executor`'s scope for a poll of this
    /// task (`Inner::enter_poll_task`), with a waker borrowed from the
    /// claimer's reference (no reference-count traffic).
    #[inline(always)]
    pub(crate) fn poll(&mut self, executor: &Inner) -> Poll<F::Output> {
        let raw = RawWaker::new(self.task.task.as_ptr().as_ptr().cast::<()>(), &WAKER_VTABLE);
        // SAFETY: `WAKER_VTABLE` implements the `RawWaker` contract for a
        // pointer to a live task header; the claimer's reference keeps it
        // alive during the poll, and `ManuallyDrop` keeps the borrowed waker
        // from releasing a reference it does not own (clones get their own).
        let waker = ManuallyDrop::new(unsafe { Waker::from_raw(raw) });
        let mut cx = Context::from_waker(&waker);
        let cell = self.task.cell();
        let _scope = executor.enter_poll_task(&cell.header);
        // SAFETY: `Running` exists only for the party that set CLAIMED (see
        // `begin`), and `&mut self` makes this access unique among its uses.
        // The claim was taken on a task not completed, and `drop_future`
        // consumes the right to poll (`complete` follows it), so the cell
        // holds the future (see `Stage`); it sits in the task's allocation
        // and is never moved: only ever dropped in place.
        cell.stage
            .with_mut(|stage| unsafe { Pin::new_unchecked(&mut *(*stage).future) }.poll(&mut cx))
    }

    /// Drops the future (running its destructor, which may panic: the cell is
    /// already empty by then).
    ///
    /// Called once, then only `complete`: the cell holds nothing until it
    /// stores the result (`Stage` has no tag to say so; the callers in
    /// `crate::task` follow every `drop_future` with `complete`).
    pub(crate) fn drop_future(&mut self) {
        self.with_stage(|stage| {
            // SAFETY: not completed, so the cell holds the future (see
            // `Stage`); it is pinned, so it is dropped where it is, never
            // moved (`Pin`'s drop guarantee: it may point into itself);
            // `Running` gives exclusive access. If its destructor panics,
            // the rest of it is dropped during unwinding, all the same.
            unsafe { std::ptr::drop_in_place((&raw mut stage.future).cast::<F>()) };
        });
    }

    /// Ends a poll that returned `Pending` (see `Suspended`).
    pub(crate) fn suspend(self) -> Suspended<F> {
        match self.task.header().state.suspend() {
            Suspend::Cancelled => Suspended::Aborted(self),
            Suspend::Requeue => Suspended::Requeue(self.task.erase()),
            Suspend::Released(left) => {
                self.task.erase().released(left);
                Suspended::Idle
            }
        }
    }

    /// Stores the result and publishes completion. The future must have been
    /// dropped. See `Completed` for what comes back.
    pub(crate) fn complete(mut self, result: Result<F::Output, JoinError>) -> Completed<F> {
        let failed = result.is_err();
        // The future was dropped (see `drop_future`): the cell's bytes are
        // free, and overwriting a `ManuallyDrop` field drops nothing.
        self.with_stage(|stage| match result {
            Ok(output) => stage.output = ManuallyDrop::new(output),
            Err(error) => stage.error = ManuallyDrop::new(error),
        });
        // With no handle, nobody else will ever look at the result.
        let cell = self.task.cell();
        let prev = cell.header.state.complete(failed);
        let orphan = (!prev.has_handle()).then(|| cell.take_stage_result());
        Completed {
            orphan,
            awaited: prev.has_awaiter(),
            task: self.task,
        }
    }
}

impl Header {
    /// Whether `abort()` was requested (a task whose poll is suspended in a
    /// fiber is cancelled there, R12).
    pub(crate) fn abort_requested(&self) -> bool {
        self.state.load().is_cancelled()
    }

    /// For a task whose poll is suspended in a fiber: whether a reference
    /// to it exists beyond its task list's, its `JoinHandle`'s and the
    /// suspended poll's (a waker, or an `AbortHandle` that could end it;
    /// R9 counts it as a way out).
    pub(crate) fn referenced_elsewhere_while_suspended(&self) -> bool {
        let s = self.state.load();
        s.ref_count() > 2 + usize::from(s.has_handle())
    }
}
