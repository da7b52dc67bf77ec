//! How a wake reaches a loop that waits in a reactor (features `async-io`
//! and `tokio`) rather than in `std::thread::park`.
//!
//! A loop that waits in async-io's `block_on` or in tokio's current_thread
//! `block_on` sleeps on that reactor's own parker, which `Thread::unpark`
//! does not reach. The loop registers the reactor's waker here before it
//! waits, and checks for work once more after registering (the usual
//! `AtomicWaker` handshake):
//!
//! * a wake from another thread always wakes it, after the work is
//!   published (a thread cannot tell whether the loop waits);
//! * a wake on the loop's own thread (a reactor event that wakes a task,
//!   a tokio task finishing) wakes it only while the loop waits: at any
//!   other time the loop is running and sees the work in its next step.

use std::task::Waker;

use futures::task::AtomicWaker;

use crate::sync::{AtomicBool, Ordering};

/// The waker of the reactor a loop of this thread waits in, if any.
#[derive(Debug, Default)]
pub(crate) struct ReactorWaker {
    /// The reactor's waker, registered by the loop before it waits.
    waker: AtomicWaker,
    /// A loop of this thread waits in a reactor now. Written and read on
    /// the thread itself only.
    waiting: AtomicBool,
}

impl ReactorWaker {
    /// Registers the waker of the reactor the loop is about to wait in and
    /// marks the loop waiting. The caller then checks for work once more.
    pub(crate) fn register(&self, waker: &Waker) {
        self.waker.register(waker);
        self.waiting.store(true, Ordering::Relaxed);
    }

    /// The loop runs again (or never waited): wakes on its thread need not
    /// reach the reactor.
    #[cfg(any(feature = "async-io", feature = "tokio"))]
    pub(crate) fn running(&self) {
        self.waiting.store(false, Ordering::Relaxed);
    }

    /// Forgets the registered waker (its reactor is gone).
    #[cfg(feature = "glib")]
    pub(crate) fn clear(&self) {
        self.waiting.store(false, Ordering::Relaxed);
        drop(self.waker.take());
    }

    /// A wake from another thread.
    pub(crate) fn wake_remote(&self) {
        self.waker.wake();
    }

    /// A wake on the loop's own thread.
    #[inline]
    pub(crate) fn wake_local(&self) {
        if self.waiting.load(Ordering::Relaxed) {
            self.waker.wake();
        }
    }
}
