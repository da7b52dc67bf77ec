#![allow(unsafe_code)]
//! `crate::sync::Arc` under loom: `loom::sync::Arc` for the allocation (so
//! loom still reports a leaked or doubly freed `Arc`), with a strong count
//! of loom atomics kept the way `std::sync::Arc` keeps its own: `clone`
//! adds with `Relaxed`, `drop` subtracts with `Release` and the last one
//! takes an `Acquire` fence, `strong_count` loads with `Relaxed`.
//!
//! `loom::sync::Arc` alone does not model what the deadlock check (R9)
//! relies on: its `strong_count` acquires everything every dropped clone
//! did (std's is a `Relaxed` load), and it never treats a drop on one
//! thread as racing a `strong_count` on another, so it does not explore a
//! count read after a drop that some other order made earlier.
//!
//! Invariant: the value sits at offset 0 of `Counted` (`repr(C)`), so a
//! pointer to the `Counted` that `loom::sync::Arc::into_raw` gives is also
//! one to the value, and the other way round; `Counted::strong` equals the
//! number of `Arc`s (and raw pointers from `into_raw`) that each own one
//! count of the inner `loom::sync::Arc`, because `new`, `clone`, `drop`,
//! `into_raw` and `from_raw` change both counts together or neither.

use std::fmt;
use std::mem::{self, ManuallyDrop};
use std::ops::Deref;

use loom::sync::atomic::{AtomicUsize, Ordering, fence};

/// The value and its modeled strong count.
#[repr(C)]
struct Counted<T> {
    /// First, so pointers to it and to the `Counted` are the same.
    value: T,
    /// Kept as std keeps its count (see the file's docs).
    strong: AtomicUsize,
}

/// `std::sync::Arc` with the methods nestloop uses, for loom.
pub(crate) struct Arc<T>(loom::sync::Arc<Counted<T>>);

impl<T> Arc<T> {
    #[track_caller]
    pub(crate) fn new(value: T) -> Self {
        Arc(loom::sync::Arc::new(Counted {
            value,
            strong: AtomicUsize::new(1),
        }))
    }

    /// `std::sync::Arc::strong_count`: a `Relaxed` load, ordering nothing.
    pub(crate) fn strong_count(this: &Self) -> usize {
        this.0.strong.load(Ordering::Relaxed)
    }

    pub(crate) fn as_ptr(this: &Self) -> *const T {
        loom::sync::Arc::as_ptr(&this.0).cast()
    }

    /// Keeps both counts for the pointer.
    pub(crate) fn into_raw(this: Self) -> *const T {
        let this = ManuallyDrop::new(this);
        Self::as_ptr(&this)
    }

    /// # Safety
    ///
    /// As `std::sync::Arc::from_raw`: `ptr` comes from `into_raw` (or
    /// `as_ptr` of an `Arc` whose count it stands for) and owns a count.
    #[track_caller]
    pub(crate) unsafe fn from_raw(ptr: *const T) -> Self {
        // SAFETY: per the contract, `ptr` points at the value of a live
        // `Counted`, which is where its `Counted` starts (see the
        // Invariant), and owns one count of the inner `Arc`.
        Arc(unsafe { loom::sync::Arc::from_raw(ptr.cast::<Counted<T>>()) })
    }

    /// # Safety
    ///
    /// As `std::sync::Arc::increment_strong_count`: `ptr` comes from
    /// `into_raw`, and its `Arc` stays alive for the call.
    #[track_caller]
    pub(crate) unsafe fn increment_strong_count(ptr: *const T) {
        // SAFETY: per the contract; the rebuilt `Arc` is never dropped, so
        // it takes no count away.
        let this = ManuallyDrop::new(unsafe { Self::from_raw(ptr) });
        mem::forget(Arc::clone(&this));
    }
}

impl<T> Clone for Arc<T> {
    #[track_caller]
    fn clone(&self) -> Self {
        self.0.strong.fetch_add(1, Ordering::Relaxed);
        Arc(self.0.clone())
    }
}

impl<T> Drop for Arc<T> {
    fn drop(&mut self) {
        if self.0.strong.fetch_sub(1, Ordering::Release) == 1 {
            fence(Ordering::Acquire);
        }
        // The inner `Arc`, dropped next, frees the value after the last.
    }
}

impl<T> Deref for Arc<T> {
    type Target = T;

    fn deref(&self) -> &T {
        &self.0.value
    }
}

impl<T: fmt::Debug> fmt::Debug for Arc<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.value.fmt(f)
    }
}
