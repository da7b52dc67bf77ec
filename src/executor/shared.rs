//! The thread-safe side of an executor ([`Shared`]): where wakes and spawns
//! from other threads go, and how they wake the executor's thread.

use super::Shared;
use crate::frames;
use crate::raw::TaskRef;
use crate::sync::{Ordering, fence};

impl Shared {
    /// The number of interrupts so far.
    pub(crate) fn interrupt_epoch(&self) -> usize {
        self.interrupt_epoch.load(Ordering::SeqCst)
    }

    /// See [`InterruptHandle::interrupt`].
    pub(crate) fn interrupt(&self) {
        self.interrupt_epoch.fetch_add(1, Ordering::SeqCst);
        self.signal.interrupt();
    }

    /// Queues a woken task locally when this is the executor's thread (and
    /// the executor still registered there); else gives it back for
    /// `push_remote`.
    #[inline]
    pub(crate) fn push_local_here(&self, task: TaskRef) -> Result<(), TaskRef> {
        if self.signal.key() != crate::park::thread_key() {
            return Err(task);
        }
        match frames::try_with(|s| s.executor_for(self)).flatten() {
            Some(inner) => {
                inner.push_local(task);
                Ok(())
            }
            None => Err(task),
        }
    }

    /// Pushes on the injection queue and unparks the executor's thread; if
    /// the executor is gone (or goes meanwhile), cancels what is queued.
    pub(crate) fn push_remote(&self, task: TaskRef) {
        self.inject.push(task);
        // Pairs with the fence in `Inner::drop`: either it sees our task in
        // its final drain, or we see `alive == false` here.
        fence(Ordering::SeqCst);
        if self.alive.load(Ordering::SeqCst) {
            self.signal.unpark();
        } else {
            self.drain_dead();
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
