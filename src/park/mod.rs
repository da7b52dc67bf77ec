//! Wakers and parking: how a sleeping thread learns that work arrived.
//!
//! A loop with nothing to do parks its thread (`std::thread::park`, with a
//! timeout when a timer is pending). Everything that can make work for it
//! from another thread (a task wake, a `Spawner::spawn`, a `block_on` future wake) unparks
//! it after publishing the work, so the park returns at once or is never
//! entered: `std`'s park token closes the race between checking for work and
//! parking.

mod batch;
mod block_on_wake;
#[cfg(any(feature = "async-io", feature = "tokio", feature = "glib"))]
mod reactor_waker;
mod timers;

pub(crate) use batch::BatchPause;
pub(crate) use block_on_wake::BlockOnWake;
#[cfg(any(feature = "async-io", feature = "tokio", feature = "glib"))]
pub(crate) use reactor_waker::ReactorWaker;
pub(crate) use timers::{TimerHeap, TimerShared};

use crate::sync::thread::{self, Thread};
use std::time::Instant;

use crate::sync::{Arc, AtomicBool, InjectQueue, Ordering};
use crate::thread_context::{self, ThreadContext};

/// A number unique to the calling thread for the life of the process (see
/// `ThreadContext::key`).
#[inline]
pub(crate) fn thread_key() -> u64 {
    thread_context::with(ThreadContext::key)
}

/// `thread_key`, or `None` where thread-locals are gone (only under loom,
/// whose thread-locals are unreachable while a thread exits).
#[inline]
pub(crate) fn try_thread_key() -> Option<u64> {
    thread_context::try_with(ThreadContext::key)
}

/// One per thread that runs loops: unparks it and flags woken `block_on` futures.
#[derive(Debug)]
pub(crate) struct ThreadSignal {
    /// Unparked by wakes from other threads.
    thread: Thread,
    /// Parks the thread, in the copy of nestloop (and of `std`) that made
    /// this signal: copies sharing the thread's state may each link a
    /// `std` of their own, whose `park` waits on a token of its own, which
    /// `thread`'s unpark would never reach.
    park: fn(Option<Instant>),
    /// That thread's key, to skip unparking ourselves.
    key: u64,
    /// Some `block_on` future of this thread was woken since the loops last
    /// looked; they then scan the frame stack for it.
    block_ons_woken: AtomicBool,
    /// An executor of this thread was interrupted; loops then look for the
    /// `try_block_on` it ends.
    interrupted: AtomicBool,
    /// A task of this thread being polled was aborted: loops look for its
    /// poll among the suspended fibers (R12); comes with `block_ons_woken`.
    aborted: AtomicBool,
    /// Fibers of this thread whose `block_on` future was woken, by id, for
    /// a loop to resume (R12); each comes with `block_ons_woken` raised.
    fibers_woken: InjectQueue<usize>,
    /// Reaches a loop of this thread that waits in a reactor.
    #[cfg(any(feature = "async-io", feature = "tokio", feature = "glib"))]
    pub(crate) reactor: ReactorWaker,
}

impl ThreadSignal {
    /// A signal that unparks the calling thread (made once per thread, by
    /// its state).
    pub(crate) fn for_current_thread() -> Arc<Self> {
        Arc::new(ThreadSignal {
            thread: thread::current(),
            park: thread::park,
            key: thread_key(),
            block_ons_woken: AtomicBool::new(false),
            interrupted: AtomicBool::new(false),
            aborted: AtomicBool::new(false),
            fibers_woken: InjectQueue::new(),
            #[cfg(any(feature = "async-io", feature = "tokio", feature = "glib"))]
            reactor: ReactorWaker::default(),
        })
    }

    /// The key of the thread this signal belongs to.
    pub(crate) fn key(&self) -> u64 {
        self.key
    }

    /// Parks the calling thread, this signal's, until it is unparked or
    /// `deadline` passes.
    #[inline]
    pub(crate) fn park(&self, deadline: Option<Instant>) {
        (self.park)(deadline)
    }

    /// Whether the calling thread is this signal's thread.
    #[inline]
    pub(crate) fn is_current(&self) -> bool {
        self.key == thread_key()
    }

    /// Wakes the thread if it may be parked, i.e. if we are not it; on the
    /// thread itself, reaches a loop that waits in a reactor (the caller is
    /// a task that reactor runs).
    #[inline]
    pub(crate) fn unpark(&self) {
        self.wake(!self.is_current());
    }

    /// Wakes the thread for work made `remote`ly (from another thread) or
    /// on the thread itself.
    #[inline]
    fn wake(&self, remote: bool) {
        if remote {
            self.wake_thread();
        } else {
            self.local_work();
        }
    }

    /// Wakes the thread from another one, from whichever park its loop is
    /// in.
    #[inline]
    fn wake_thread(&self) {
        self.thread.unpark();
        #[cfg(any(feature = "async-io", feature = "tokio", feature = "glib"))]
        self.reactor.wake_remote();
    }

    /// Work was made on the thread itself: reaches the loop only if it
    /// waits in a reactor (whose events are delivered on this thread).
    #[inline]
    pub(crate) fn local_work(&self) {
        #[cfg(any(feature = "async-io", feature = "tokio", feature = "glib"))]
        self.reactor.wake_local();
    }

    /// Notes that a `block_on` future was woken, `remote`ly (from another thread) or not.
    fn block_on_woken(&self, remote: bool) {
        self.block_ons_woken.store(true, Ordering::Release);
        self.wake(remote);
    }

    /// Notes that the future fiber `id` waits for was woken, `remote`ly or
    /// not: a loop resumes the fiber.
    fn fiber_woken(&self, id: usize, remote: bool) {
        self.fibers_woken.push(id);
        self.block_on_woken(remote);
    }

    /// Notes that a task of this thread was aborted while being polled (from
    /// any thread).
    pub(crate) fn note_abort(&self) {
        self.aborted.store(true, Ordering::Release);
        self.block_on_woken(!self.is_current());
    }

    /// Takes the note of `note_abort`.
    pub(crate) fn take_aborted(&self) -> bool {
        self.aborted.load(Ordering::Relaxed) && self.aborted.swap(false, Ordering::AcqRel)
    }

    /// Asks the loops of this thread (the calling one) to resume fiber `id`
    /// at their next step.
    pub(crate) fn requeue_fiber(&self, id: usize) {
        self.fibers_woken.push(id);
        self.note_block_ons_woken();
    }

    /// The next fiber to resume, of those whose future was woken.
    pub(crate) fn next_fiber_woken(&self) -> Option<usize> {
        self.fibers_woken.pop()
    }

    /// Raises the "some `block_on` future was woken" flag for the loops of this thread.
    pub(crate) fn note_block_ons_woken(&self) {
        self.block_ons_woken.store(true, Ordering::Release);
    }

    /// Takes the "some `block_on` future was woken" flag.
    pub(crate) fn take_block_ons_woken(&self) -> bool {
        self.block_ons_woken.load(Ordering::Relaxed)
            && self.block_ons_woken.swap(false, Ordering::AcqRel)
    }

    /// Notes an interrupt and wakes the thread.
    pub(crate) fn interrupt(&self) {
        self.interrupted.store(true, Ordering::SeqCst);
        self.unpark();
    }

    /// Takes the "an executor was interrupted" flag.
    #[inline]
    pub(crate) fn take_interrupted(&self) -> bool {
        self.interrupted.load(Ordering::Relaxed) && self.interrupted.swap(false, Ordering::SeqCst)
    }

    /// Whether an interrupt was noted and not yet looked at.
    pub(crate) fn interrupt_pending(&self) -> bool {
        self.interrupted.load(Ordering::Acquire)
    }

    /// Raises the flag again (the interrupt is still travelling).
    pub(crate) fn keep_interrupted(&self) {
        self.interrupted.store(true, Ordering::SeqCst);
    }

    /// Whether a `block_on` future was woken and not yet looked at.
    pub(crate) fn block_ons_woken(&self) -> bool {
        self.block_ons_woken.load(Ordering::Acquire)
    }
}
