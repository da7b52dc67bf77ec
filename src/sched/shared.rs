//! The thread-safe side of an executor ([`Shared`]): where wakes and spawns
//! from other threads go, and how they wake the executor's thread.

use std::future::Future;
use std::panic::Location;

use super::{Shared, SharedHold};
use crate::sync::{Arc, Ordering, fence};
use crate::task::{self, JoinHandle, TaskRef};

impl Shared {
    /// See [`Spawner::spawn`](crate::Spawner::spawn) (spawned at
    /// `location`). An associated function
    /// rather than a method on `self: &Arc<Self>`: under loom,
    /// `crate::sync::Arc` is not `std`'s, and stable Rust takes no other
    /// `Arc` as a `self` type.
    pub(crate) fn spawn<F>(
        this: &Arc<Self>,
        future: F,
        location: &'static Location<'static>,
    ) -> JoinHandle<F::Output>
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        let (origin, future) = task::prepare(future, location, None);
        let task = task::new_remote(future, SharedHold::remote(this), origin);
        this.unadopted.fetch_add(1, Ordering::AcqRel);
        Shared::push_remote(this, task.queued);
        JoinHandle::new(task.handle, task.id)
    }

    /// Whether the executor is still alive (for `Debug`).
    pub(crate) fn is_alive(&self) -> bool {
        self.alive.load(Ordering::Relaxed)
    }

    /// Pushes on the injection queue, lists the executor with its thread
    /// (`RemoteReady`) and unparks the thread; if the executor is gone (or
    /// goes meanwhile), cancels what is queued. An associated function for
    /// the reason given at `spawn`.
    pub(crate) fn push_remote(this: &Arc<Self>, task: TaskRef) {
        this.inject.push(task);
        // Pairs with the fence in `Inner::drop`: either it sees our task in
        // its final drain, or we see `alive == false` here.
        fence(Ordering::SeqCst);
        if this.alive.load(Ordering::SeqCst) {
            // The push comes first: a loop that unlists the executor after
            // this sees the task (see `ThreadQueue::drain_remote`).
            this.remote.list(this);
            this.signal.unpark();
        } else {
            this.drain_dead();
        }
    }

    /// Cancels everything on the injection queue of a dropped executor.
    pub(super) fn drain_dead(&self) {
        while let Some(task) = self.inject.pop() {
            if !task.header().is_adopted() && task.cancel_orphan() {
                self.unadopted.fetch_sub(1, Ordering::AcqRel);
            }
        }
    }
}
