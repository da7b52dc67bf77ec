#![allow(unsafe_code)]
//! [`LentExecutor`]: a `block_on`'s executor, lent by pointer to the
//! thread's state while its frame is deferred.
//!
//! Invariant: a pointer in the cell was put there by a `lend` that is still
//! running. Only `lend` writes one, and the guard it keeps on its own stack
//! puts the previous value back before it returns or unwinds; the cell is
//! private to this file.

use std::cell::Cell;
use std::ptr::NonNull;

use crate::sched::Executor;

/// A `block_on`'s executor, lent to its thread's state while the call polls
/// its future for the first time with its frame deferred (see
/// `frames::ThreadState::first_poll`): a pointer rather than a clone, so the
/// loan costs no reference count.
pub(crate) struct LentExecutor(Cell<Option<NonNull<Executor>>>);

impl LentExecutor {
    /// No loan.
    pub(crate) const fn new() -> Self {
        LentExecutor(Cell::new(None))
    }

    /// Whether an executor is lent.
    #[inline]
    pub(crate) fn is_lent(&self) -> bool {
        self.0.get().is_some()
    }

    /// Runs `f` with `executor` lent. The loan ends when `f` returns or
    /// unwinds (what was there before is put back), or earlier by `take`.
    #[inline(always)]
    pub(crate) fn lend<R>(&self, executor: &Executor, f: impl FnOnce() -> R) -> R {
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
        let _end = EndLoan {
            cell: &self.0,
            previous: self.0.replace(Some(NonNull::from(executor))),
        };
        f()
    }

    /// Ends the loan early, with a clone of the executor.
    #[inline]
    pub(crate) fn take(&self) -> Option<Executor> {
        let executor = self.0.take()?;
        // SAFETY: a pointer in the cell was put there by a `lend` that is
        // still running: each one puts the previous value back before it
        // returns or unwinds (a local guard that nothing can leak), and its
        // `executor` reference outlives the call. A `lend` further up the
        // stack puts back the pointer of one further down, which is still
        // running too.
        Some(unsafe { executor.as_ref() }.clone())
    }
}
