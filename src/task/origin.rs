//! Who a task is: its [`TaskId`] and where it was spawned ([`Origin`]),
//! fixed when the task is made and read by diagnostics (`nestloop::frames`,
//! the deadlock and depth reports) and by `JoinHandle::id`.

use std::fmt;
use std::num::NonZeroU64;
use std::panic::Location;

/// A task's id: unique among all tasks of the process for its lifetime, and
/// never 0. Shown by [`nestloop::frames`](crate::frames) and the deadlock
/// and depth reports.
///
/// # Examples
///
/// ```
/// let ex = nestloop::Executor::new();
/// let a = ex.spawn(async {});
/// let b = ex.spawn(async {});
/// assert_ne!(a.id(), b.id());
/// println!("spawned task {}", a.id());
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TaskId(NonZeroU64);

impl TaskId {
    /// A fresh id.
    #[inline]
    pub(crate) fn next() -> TaskId {
        // Unique in the process, also across copies of nestloop sharing
        // one state (see `thread_context`).
        let id = crate::thread_context::next_task_id();
        // 2^64 spawns take centuries: the counter never wraps to 0.
        TaskId(NonZeroU64::new(id).unwrap_or(NonZeroU64::MIN))
    }

    /// The id as a number (never 0).
    ///
    /// # Examples
    ///
    /// ```
    /// let handle = nestloop::spawn(async {});
    /// assert_ne!(handle.id().as_u64(), 0);
    /// ```
    pub fn as_u64(self) -> u64 {
        self.0.get()
    }
}

impl fmt::Display for TaskId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// A task's id and where it was spawned: two words in its header, fixed
/// when the task is made.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Origin {
    /// The task's id.
    pub(crate) id: TaskId,
    /// Where `spawn` was called.
    pub(crate) location: &'static Location<'static>,
}

impl Origin {
    /// The origin of a new task spawned at `location`, with a fresh id.
    #[inline]
    pub(crate) fn new(location: &'static Location<'static>) -> Origin {
        Origin {
            id: TaskId::next(),
            location,
        }
    }
}
