//! The `Send + Sync` handles other threads use: [`Spawner`] and
//! [`InterruptHandle`], and the [`Interrupted`] error.

use std::fmt;
use std::future::Future;
use std::sync::Arc;

use super::Shared;
use crate::join::JoinHandle;
use crate::raw::SharedHold;
use crate::sync::Ordering;
use crate::task;

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
#[derive(Clone)]
pub struct InterruptHandle {
    /// The executor's thread-safe side.
    pub(super) shared: Arc<Shared>,
}

impl InterruptHandle {
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

/// Spawns `Send` futures onto an [`Executor`](crate::Executor) from any thread.
///
/// `Send + Sync + Clone`. The task runs on the executor's thread. If the
/// executor is dropped before the task starts (or already was), the task's
/// future is dropped and its [`JoinHandle`] resolves to a cancelled
/// [`JoinError`](crate::JoinError): no handle ever hangs on a dead executor.
///
/// # Examples
///
/// ```
/// let ex = nestloop::Executor::new();
/// let spawner = ex.spawner();
/// let worker = std::thread::spawn(move || {
///     let handle = spawner.spawn(async { "from the executor's thread" });
///     handle
/// });
/// let handle = worker.join().unwrap();
/// assert_eq!(ex.block_on(handle).unwrap(), "from the executor's thread");
/// ```
#[derive(Clone)]
pub struct Spawner {
    /// The executor's thread-safe side.
    pub(super) shared: Arc<Shared>,
}

impl fmt::Debug for Spawner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Spawner")
            .field("executor_alive", &self.shared.alive.load(Ordering::Relaxed))
            .finish()
    }
}

impl Spawner {
    /// Spawns a `Send` future onto the executor; callable from any thread.
    ///
    /// # Examples
    ///
    /// ```
    /// let ex = nestloop::Executor::new();
    /// let spawner = ex.spawner();
    /// drop(ex);
    /// // The executor is gone: the handle resolves to cancelled.
    /// let handle = spawner.spawn(async { 1 });
    /// let result = nestloop::block_on(handle);
    /// assert!(result.unwrap_err().is_cancelled());
    /// ```
    pub fn spawn<F>(&self, future: F) -> JoinHandle<F::Output>
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        let (task, handle) = task::new_remote(future, SharedHold::remote(&self.shared));
        self.shared.unadopted.fetch_add(1, Ordering::AcqRel);
        self.shared.push_remote(task);
        JoinHandle::new(handle)
    }
}
