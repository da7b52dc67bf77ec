#![allow(unsafe_code)]
//! A task's way back to its executor's shared part ([`SharedHold`]),
//! counted in `Shared::holds` ([`Holds`]) and handed out from a per-executor
//! reserve there; [`ThisThread`], the proof of which thread is calling.
//!
//! Invariant: a `SharedHold` points at the allocation of an `Arc<Shared>`
//! kept alive by the one strong count that `Holds::holders` owns while it is
//! above zero; every hold, the executor's own and its unused reserve each
//! count one there. Both counts are private to this file, which alone
//! changes them (`Holds::new` starts `holders` at 1, for
//! `SharedHold::first`). The reserve is touched only on its executor's
//! thread (`Holds::update_reserve` checks with a `ThisThread`, which cannot
//! leave the thread it was made on).

use std::marker::PhantomData;
use std::mem::{self, ManuallyDrop};
use std::ptr::NonNull;

use super::{Inner, Shared};
use crate::sync::{Arc, AtomicUsize, Ordering, UnsafeCell};

/// Holds taken in one atomic operation when an executor's reserve runs out.
pub(crate) const HOLD_BATCH: usize = 64;

/// A task's way back to its executor's [`Shared`]: a pointer kept valid by
/// `Holds::holders` instead of the `Arc`'s own count. The executor's
/// thread takes holds for its tasks from a reserve (in `Holds`) it
/// refills `HOLD_BATCH` at a time, and a task freed on that thread gives its
/// hold back there, so spawning and freeing a task costs no atomic
/// operation on `Shared`, where an `Arc` clone per task would cost two.
///
/// While `holders` is above zero it owns one strong count of the `Arc`
/// (taken when it rises from zero, given back when it falls to zero). The
/// executor counts as one holder, plus its unused reserve.
pub(crate) struct SharedHold(NonNull<Shared>);

// SAFETY: a hold is a counted shared reference to `Shared`, which is `Send +
// Sync`; it gives out only `&Shared`.
unsafe impl Send for SharedHold {}
// SAFETY: as above.
unsafe impl Sync for SharedHold {}

impl SharedHold {
    /// Makes a new executor the first holder of its `Shared` (created with
    /// `holders` at 1); `release_executor` gives that hold back.
    pub(crate) fn first(shared: &Arc<Shared>) {
        // The strong count the holders own from now on.
        mem::forget(shared.clone());
    }

    /// A hold for a task spawned on `executor`'s thread, from its reserve.
    #[inline]
    pub(crate) fn local(executor: &Inner) -> SharedHold {
        let shared = &executor.shared;
        let taken = Holds::update_reserve(shared, ThisThread::of(executor), |reserve| {
            if *reserve == 0 {
                // The executor's own hold keeps the count above zero:
                // adding needs no new strong count.
                shared
                    .holds
                    .holders
                    .fetch_add(HOLD_BATCH, Ordering::Relaxed);
                *reserve = HOLD_BATCH;
            }
            *reserve -= 1;
        });
        // `ThisThread::of` is the executor's thread: the reserve is ours
        // (the check folds away in release builds, where both keys are the
        // same load; the message is not in the binary).
        taken
            .unwrap_or_else(|| unreachable!("nestloop: internal error: reserve of another thread"));
        SharedHold(arc_ptr(shared))
    }

    /// A hold for a task spawned from another thread.
    pub(crate) fn remote(shared: &Arc<Shared>) -> SharedHold {
        if shared.holds.holders.fetch_add(1, Ordering::Relaxed) == 0 {
            // The executor and all its tasks are gone, and the last holder
            // gave the strong count back (or is about to): take one again.
            mem::forget(shared.clone());
        }
        SharedHold(arc_ptr(shared))
    }

    /// A strong reference, for work that may outlive the task.
    #[inline]
    pub(crate) fn to_arc(&self) -> Arc<Shared> {
        // SAFETY: the hold keeps the strong count the holders own, so the
        // pointer is that of a live `Arc<Shared>`.
        unsafe {
            Arc::increment_strong_count(self.0.as_ptr());
            Arc::from_raw(self.0.as_ptr())
        }
    }

    /// `executor` goes away (on its thread): gives back its own hold and
    /// its reserve, and closes the reserve.
    pub(crate) fn release_executor(executor: &Inner) {
        let shared = &executor.shared;
        let reserve = Holds::update_reserve(shared, ThisThread::of(executor), |reserve| {
            mem::replace(reserve, CLOSED)
        })
        .unwrap_or(0);
        release_holds(arc_ptr(shared), reserve + 1);
    }

    /// Gives the hold back, on the thread `here`: to the reserve on the
    /// executor's thread while the executor lives, else to the shared count.
    #[inline]
    pub(crate) fn release(self, here: Option<ThisThread>) {
        let this = ManuallyDrop::new(self);
        let returned = here.and_then(|here| {
            Holds::update_reserve(&this, here, |reserve| {
                if *reserve == CLOSED {
                    return false;
                }
                *reserve += 1;
                true
            })
        });
        if returned != Some(true) {
            release_holds(this.0, 1);
        }
    }
}

impl Drop for SharedHold {
    fn drop(&mut self) {
        SharedHold(self.0).release(ThisThread::get());
    }
}

/// The calling thread, as the proof that the checks letting only an
/// executor's own thread touch a `!Send` future or the holds reserve need:
/// made by asking the thread, or from an executor's thread-local side,
/// which never leaves the thread it was made on. Not `Send`: it cannot
/// travel to another thread.
#[derive(Clone, Copy)]
pub(crate) struct ThisThread {
    /// The thread's key (`park::thread_key`).
    key: u64,
    /// The shared part of the executor it was made from (`of`), if any:
    /// that executor is this thread's, so `owns` it without comparing keys.
    known: *const Shared,
    /// Keeps it on its thread.
    _not_send: PhantomData<*const ()>,
}

impl ThisThread {
    /// Asks the thread; `None` only where its thread-locals are gone
    /// (see `park::try_thread_key`).
    #[inline]
    pub(crate) fn get() -> Option<ThisThread> {
        crate::park::try_thread_key().map(|key| ThisThread {
            key,
            known: std::ptr::null(),
            _not_send: PhantomData,
        })
    }

    /// The thread `executor` lives on, which is the calling one: `Inner` is
    /// made on its thread, with that thread's signal, and is not `Send`.
    #[inline]
    pub(crate) fn of(executor: &Inner) -> ThisThread {
        ThisThread {
            key: executor.shared.signal.key(),
            known: Arc::as_ptr(&executor.shared),
            _not_send: PhantomData,
        }
    }

    /// Whether this is the thread of the executor whose `Shared` this is.
    #[inline]
    pub(crate) fn owns(self, shared: &Shared) -> bool {
        std::ptr::eq(self.known, shared) || self.key == shared.signal.key()
    }
}

/// The reserve's value once its executor is gone.
const CLOSED: usize = usize::MAX;

/// The counts behind an executor's holds (`Shared::holds`, see
/// `SharedHold`): private to this file, whose invariant rests on them.
pub(crate) struct Holds {
    /// The executor, its reserve and its tasks' holds.
    holders: AtomicUsize,
    /// Holds taken for tasks and not yet given to one; only the executor's
    /// thread touches it.
    reserve: UnsafeCell<usize>,
}

// SAFETY: `reserve` is read and written only on one thread
// (`update_reserve` checks, with a `ThisThread`), so sharing it shares no
// access; `holders` is atomic.
unsafe impl Sync for Holds {}

impl Holds {
    /// The counts of a new executor: its own hold, and an empty reserve.
    pub(crate) fn new() -> Self {
        Holds {
            holders: AtomicUsize::new(1),
            reserve: UnsafeCell::new(0),
        }
    }

    /// Runs `f` on the count of `shared`'s reserve if `here` is the thread
    /// of its executor, else returns `None`.
    #[inline]
    fn update_reserve<R>(
        shared: &Shared,
        here: ThisThread,
        f: impl FnOnce(&mut usize) -> R,
    ) -> Option<R> {
        if !here.owns(shared) {
            return None;
        }
        // SAFETY: only the owner thread gets here, and `f` cannot reach
        // the reserve again (it is private to this file's callers, none
        // of which nest), so the borrow is exclusive.
        Some(
            shared
                .holds
                .reserve
                .with_mut(|count| f(unsafe { &mut *count })),
        )
    }
}

impl std::ops::Deref for SharedHold {
    type Target = Shared;

    #[inline]
    fn deref(&self) -> &Shared {
        // SAFETY: the hold keeps `Shared` alive (see the type's docs).
        unsafe { self.0.as_ref() }
    }
}

/// The pointer an `Arc` stands for, with the provenance `Arc::from_raw`
/// needs.
#[inline]
fn arc_ptr(shared: &Arc<Shared>) -> NonNull<Shared> {
    NonNull::new(Arc::as_ptr(shared).cast_mut())
        .unwrap_or_else(|| unreachable!("nestloop: internal error: null Arc"))
}

/// Gives back `count` holds on `shared`; the last one gives back the strong
/// count the holders own.
fn release_holds(shared: NonNull<Shared>, count: usize) {
    // SAFETY: the caller's holds keep `Shared` alive until this returns
    // (the strong count goes only after the subtraction below).
    let holders = unsafe { &shared.as_ref().holds.holders };
    if holders.fetch_sub(count, Ordering::Release) == count {
        // See everything the other holders did before giving theirs back.
        crate::sync::fence(Ordering::Acquire);
        // SAFETY: the holders owned one strong count (see `SharedHold`),
        // and this was the last hold.
        drop(unsafe { Arc::from_raw(shared.as_ptr()) });
    }
}
