//! [`Spawner`], the handle other threads use to spawn onto an executor.

use std::fmt;
use std::future::Future;
use std::panic::Location;

use crate::sched::Shared;
use crate::sync::Arc;
use crate::task::JoinHandle;

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
    /// Where spawned tasks are queued, and the signal that wakes the
    /// executor's thread.
    shared: Arc<Shared>,
}

impl fmt::Debug for Spawner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Spawner")
            .field("executor_alive", &self.shared.is_alive())
            .finish()
    }
}

impl Spawner {
    pub(super) fn new(shared: Arc<Shared>) -> Spawner {
        Spawner { shared }
    }

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
    #[track_caller]
    pub fn spawn<F>(&self, future: F) -> JoinHandle<F::Output>
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        Shared::spawn(&self.shared, future, Location::caller())
    }
}
