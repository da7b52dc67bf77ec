//! The thread-local side of an executor ([`Inner`]): its run queue, its task
//! list, spawning, adopting tasks from other threads, shutdown.

use std::future::Future;
use std::panic::Location;

use super::polled::PollContext;
use super::{Inner, SharedHold};
use crate::sync::{Ordering, fence};
use crate::task::{self, JoinHandle, TaskRef};

impl Inner {
    /// See [`Executor::spawn`](crate::Executor::spawn): a task spawned at
    /// `location`, named `name`.
    #[inline]
    pub(crate) fn spawn<F>(
        &self,
        future: F,
        location: &'static Location<'static>,
        name: Option<&str>,
    ) -> JoinHandle<F::Output>
    where
        F: Future + 'static,
        F::Output: 'static,
    {
        let (origin, future) = task::prepare(future, location, name);
        let task = task::new_local(future, SharedHold::local(self), origin);
        self.tasks.push(task.listed);
        // Queued as a wake queues it: a loop waiting in a reactor, or GLib
        // running the thread, learns of the first task queued.
        self.push_local(task.queued);
        if let Some(name) = name {
            self.names.name(task.id, name);
        }
        JoinHandle::new(task.handle, task.id)
    }

    /// See [`Executor::task_count`](crate::Executor::task_count).
    pub(crate) fn task_count(&self) -> usize {
        self.tasks.len() + self.shared.unadopted.load(Ordering::Acquire)
    }

    /// Enters what a poll of this executor's tasks and futures needs.
    #[inline]
    pub(crate) fn poll_context(&self) -> PollContext<'_> {
        #[cfg(feature = "tokio")]
        return self
            .tokio
            .as_ref()
            .map(|h| crate::thread_context::enter_runtime_here(self.here, h));
        #[cfg(not(feature = "tokio"))]
        std::marker::PhantomData
    }

    /// Pushes a task woken on this thread.
    #[inline]
    pub(crate) fn push_local(&self, task: TaskRef) {
        let _was_empty = self.thread.push(task);
        // A loop that waits in a reactor found the queue empty: only the
        // first task queued can be news to it.
        #[cfg(any(feature = "async-io", feature = "tokio", feature = "glib"))]
        if _was_empty {
            self.shared.signal.local_work();
        }
    }

    /// Moves tasks pushed by other threads to the local queue, adopting new
    /// ones into the task list. Bounded, so a thread that keeps pushing cannot
    /// keep a loop here.
    pub(crate) fn drain_inject(&self) {
        if self.shared.inject.is_empty() {
            return; // every loop step asks: keep the common case cheap
        }
        let mut budget = self.shared.inject.len();
        while budget > 0 {
            let Some(task) = self.shared.inject.pop() else {
                break;
            };
            budget -= 1;
            if !task.header().is_adopted() {
                if task.is_finished() {
                    self.shared.unadopted.fetch_sub(1, Ordering::AcqRel);
                    continue;
                }
                self.tasks.push(task.clone());
                self.shared.unadopted.fetch_sub(1, Ordering::AcqRel);
            }
            self.thread.push(task);
        }
    }

    /// How many of this executor's tasks `f` holds for (the deadlock
    /// checks ask whose `JoinHandle` slot holds a future's waker).
    pub(crate) fn count_tasks(&self, mut f: impl FnMut(&TaskRef) -> bool) -> usize {
        let mut count = 0;
        self.tasks.for_each(|t| count += usize::from(f(t)));
        count
    }

    /// Whether a task of this executor may still be woken from outside it
    /// (see `Header::wakeable_if_idle`): then a loop waiting for it serves
    /// tasks that are alive, not a deadlock (R9).
    pub(crate) fn has_wakeable_task(&self) -> bool {
        self.tasks
            .any(|t| t.header().wakeable_if_idle() == Some(true))
    }

    /// Forgets a finished task; the reference is dropped by the caller after
    /// every borrow is released.
    pub(crate) fn remove(&self, task: &TaskRef) -> Option<TaskRef> {
        if self.names.any() {
            return self.remove_named(task);
        }
        self.tasks.remove(task)
    }

    /// `remove` while some task has a name: forgets the task's (out of
    /// line, so that `remove` stays a leaf).
    #[cold]
    #[inline(never)]
    fn remove_named(&self, task: &TaskRef) -> Option<TaskRef> {
        self.names.forget(task.header().origin.id);
        self.tasks.remove(task)
    }

    /// See [`Executor::shutdown`]: drops the tasks' futures one at a
    /// time, newest first, holding no reference to the others meanwhile
    /// (a destructor may wait for them, and the deadlock check counts
    /// references). Tasks on the stack are dropped when their polls return.
    pub(crate) fn shutdown(&self) {
        // Tasks blocked in suspended fibers (R12) are cancelled there first.
        self.thread.before_shutdown((self as *const Inner).cast());
        let _shutting_down = self.thread.begin_shutdown(&self.shared);
        loop {
            self.drain_inject();
            let Some(task) = self.tasks.newest(|t| !t.is_claimed()) else {
                break;
            };
            if !task.shut_down(self) {
                break; // not expected: it was idle
            }
        }
        // This executor's queued tasks are finished (shut down above),
        // except what was spawned meanwhile: only those, and the tasks of
        // the thread's other executors, stay queued. Dropping a finished
        // entry may free its task and drop its awaiter's waker: user code,
        // whose wakes and spawns land in the queue while the old entries
        // are sorted apart.
        self.thread.retain(|task| !task.is_finished());
    }

    /// Drops the newest task of this executor that can never run again
    /// (`TaskRef::is_dormant`); returns whether there was one. A loop that
    /// waits while the executor shuts down calls it: the destructor the
    /// shutdown runs may wait for what such a task holds (the other end
    /// of a channel), which only dropping it can give back.
    pub(crate) fn shut_down_dormant(&self) -> bool {
        self.tasks
            .newest(TaskRef::is_dormant)
            .is_some_and(|task| task.shut_down(self))
    }
}

impl Drop for Inner {
    fn drop(&mut self) {
        // From here wakes on this thread take the remote path, which cancels
        // what they push once `alive` is false (the thread's registry drops
        // its entry by itself: it holds a `Weak`).
        self.unlink_local();
        self.shared.alive.store(false, Ordering::SeqCst);
        fence(Ordering::SeqCst);
        self.shutdown();
        self.shared.drain_dead();
        SharedHold::release_executor(self);
    }
}
