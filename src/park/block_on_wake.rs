//! [`BlockOnWake`]: the waker state of a `block_on` future (its vtable, which
//! needs unsafe code, is in `task/waker.rs`).

use super::ThreadSignal;
use crate::sync::{Arc, AtomicUsize, Ordering};

/// `BlockOnWake::woken`: a wake is pending.
const WOKEN: usize = 1;
/// `BlockOnWake::woken`: a pending wake came from another thread.
const FROM_ANOTHER_THREAD: usize = 2;

/// What the waker of a `block_on` future sets, and the thread it unparks.
///
/// It is an `Arc` of our own (not a `waker_fn` closure) so that the deadlock
/// check (rule R9) can count its clones: with the loop's own two references
/// the strong count is 2 exactly when no clone exists anywhere.
#[derive(Debug)]
pub(crate) struct BlockOnWake {
    /// `WOKEN` since the last poll began, plus `FROM_ANOTHER_THREAD` if a
    /// wake came from another thread.
    woken: AtomicUsize,
    /// The thread whose loops poll this `block_on` future.
    signal: Arc<ThreadSignal>,
    /// The fiber suspended until this future is woken (R12), or
    /// `NO_FIBER`: a wake then asks the thread's loops to resume it.
    fiber: AtomicUsize,
}

/// `BlockOnWake::fiber` when no fiber waits for the wake.
const NO_FIBER: usize = usize::MAX;

impl BlockOnWake {
    /// A waker for a `block_on` future about to be polled for the first time.
    pub(crate) fn new(signal: Arc<ThreadSignal>) -> Self {
        BlockOnWake {
            woken: AtomicUsize::new(0),
            signal,
            fiber: AtomicUsize::new(NO_FIBER),
        }
    }

    /// Takes the woken flag, before a poll (a wake during the poll sets it
    /// again).
    #[inline]
    pub(crate) fn take_woken(&self) -> bool {
        self.woken.load(Ordering::Relaxed) != 0 && self.woken.swap(0, Ordering::AcqRel) != 0
    }

    /// Whether a wake is pending.
    #[inline]
    pub(crate) fn is_woken(&self) -> bool {
        self.woken.load(Ordering::Acquire) != 0
    }

    /// Whether a wake is pending and the last one came from this thread.
    #[inline]
    pub(crate) fn is_woken_here(&self) -> bool {
        self.woken.load(Ordering::Acquire) == WOKEN
    }

    /// Whether a pending wake came from another thread.
    #[inline]
    pub(crate) fn is_woken_remotely(&self) -> bool {
        self.woken.load(Ordering::Relaxed) & FROM_ANOTHER_THREAD != 0
    }

    /// Marks the `block_on` future woken again (a wake that stays for another loop).
    #[inline]
    pub(crate) fn set_woken(&self) {
        self.woken.store(WOKEN, Ordering::Release);
    }

    /// Clears a reused waker before its next first poll. Only when no clone
    /// of it exists: nothing else can set the flag meanwhile.
    #[inline]
    pub(crate) fn clear_woken(&self) {
        if self.woken.load(Ordering::Relaxed) != 0 {
            self.woken.store(0, Ordering::Relaxed);
        }
    }

    /// Marks the `block_on` future woken and tells its thread (what its `Waker` does,
    /// see `task::block_on_waker`).
    #[inline]
    pub(crate) fn wake(&self) {
        let remote = !self.signal.is_current();
        let flags = if remote {
            WOKEN | FROM_ANOTHER_THREAD
        } else {
            WOKEN
        };
        // SeqCst, with `wait_in_fiber`'s store and load: either this wake
        // sees the fiber, or the fiber sees the wake before it suspends.
        if self.woken.swap(flags, Ordering::SeqCst) == 0 {
            match self.fiber.load(Ordering::SeqCst) {
                NO_FIBER => self.signal.block_on_woken(remote),
                fiber => self.signal.fiber_woken(fiber, remote),
            }
        }
    }

    /// Sets `fiber` as the fiber that waits for this future's wakes
    /// (`None`: no more), and returns whether a wake is pending already
    /// (then the fiber does not suspend: no resume is on its way).
    pub(crate) fn wait_in_fiber(&self, fiber: Option<usize>) -> bool {
        self.fiber
            .store(fiber.unwrap_or(NO_FIBER), Ordering::SeqCst);
        self.woken.load(Ordering::SeqCst) != 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_root_wake_from_another_thread_is_told_apart_from_one_on_its_own_thread() {
        let root = Arc::new(BlockOnWake::new(ThreadSignal::for_current_thread()));
        let waker = crate::task::block_on_waker(root.clone());

        // On its own thread (a task, a timer, the future itself): the loop
        // polls it without pausing.
        waker.wake_by_ref();
        assert!(root.is_woken());
        assert!(!root.is_woken_remotely());
        assert!(root.take_woken());
        assert!(!root.is_woken() && !root.is_woken_remotely());

        // From another thread, by reference and by value: the loop may
        // pause before polling (`BatchPause`).
        for by_value in [false, true] {
            let remote = waker.clone();
            std::thread::spawn(move || {
                if by_value {
                    remote.wake();
                } else {
                    remote.wake_by_ref();
                }
            })
            .join()
            .unwrap();
            assert!(root.is_woken());
            assert!(root.is_woken_remotely());
            assert!(root.take_woken());
            assert!(!root.is_woken() && !root.is_woken_remotely());
        }
        // Both wakes above raised the thread's "a `block_on` future was woken" flag.
        assert!(root.signal.take_block_ons_woken());
    }
}
