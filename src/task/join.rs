//! Join handles and the errors they resolve to.

use std::any::Any;
use std::fmt;
use std::future::Future;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::pin::Pin;
use std::task::{Context, Poll};

use parking_lot::Mutex;

use super::origin::TaskId;
use super::task_ref::{JoinRef, TaskRef};

/// An owned permission to await a spawned task's result.
///
/// A future resolving to `Ok(output)`, or to a [`JoinError`] when the task
/// panicked or was cancelled. Dropping the handle detaches the task: it keeps
/// running and its output is dropped when it finishes. `Send` when the output
/// is `Send`, so it can be awaited on any thread.
///
/// # Cancel safety
///
/// Awaiting a `JoinHandle` is cancel safe: a dropped `.await` (the losing
/// branch of a `select`, an elapsed `timeout`) leaves the result in the
/// task, and awaiting the same handle again (as `&mut handle`) returns it.
/// Dropping the handle itself detaches the task rather than cancelling it
/// (use [`abort`](JoinHandle::abort)). As in tokio.
///
/// # Examples
///
/// ```
/// let ex = nestloop::Executor::new();
/// let handle = ex.spawn(async { "done" });
/// assert_eq!(ex.block_on(handle).unwrap(), "done");
/// ```
///
/// A handle whose output is not `Send` stays on its thread:
///
/// ```compile_fail
/// fn assert_send<T: Send>(_: T) {}
/// let ex = nestloop::Executor::new();
/// assert_send(ex.spawn(async { std::rc::Rc::new(1) }));
/// ```
pub struct JoinHandle<T> {
    /// The task (`Send`/`Sync` exactly when `T` is).
    task: JoinRef<T>,
    /// The task's id, kept for after the result is taken (the reference
    /// goes with it).
    id: TaskId,
}

impl<T> JoinHandle<T> {
    pub(crate) fn new(task: JoinRef<T>, id: TaskId) -> Self {
        JoinHandle { task, id }
    }

    /// The task's id, unique in the process (see [`TaskId`]); the same
    /// before and after the task finishes.
    ///
    /// # Examples
    ///
    /// ```
    /// let ex = nestloop::Executor::new();
    /// let handle = ex.spawn(async {});
    /// let id = handle.id();
    /// assert_eq!(handle.abort_handle().id(), id);
    /// ```
    pub fn id(&self) -> TaskId {
        self.id
    }

    /// Cancels the task: its future is dropped and the handle resolves to a
    /// cancelled [`JoinError`].
    ///
    /// Called on the executor's thread, the future is dropped before `abort`
    /// returns, unless the task is being polled further down the stack (it
    /// called a nested `block_on`): then it is dropped as soon as that poll
    /// returns. From another thread it is dropped by the executor's next
    /// loop iteration. Aborting a finished task does nothing: its handle
    /// still yields `Ok`.
    ///
    /// # Examples
    ///
    /// ```
    /// let ex = nestloop::Executor::new();
    /// let handle = ex.spawn(std::future::pending::<()>());
    /// handle.abort();
    /// assert_eq!(ex.task_count(), 0);
    /// assert!(ex.block_on(handle).unwrap_err().is_cancelled());
    /// ```
    pub fn abort(&self) {
        // No task left: the result was taken, so it finished.
        if let Some(task) = self.task.task() {
            task.abort();
        }
    }

    /// Whether the task has finished (completed, panicked or was cancelled).
    ///
    /// # Examples
    ///
    /// ```
    /// let ex = nestloop::Executor::new();
    /// let handle = ex.spawn(async {});
    /// assert!(!handle.is_finished());
    /// ex.run_until_stalled();
    /// assert!(handle.is_finished());
    /// ```
    pub fn is_finished(&self) -> bool {
        self.task.task().is_none_or(TaskRef::is_finished)
    }

    /// A handle that can abort the task (from any thread) without owning its
    /// result.
    ///
    /// # Examples
    ///
    /// ```
    /// let ex = nestloop::Executor::new();
    /// let handle = ex.spawn(std::future::pending::<()>());
    /// let aborter = handle.abort_handle();
    /// std::thread::spawn(move || aborter.abort()).join().unwrap();
    /// assert!(ex.block_on(handle).unwrap_err().is_cancelled());
    /// ```
    pub fn abort_handle(&self) -> AbortHandle {
        AbortHandle {
            task: self.task.task().cloned(),
            id: self.id,
        }
    }
}

/// Aborts a task without owning its result; see
/// [`JoinHandle::abort_handle`]. `Send + Sync + Clone`.
///
/// # Examples
///
/// ```
/// let ex = nestloop::Executor::new();
/// let handle = ex.spawn(std::future::pending::<()>());
/// let aborter = handle.abort_handle();
/// assert!(!aborter.is_finished());
/// aborter.abort();
/// assert!(aborter.is_finished());
/// ```
#[derive(Clone)]
pub struct AbortHandle {
    /// The task; `None` when made from a handle that already returned the
    /// result.
    task: Option<TaskRef>,
    /// The task's id.
    id: TaskId,
}

impl AbortHandle {
    /// The task's id, like [`JoinHandle::id`].
    ///
    /// # Examples
    ///
    /// ```
    /// let handle = nestloop::spawn(async {});
    /// let aborter = handle.abort_handle();
    /// assert_eq!(aborter.id(), handle.id());
    /// ```
    pub fn id(&self) -> TaskId {
        self.id
    }

    /// Cancels the task, like [`JoinHandle::abort`].
    ///
    /// # Examples
    ///
    /// ```
    /// let ex = nestloop::Executor::new();
    /// let handle = ex.spawn(std::future::pending::<()>());
    /// handle.abort_handle().abort();
    /// assert!(ex.block_on(handle).unwrap_err().is_cancelled());
    /// ```
    pub fn abort(&self) {
        if let Some(task) = &self.task {
            task.abort();
        }
    }

    /// Whether the task has finished, like [`JoinHandle::is_finished`].
    ///
    /// # Examples
    ///
    /// ```
    /// let ex = nestloop::Executor::new();
    /// let handle = ex.spawn(async {});
    /// let aborter = handle.abort_handle();
    /// ex.block_on(handle).unwrap();
    /// assert!(aborter.is_finished());
    /// ```
    pub fn is_finished(&self) -> bool {
        self.task.as_ref().is_none_or(TaskRef::is_finished)
    }
}

impl fmt::Debug for AbortHandle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AbortHandle")
            .field("id", &self.id)
            .field("finished", &self.is_finished())
            .finish()
    }
}

// The handle holds no pinned data.
impl<T> Unpin for JoinHandle<T> {}

// The task's state stays consistent across panics (rule R4).
impl<T> std::panic::UnwindSafe for JoinHandle<T> {}
impl<T> std::panic::RefUnwindSafe for JoinHandle<T> {}

impl<T> Future for JoinHandle<T> {
    type Output = Result<T, JoinError>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        self.get_mut().task.poll_join(cx)
    }
}

/// `is_terminated` is true once the handle returned the task's result (or
/// its `JoinError`): polling it again would panic. So a `JoinHandle` can go
/// straight into `futures::select!`-style loops and combinators that need
/// a [`FusedFuture`](futures::future::FusedFuture), with no `.fuse()`.
///
/// # Examples
///
/// ```
/// use futures::future::FusedFuture;
///
/// let ex = nestloop::Executor::new();
/// let mut handle = ex.spawn(async { 7 });
/// assert!(!handle.is_terminated());
/// assert_eq!(ex.block_on(&mut handle).unwrap(), 7);
/// assert!(handle.is_terminated());
/// ```
impl<T> futures::future::FusedFuture for JoinHandle<T> {
    fn is_terminated(&self) -> bool {
        self.task.is_terminated()
    }
}

impl<T> fmt::Debug for JoinHandle<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("JoinHandle")
            .field("id", &self.id)
            .field("finished", &self.is_finished())
            .finish()
    }
}

/// Why a task did not produce its output: it was cancelled or it panicked.
///
/// # Examples
///
/// ```
/// let ex = nestloop::Executor::new();
/// let handle = ex.spawn(async { panic!("boom") });
/// let err = ex.block_on(handle).unwrap_err();
/// assert!(err.is_panic());
/// assert_eq!(err.to_string(), "task panicked with message \"boom\"");
/// ```
pub struct JoinError {
    /// `None` when cancelled, else the panic payload. Boxed so a task's
    /// result slot stays one pointer wide; a mutex so the error is `Sync`
    /// (only `Display`, `Debug` and `into_panic` touch it).
    panic: Option<Box<Mutex<Box<dyn Any + Send + 'static>>>>,
}

impl JoinError {
    pub(crate) fn cancelled() -> Self {
        JoinError { panic: None }
    }

    pub(crate) fn panic(payload: Box<dyn Any + Send + 'static>) -> Self {
        JoinError {
            panic: Some(Box::new(Mutex::new(payload))),
        }
    }

    /// Whether the task was cancelled (aborted, shut down, or its executor
    /// was dropped).
    ///
    /// # Examples
    ///
    /// ```
    /// let ex = nestloop::Executor::new();
    /// let handle = ex.spawn(std::future::pending::<()>());
    /// handle.abort();
    /// assert!(ex.block_on(handle).unwrap_err().is_cancelled());
    /// ```
    pub fn is_cancelled(&self) -> bool {
        self.panic.is_none()
    }

    /// Whether the task panicked.
    ///
    /// # Examples
    ///
    /// ```
    /// let ex = nestloop::Executor::new();
    /// let handle = ex.spawn(async { panic!("oops") });
    /// assert!(ex.block_on(handle).unwrap_err().is_panic());
    /// ```
    pub fn is_panic(&self) -> bool {
        self.panic.is_some()
    }

    /// The panic payload, to resume the panic with
    /// [`std::panic::resume_unwind`].
    ///
    /// # Panics
    ///
    /// When the task was cancelled rather than panicking (check with
    /// [`is_panic`](JoinError::is_panic), or use
    /// [`try_into_panic`](JoinError::try_into_panic)).
    ///
    /// # Examples
    ///
    /// ```
    /// let ex = nestloop::Executor::new();
    /// let handle = ex.spawn(async { std::panic::panic_any(17_u32) });
    /// let payload = ex.block_on(handle).unwrap_err().into_panic();
    /// assert_eq!(payload.downcast_ref::<u32>(), Some(&17));
    /// ```
    pub fn into_panic(self) -> Box<dyn Any + Send + 'static> {
        self.try_into_panic().unwrap_or_else(|_| {
            panic!(
                "nestloop: JoinError::into_panic called on a cancelled task; check is_panic() first"
            )
        })
    }

    /// The panic payload, or the error back when the task was cancelled.
    ///
    /// # Examples
    ///
    /// ```
    /// let ex = nestloop::Executor::new();
    /// let handle = ex.spawn(std::future::pending::<()>());
    /// handle.abort();
    /// let err = ex.block_on(handle).unwrap_err();
    /// assert!(err.try_into_panic().is_err());
    /// ```
    pub fn try_into_panic(self) -> Result<Box<dyn Any + Send + 'static>, JoinError> {
        match self.panic {
            Some(payload) => Ok(payload.into_inner()),
            None => Err(self),
        }
    }
}

/// The message of a panic payload, when it is a string.
pub(crate) fn panic_message(payload: &(dyn Any + Send)) -> Option<&str> {
    payload
        .downcast_ref::<&'static str>()
        .copied()
        .or_else(|| payload.downcast_ref::<String>().map(String::as_str))
}

impl fmt::Display for JoinError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.panic {
            None => f.write_str("task was cancelled"),
            Some(payload) => match panic_message(&**payload.lock()) {
                Some(message) => write!(f, "task panicked with message {message:?}"),
                None => f.write_str("task panicked"),
            },
        }
    }
}

impl fmt::Debug for JoinError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.panic {
            None => f.write_str("JoinError::Cancelled"),
            Some(payload) => match panic_message(&**payload.lock()) {
                Some(message) => write!(f, "JoinError::Panic({message:?})"),
                None => f.write_str("JoinError::Panic(..)"),
            },
        }
    }
}

impl std::error::Error for JoinError {}

impl From<JoinError> for std::io::Error {
    fn from(err: JoinError) -> Self {
        std::io::Error::other(err)
    }
}

/// Drops `value`; a panic in its destructor is contained (and a panic while
/// dropping that panic's payload is leaked rather than aborting).
pub(crate) fn drop_contained<T>(value: T) {
    if let Err(payload) = catch_unwind(AssertUnwindSafe(move || drop(value)))
        && let Err(inner) = catch_unwind(AssertUnwindSafe(move || drop(payload)))
    {
        std::mem::forget(inner);
    }
}
