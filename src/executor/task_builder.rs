//! [`TaskBuilder`]: spawning a task with options (a name), and the free
//! `spawn`'s choice of executor.

use std::future::Future;
use std::panic::Location;

use crate::context;
use crate::sched::Executor;
use crate::task::JoinHandle;

/// Spawns a task with options: so far a name, which diagnostics show
/// ([`nestloop::frames`](crate::frames), the deadlock and depth-limit
/// reports). nestloop's counterpart of `tokio::task::Builder`.
///
/// A name is kept beside the executor's tasks, not in the task: unnamed
/// tasks spend nothing on names.
///
/// # Examples
///
/// ```
/// use nestloop::{Polling, TaskBuilder};
///
/// let handle = TaskBuilder::new().name("fetcher").spawn(async {
///     let frames = nestloop::frames();
///     match frames[0].polling() {
///         Polling::Task { name, .. } => name.clone(),
///         _ => None,
///     }
/// });
/// let name = nestloop::block_on(handle).unwrap();
/// assert_eq!(name.as_deref(), Some("fetcher"));
/// ```
#[derive(Debug, Default, Clone, Copy)]
pub struct TaskBuilder<'a> {
    /// The task's name.
    name: Option<&'a str>,
}

impl<'a> TaskBuilder<'a> {
    /// A builder with no options set.
    ///
    /// # Examples
    ///
    /// ```
    /// let handle = nestloop::TaskBuilder::new().spawn(async { 1 });
    /// assert_eq!(nestloop::block_on(handle).unwrap(), 1);
    /// ```
    pub fn new() -> Self {
        TaskBuilder { name: None }
    }

    /// Names the task (the name is copied).
    ///
    /// # Examples
    ///
    /// ```
    /// let ex = nestloop::Executor::new();
    /// let handle = nestloop::TaskBuilder::new()
    ///     .name("worker")
    ///     .spawn_on(async { 2 }, &ex);
    /// assert_eq!(ex.block_on(handle).unwrap(), 2);
    /// ```
    pub fn name(self, name: &'a str) -> Self {
        TaskBuilder { name: Some(name) }
    }

    /// Spawns the task on the current executor, as
    /// [`nestloop::spawn`](crate::spawn) does.
    ///
    /// # Examples
    ///
    /// ```
    /// let handle = nestloop::TaskBuilder::new().name("adder").spawn(async { 2 + 2 });
    /// assert_eq!(nestloop::block_on(handle).unwrap(), 4);
    /// ```
    #[track_caller]
    pub fn spawn<F>(self, future: F) -> JoinHandle<F::Output>
    where
        F: Future + 'static,
        F::Output: 'static,
    {
        spawn_current(future, Location::caller(), self.name)
    }

    /// Spawns the task on `executor`, as
    /// [`Executor::spawn`] does.
    ///
    /// # Examples
    ///
    /// ```
    /// let ex = nestloop::Executor::new();
    /// let handle = nestloop::TaskBuilder::new().name("n").spawn_on(async { 3 }, &ex);
    /// assert_eq!(ex.block_on(handle).unwrap(), 3);
    /// ```
    #[track_caller]
    pub fn spawn_on<F>(self, future: F, executor: &Executor) -> JoinHandle<F::Output>
    where
        F: Future + 'static,
        F::Output: 'static,
    {
        executor.inner.spawn(future, Location::caller(), self.name)
    }
}

/// The free `spawn` (and `TaskBuilder::spawn`): on the current executor, or
/// this thread's default one.
#[inline]
pub(crate) fn spawn_current<F>(
    future: F,
    location: &'static Location<'static>,
    name: Option<&str>,
) -> JoinHandle<F::Output>
where
    F: Future + 'static,
    F::Output: 'static,
{
    current_or_default().inner.spawn(future, location, name)
}

/// The current executor, or this thread's default executor.
pub(crate) fn current_or_default() -> Executor {
    context::with(|s| s.current().unwrap_or_else(|| s.default_executor()))
}
