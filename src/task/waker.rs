#![allow(unsafe_code)]
//! The `RawWakerVTable`s of the two wakers nestloop makes: a task's, whose
//! data pointer is the task's header and which owns one reference to it,
//! and a `block_on` future's, whose data pointer is an `Arc<BlockOnWake>` and
//! which owns one strong count of it (`crate::sync::Arc`: `std`'s, or under
//! loom a model with the same methods, so loom sees the count the deadlock
//! check reads).
//!
//! Invariant: a data pointer paired with `WAKER_VTABLE` is a live task
//! header with a reference of its own (or borrowed for a poll); one paired
//! with `ROOT_WAKER_VTABLE` comes from `Arc::into_raw` of a `BlockOnWake`,
//! with a count of its own. Upheld by the three places that pair them:
//! `block_on_waker` here, `Running::poll` (`cell.rs`: a borrowed task waker,
//! never dropped) and `AwaiterSlot::into_waker` (`awaiter.rs`: giving back
//! the pointer and count of a waker it took apart). The vtables are
//! `pub(super)` for those two files.

use std::mem::ManuallyDrop;
use std::ptr::NonNull;
use std::task::{RawWaker, RawWakerVTable, Waker};

use crate::park::BlockOnWake;
use crate::sync::Arc;

use super::state::Owned;
use super::task_ref::TaskRef;

/// The waker of every `block_on` future: the data pointer is its
/// `Arc<BlockOnWake>`, and a waker owns one strong count (so R9's check can
/// count the clones; see `BlockOnWake`). A waker woken by value marks the
/// `block_on` future woken before it gives its count up, which the check relies on.
pub(super) static ROOT_WAKER_VTABLE: RawWakerVTable = RawWakerVTable::new(
    block_on_waker_clone,
    block_on_waker_wake,
    block_on_waker_wake_by_ref,
    block_on_waker_drop,
);

/// The `Waker` of a `block_on` future, owning `waker`.
pub(crate) fn block_on_waker(waker: Arc<BlockOnWake>) -> Waker {
    let data = Arc::into_raw(waker).cast::<()>();
    // SAFETY: `ROOT_WAKER_VTABLE` implements the `RawWaker` contract for a
    // pointer from `Arc::into_raw` of a `BlockOnWake` that owns one count.
    unsafe { Waker::from_raw(RawWaker::new(data, &ROOT_WAKER_VTABLE)) }
}

unsafe fn block_on_waker_clone(data: *const ()) -> RawWaker {
    // SAFETY: the waker being cloned owns (or borrows) a count of this
    // `Arc`; the clone gets one of its own.
    unsafe { Arc::increment_strong_count(data.cast::<BlockOnWake>()) };
    RawWaker::new(data, &ROOT_WAKER_VTABLE)
}

unsafe fn block_on_waker_wake(data: *const ()) {
    // SAFETY: a waker woken by value gives up its count.
    let waker = unsafe { Arc::from_raw(data.cast::<BlockOnWake>()) };
    waker.wake();
    // The count goes only now, after the wake: the deadlock check reads
    // the count and then the flag (`run_loop/deadlock.rs`).
    drop(waker);
}

unsafe fn block_on_waker_wake_by_ref(data: *const ()) {
    // SAFETY: the waker owns (or borrows) a count for this call.
    unsafe { &*data.cast::<BlockOnWake>() }.wake();
}

unsafe fn block_on_waker_drop(data: *const ()) {
    // SAFETY: a dropped waker gives up its count.
    drop(unsafe { Arc::from_raw(data.cast::<BlockOnWake>()) });
}

/// The waker of every task: the data pointer is the task's header, and a
/// waker owns one reference.
pub(super) static WAKER_VTABLE: RawWakerVTable =
    RawWakerVTable::new(waker_clone, waker_wake, waker_wake_by_ref, waker_drop);

/// Rebuilds the reference a waker owns.
///
/// # Safety
///
/// `data` must come from a waker made by `Running::poll` or `waker_clone`,
/// and the reference it stands for must be used exactly once.
unsafe fn waker_ref_of(data: *const ()) -> ManuallyDrop<TaskRef> {
    // SAFETY: per the contract, `data` is a live task header, and the
    // waker's count is the one the result stands for (or borrows).
    ManuallyDrop::new(unsafe { TaskRef::from_raw(NonNull::new_unchecked(data.cast_mut().cast())) })
}

unsafe fn waker_clone(data: *const ()) -> RawWaker {
    // SAFETY: the waker being cloned holds (or borrows) a reference.
    let task = unsafe { waker_ref_of(data) };
    task.header().state.inc_ref();
    RawWaker::new(data, &WAKER_VTABLE)
}

unsafe fn waker_wake(data: *const ()) {
    // SAFETY: a waker woken by value gives up its reference.
    let task = ManuallyDrop::into_inner(unsafe { waker_ref_of(data) });
    match task.header().state.schedule_owned() {
        Owned::Queue => task.enqueue(),
        Owned::Released(state) => task.released(state),
    }
}

unsafe fn waker_wake_by_ref(data: *const ()) {
    // SAFETY: the waker holds (or borrows) a reference for this call.
    unsafe { waker_ref_of(data) }.wake_by_ref();
}

unsafe fn waker_drop(data: *const ()) {
    // SAFETY: a dropped waker gives up its reference.
    drop(ManuallyDrop::into_inner(unsafe { waker_ref_of(data) }));
}
