#![allow(unsafe_code)]
//! [`DeferredFrame`]: the frame of a plain `block_on` while the call polls
//! its future for the first time, not pushed yet. Most such futures are
//! ready at once, and then nothing ever reads the frame; anything that
//! reads or pushes frames pushes it first (`ThreadState::push_deferred`),
//! so at most one frame is deferred at a time, the innermost, and it
//! belongs to the stack that runs now (a stack switch pushes it first).
//!
//! The call's executor is lent by pointer rather than cloned, so the
//! first poll costs no reference count.
//!
//! Invariant: a pointer in `executor` was put there by a `lend` that is
//! still running. Only `lend` writes one, and the guard it keeps on its own
//! stack puts the previous value back before it returns or unwinds; the
//! cell is private to this file.

use std::cell::Cell;
use std::panic::Location;
use std::ptr::NonNull;

use crate::sched::Executor;

/// The deferred frame of the innermost plain `block_on`, if its first poll
/// is running (see the module docs).
pub(crate) struct DeferredFrame {
    /// The call's executor, lent.
    executor: Cell<Option<NonNull<Executor>>>,
    /// Approximate stack pointer when the call began (R10).
    stack_mark: Cell<usize>,
    /// Where the call was made.
    location: Cell<&'static Location<'static>>,
}

impl DeferredFrame {
    /// No deferred frame.
    #[track_caller]
    pub(crate) fn new() -> Self {
        DeferredFrame {
            executor: Cell::new(None),
            stack_mark: Cell::new(0),
            location: Cell::new(Location::caller()),
        }
    }

    /// Whether a frame is deferred.
    #[inline]
    pub(crate) fn is_pending(&self) -> bool {
        self.executor.get().is_some()
    }

    /// Runs `f` with the frame of the call made at `location` (its stack
    /// mark `stack_mark`, of `executor`) deferred. It stays deferred until
    /// `f` returns or unwinds (what was there before is put back), or until
    /// `take` pushes it.
    #[inline(always)]
    pub(crate) fn lend<R>(
        &self,
        executor: &Executor,
        stack_mark: usize,
        location: &'static Location<'static>,
        f: impl FnOnce() -> R,
    ) -> R {
        /// Puts the previous value back.
        struct EndLoan<'a> {
            cell: &'a Cell<Option<NonNull<Executor>>>,
            previous: Option<NonNull<Executor>>,
        }
        impl Drop for EndLoan<'_> {
            #[inline]
            fn drop(&mut self) {
                self.cell.set(self.previous);
            }
        }
        // At most one frame is deferred: a call that nests pushes its
        // caller's first (`check_enter`).
        debug_assert!(
            !self.is_pending(),
            "nestloop: internal error: a second frame deferred"
        );
        self.stack_mark.set(stack_mark);
        self.location.set(location);
        let _end = EndLoan {
            cell: &self.executor,
            previous: self.executor.replace(Some(NonNull::from(executor))),
        };
        f()
    }

    /// Ends the deferral early, to push the frame: a clone of the executor,
    /// the stack mark and the location.
    #[inline]
    pub(crate) fn take(&self) -> Option<(Executor, usize, &'static Location<'static>)> {
        let executor = self.executor.take()?;
        // SAFETY: a pointer in the cell was put there by a `lend` that is
        // still running: each one puts the previous value back before it
        // returns or unwinds (a local guard that nothing can leak), and its
        // `executor` reference outlives the call. A `lend` further up the
        // stack puts back the pointer of one further down, which is still
        // running too; a stack switch takes the pointer (pushing the frame)
        // before it leaves the stack, so it is never read on another.
        let executor = unsafe { executor.as_ref() }.clone();
        Some((executor, self.stack_mark.get(), self.location.get()))
    }
}
