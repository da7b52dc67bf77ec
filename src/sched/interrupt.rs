//! Interrupts, the side other threads touch: each executor counts its
//! interrupts (the epoch), and a `try_block_on` frame remembers the epoch it
//! began at (`context`), so a later one means it is interrupted; the loop
//! acts on it (`run_loop/interrupt.rs`), unwinding nested calls with the
//! [`Interrupted`] payload, which a task's poll passes on (`task::harness`).

use std::fmt;

use super::Shared;
use crate::sync::{Arc, Ordering};

impl Shared {
    /// How many interrupts the executor has had; a `try_block_on` frame
    /// compares it with the count when it began.
    pub(crate) fn interrupt_epoch(&self) -> usize {
        self.interrupt_epoch.load(Ordering::SeqCst)
    }

    /// Whether an `InterruptHandle` of the executor exists (anywhere).
    pub(crate) fn has_interrupt_handles(&self) -> bool {
        self.interrupt_handles.load(Ordering::SeqCst) != 0
    }

    /// See [`InterruptHandle::interrupt`].
    pub(crate) fn interrupt(&self) {
        self.interrupt_epoch.fetch_add(1, Ordering::SeqCst);
        self.signal.interrupt();
    }
}

/// Interrupts the innermost running [`Executor::try_block_on`](crate::Executor::try_block_on) of an
/// executor, from any thread (a Ctrl-C handler, a watchdog, a UI button).
/// `Send + Sync + Clone`.
///
/// # Examples
///
/// ```
/// let ex = nestloop::Executor::new();
/// let interrupt = ex.interrupt_handle();
/// let result = ex.try_block_on(async move {
///     interrupt.interrupt();
///     // The loop notices at its next step.
///     std::future::pending::<()>().await
/// });
/// assert_eq!(result, Err(nestloop::Interrupted::new()));
/// ```
pub struct InterruptHandle {
    /// Where the interrupt count is, and the signal that wakes the thread.
    shared: Arc<Shared>,
}

impl InterruptHandle {
    /// A handle of the executor whose shared part is `shared` (counted in
    /// it: a live handle is a way out of its `try_block_on`, R9).
    pub(crate) fn new(shared: Arc<Shared>) -> InterruptHandle {
        shared.interrupt_handles.fetch_add(1, Ordering::SeqCst);
        InterruptHandle { shared }
    }

    /// Makes the innermost running `try_block_on` of the executor return
    /// `Err(Interrupted)`; does nothing when none runs.
    ///
    /// # Examples
    ///
    /// ```
    /// let ex = nestloop::Executor::new();
    /// let interrupt = ex.interrupt_handle();
    /// let outer = ex.try_block_on(async {
    ///     let inner = ex.try_block_on(async {
    ///         interrupt.interrupt();
    ///         nestloop::yield_now().await;
    ///     });
    ///     assert!(inner.is_err()); // the innermost one is interrupted
    ///     "the outer call goes on"
    /// });
    /// assert_eq!(outer, Ok("the outer call goes on"));
    /// ```
    pub fn interrupt(&self) {
        self.shared.interrupt();
    }
}

impl Clone for InterruptHandle {
    fn clone(&self) -> Self {
        InterruptHandle::new(self.shared.clone())
    }
}

impl Drop for InterruptHandle {
    fn drop(&mut self) {
        if self.shared.interrupt_handles.fetch_sub(1, Ordering::SeqCst) == 1 {
            // The last one: a loop that waits only because of it may now
            // be a deadlock; let it look again.
            self.shared.signal.unpark();
        }
    }
}

impl fmt::Debug for InterruptHandle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("InterruptHandle").finish_non_exhaustive()
    }
}

/// The error of an interrupted [`Executor::try_block_on`](crate::Executor::try_block_on), and the panic
/// payload that unwinds the plain `block_on` calls nested inside it.
///
/// # Examples
///
/// ```
/// let err = nestloop::Interrupted::new();
/// assert_eq!(err.to_string(), "interrupted");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Interrupted {
    /// Room for details later without breaking users.
    _private: (),
}

impl Interrupted {
    /// The value `try_block_on` returns when interrupted (for comparisons in
    /// tests).
    ///
    /// # Examples
    ///
    /// ```
    /// let ex = nestloop::Executor::new();
    /// let interrupt = ex.interrupt_handle();
    /// let result = ex.try_block_on(async move {
    ///     interrupt.interrupt();
    ///     nestloop::yield_now().await;
    /// });
    /// assert_eq!(result, Err(nestloop::Interrupted::new()));
    /// ```
    pub const fn new() -> Self {
        Interrupted { _private: () }
    }
}

impl Default for Interrupted {
    fn default() -> Self {
        Interrupted::new()
    }
}

impl fmt::Display for Interrupted {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("interrupted")
    }
}

impl std::error::Error for Interrupted {}
