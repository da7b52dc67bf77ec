#![allow(unsafe_code)]
//! The waker of whoever awaits a task's `JoinHandle`: held in one word
//! ([`AwaiterSlot`]) in the task's header, behind the state word's
//! `AWAITER_LOCK` bit ([`AwaiterGuard`], from `Header::lock_awaiter`).
//!
//! Invariant: the slot is touched only through an `AwaiterGuard`, which
//! holds `AWAITER_LOCK`: it owns the `AwaiterLock` that
//! `State::lock_awaiter` (`state.rs`) returns on setting the bit, and only
//! that lock's drop or `unlock_registered` clears it (its fields are
//! private to `state.rs`, so nothing else can). The guard's fields are
//! private, so no sibling can make one. `cell.rs` writes `Header::awaiter`
//! (`pub(super)`) only when it creates the task and drops it only when it
//! frees the task, when nothing else can reach it. An `AwaiterSlot` tagged `TASK` or `ROOT` holds the
//! data pointer of a waker made with `WAKER_VTABLE` or `ROOT_WAKER_VTABLE`
//! (`waker.rs`) with that waker's count; tagged `BOXED`, a `Box<Waker>` it
//! owns. Only `AwaiterSlot::new`, here, tags a pointer.

use std::mem::{self, ManuallyDrop};
use std::task::{RawWaker, RawWakerVTable, Waker};

use super::cell::Header;
use super::state::AwaiterLock;
use super::waker::{ROOT_WAKER_VTABLE, WAKER_VTABLE};

impl Header {
    /// Locks the awaiter's slot. It is held only to move a waker in or out
    /// or to compare one, never across user code (cloning, waking or
    /// dropping a waker happens outside), so waiting for it is a short spin.
    #[inline]
    pub(crate) fn lock_awaiter(&self) -> AwaiterGuard<'_> {
        AwaiterGuard {
            header: self,
            lock: self.state.lock_awaiter(),
        }
    }
}

/// The awaiter's slot, locked (see `Header::lock_awaiter`); unlocked when
/// dropped.
pub(crate) struct AwaiterGuard<'a> {
    /// Whose slot is locked.
    header: &'a Header,
    /// The lock bit of that header's state word, held.
    lock: AwaiterLock<'a>,
}

impl AwaiterGuard<'_> {
    /// Runs `f` on the slot.
    #[inline]
    pub(crate) fn with<R>(&mut self, f: impl FnOnce(&mut AwaiterSlot) -> R) -> R {
        // SAFETY: the lock bit is ours, so the slot is ours alone.
        self.header
            .awaiter
            .with_mut(|slot| f(unsafe { &mut *slot }))
    }

    /// Unlocks, noting that a waker is registered (`AWAITER`), in one step.
    #[inline]
    pub(crate) fn unlock_registered(self) {
        self.lock.unlock_registered();
    }
}

/// A waker in one word, for a task's awaiter (`Header::awaiter`). The
/// wakers nestloop makes are stored as their data pointer: a task's (what a
/// task awaiting another task's handle registers) and a `block_on` future's;
/// any other waker is boxed. The two low bits (free: every one of these
/// pointers is 8-aligned) say which. Null when empty.
pub(crate) struct AwaiterSlot(*mut ());

/// Masks the low bits of an `AwaiterSlot`, which say what kind of waker
/// it holds.
const KIND: usize = 0b11;
/// `KIND` of a task's waker.
const TASK: usize = 0;
/// `KIND` of a boxed waker.
const BOXED: usize = 1;
/// `KIND` of a `block_on` future's waker.
const ROOT: usize = 2;

/// The vtables of the wakers an `AwaiterSlot` stores by data pointer, by
/// `KIND`.
fn vtable_of(kind: usize) -> &'static RawWakerVTable {
    if kind == ROOT {
        &ROOT_WAKER_VTABLE
    } else {
        &WAKER_VTABLE
    }
}

impl AwaiterSlot {
    /// No waker.
    pub(crate) const EMPTY: AwaiterSlot = AwaiterSlot(std::ptr::null_mut());

    /// The `KIND` that `waker` is stored by data pointer as, if nestloop
    /// made it.
    fn kind_of(waker: &Waker) -> Option<usize> {
        if std::ptr::eq(waker.vtable(), &WAKER_VTABLE) {
            Some(TASK)
        } else if std::ptr::eq(waker.vtable(), &ROOT_WAKER_VTABLE) {
            Some(ROOT)
        } else {
            None
        }
    }

    /// Holds `waker`. Boxes it (allocates) unless nestloop made it: call it
    /// outside the slot's lock.
    pub(crate) fn new(waker: Waker) -> Self {
        let (data, kind) = match Self::kind_of(&waker) {
            // The waker's reference moves into the slot.
            Some(kind) => (ManuallyDrop::new(waker).data().cast_mut(), kind),
            None => (Box::into_raw(Box::new(waker)).cast::<()>(), BOXED),
        };
        debug_assert_eq!(data.addr() & KIND, 0);
        AwaiterSlot(data.map_addr(|a| a | kind))
    }

    /// The pointer without its kind, and the kind; `None` when empty.
    fn parts(&self) -> Option<(*mut (), usize)> {
        (!self.0.is_null()).then(|| (self.0.map_addr(|a| a & !KIND), self.0.addr() & KIND))
    }

    /// The boxed waker, if that is what the slot holds.
    fn boxed(&self) -> Option<&Waker> {
        let (data, kind) = self.parts()?;
        // SAFETY: of kind `BOXED`, the pointer is a live `Box<Waker>` this
        // slot owns (see `new`).
        (kind == BOXED).then(|| unsafe { &*data.cast::<Waker>() })
    }

    /// Takes the waker out, leaving the slot empty.
    pub(crate) fn into_waker(self) -> Option<Waker> {
        let this = ManuallyDrop::new(self);
        let (data, kind) = this.parts()?;
        Some(if kind == BOXED {
            // SAFETY: see `boxed`; the slot is forgotten, so the box is
            // taken back once.
            *unsafe { Box::from_raw(data.cast::<Waker>()) }
        } else {
            // SAFETY: otherwise the pointer is the data of a task's or a
            // `block_on` future's waker with its reference (see `new`), which the slot
            // gives back, and `vtable_of` gives that waker's vtable.
            unsafe { Waker::from_raw(RawWaker::new(data, vtable_of(kind))) }
        })
    }

    /// Whether the slot holds a waker that wakes the same task as `waker`
    /// (`Waker::will_wake`).
    pub(crate) fn will_wake(&self, waker: &Waker) -> bool {
        match self.boxed() {
            Some(boxed) => boxed.will_wake(waker),
            None => self.parts().is_some_and(|(data, kind)| {
                Self::kind_of(waker) == Some(kind) && waker.data() == data.cast_const()
            }),
        }
    }

    /// The data pointer of the waker held, if any (`Waker::data`).
    pub(crate) fn data(&self) -> Option<*const ()> {
        match self.boxed() {
            Some(boxed) => Some(boxed.data()),
            None => self.parts().map(|(data, _)| data.cast_const()),
        }
    }
}

impl Default for AwaiterSlot {
    fn default() -> Self {
        AwaiterSlot::EMPTY
    }
}

impl Drop for AwaiterSlot {
    fn drop(&mut self) {
        drop(mem::take(self).into_waker());
    }
}
