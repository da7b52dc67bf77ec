#![allow(unsafe_code)]
//! The way from an executor's thread-safe side to its thread-local side
//! ([`LocalSide`], in `Shared::local`), so that a wake on the executor's
//! thread queues the task locally without searching the thread's executors.
//!
//! Invariant: the pointer is null or that of the `Inner` of a live
//! `Rc<Inner>` (strong count above zero), and that `Inner`'s `shared` is
//! this `Shared`. Only `Inner::link_local`, right after `Inner::new` makes the
//! `Rc`, and `Inner::unlink_local`, in the first statement of `Inner::drop`,
//! write it, each for the `Inner`'s own `Shared`; between the strong count
//! reaching zero and that statement no code runs. Every access happens on
//! the executor's thread: the writes because `Inner` is not `Send`, the
//! reads because they take a [`ThisThread`] and check that it owns the
//! `Shared`. So a read never races a write, and a non-null pointer read
//! there points at a live `Inner`. An
//! `&Inner` made from it does not outlive the method: `push_local_here` uses
//! it for a run-queue push, which runs no user code, and `local_executor`
//! turns it into a counted `Rc`.

use std::rc::Rc;

use super::{Inner, Shared, ThisThread};
use crate::sync::UnsafeCell;
use crate::task::TaskRef;

/// `Shared::local`: the executor's `Inner` while it lives (see the module
/// docs).
pub(crate) struct LocalSide(UnsafeCell<*const Inner>);

// SAFETY: the pointer is read and written only on the executor's thread
// (every method checks with a `ThisThread`), so sharing it shares no access.
unsafe impl Send for LocalSide {}
// SAFETY: as above.
unsafe impl Sync for LocalSide {}

impl LocalSide {
    /// No executor yet (see `Inner::link_local`).
    pub(super) fn new() -> Self {
        LocalSide(UnsafeCell::new(std::ptr::null()))
    }
}

impl Shared {
    /// Reads the pointer on the executor's thread, else `None`.
    #[inline]
    fn local_inner(&self, here: ThisThread) -> Option<*const Inner> {
        if !here.owns(self) {
            return None;
        }
        // SAFETY: only the executor's thread reads or writes the cell.
        let inner = self.local.0.with(|p| unsafe { *p });
        (!inner.is_null()).then_some(inner)
    }

    /// Queues a woken task locally when this is the executor's thread and
    /// the executor is alive; else gives it back for `push_remote`.
    #[inline]
    pub(crate) fn push_local_here(&self, task: TaskRef) -> Result<(), TaskRef> {
        match ThisThread::get().and_then(|here| self.local_inner(here)) {
            Some(inner) => {
                // SAFETY: a pointer read on the executor's thread is that of
                // a live `Inner` (see the module docs), and the push runs no
                // user code that could drop it.
                unsafe { &*inner }.push_local(task);
                Ok(())
            }
            None => Err(task),
        }
    }

    /// The executor, when `here` is its thread and it is alive.
    #[inline]
    pub(crate) fn local_executor(&self, here: ThisThread) -> Option<Rc<Inner>> {
        let inner = self.local_inner(here)?;
        // SAFETY: the pointer is that of a live `Rc<Inner>`'s value (see the
        // module docs), so it came from `Rc::as_ptr` of an `Rc` whose strong
        // count is above zero; the new count is given to the `Rc` made here.
        unsafe {
            Rc::increment_strong_count(inner);
            Some(Rc::from_raw(inner))
        }
    }
}

impl Inner {
    /// A counted `Rc` of this executor, while it is alive (`None` once its
    /// drop began). The `&Inner` is the proof of thread: an `Inner` is not
    /// `Send`, so the caller is on the executor's thread, where the cell is
    /// read.
    #[inline]
    pub(crate) fn to_rc(&self) -> Option<Rc<Inner>> {
        // SAFETY: only the executor's thread reads or writes the cell, and
        // this is it (see above).
        let inner = self.shared.local.0.with(|p| unsafe { *p });
        if inner.is_null() {
            return None;
        }
        // SAFETY: a non-null pointer in the cell is that of this `Inner`,
        // given by `Rc::as_ptr` of its live `Rc` (see the module docs); the
        // new count is given to the `Rc` made here.
        unsafe {
            Rc::increment_strong_count(inner);
            Some(Rc::from_raw(inner))
        }
    }

    /// Links a new executor to its shared part, for wakes on its thread.
    pub(super) fn link_local(self: &Rc<Self>) {
        self.store_local(Rc::as_ptr(self));
    }

    /// Unlinks an executor going away: from now on wakes on its thread take
    /// the remote path.
    pub(super) fn unlink_local(&self) {
        self.store_local(std::ptr::null());
    }

    /// Writes the pointer of this executor's own `Shared`, on its thread
    /// (`Inner` is not `Send`).
    fn store_local(&self, inner: *const Inner) {
        // SAFETY: only the executor's thread reads or writes the cell, and
        // no reference to its content is held across this write.
        self.shared.local.0.with_mut(|p| unsafe { *p = inner });
    }
}
