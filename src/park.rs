//! Wakers and parking: how a sleeping thread learns that work arrived.
//!
//! A loop with nothing to do parks its thread (`std::thread::park`, with a
//! timeout when a timer is pending). Everything that can make work for it
//! from another thread (a task wake, a `Spawner::spawn`, a root wake) unparks
//! it after publishing the work, so the park returns at once or is never
//! entered: `std`'s park token closes the race between checking for work and
//! parking.

use std::cell::Cell;
use std::sync::Arc;
use std::sync::atomic::AtomicU64;
use std::time::{Duration, Instant};

use crate::sync::thread::{self, Thread};
use crate::sync::{AtomicBool, AtomicUsize, Ordering, thread_locals};

/// Source of thread keys; 0 means "not assigned yet".
static NEXT_THREAD_KEY: AtomicU64 = AtomicU64::new(1);

thread_locals! {
    /// This thread's key; never reused by another thread, unlike `ThreadId`
    /// comparisons through addresses. Const and without a destructor, so it
    /// works during thread-local destruction too.
    static THREAD_KEY: std::cell::Cell<u64> = const { std::cell::Cell::new(0) };
}

/// A number unique to the calling thread for the life of the process.
#[inline]
pub(crate) fn thread_key() -> u64 {
    THREAD_KEY.with(|key| {
        let k = key.get();
        if k != 0 {
            return k;
        }
        let k = NEXT_THREAD_KEY.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        key.set(k);
        k
    })
}

/// `thread_key`, or `None` where thread-locals are gone (only under loom,
/// whose thread-locals are unreachable while a thread exits).
#[inline]
pub(crate) fn try_thread_key() -> Option<u64> {
    THREAD_KEY.try_with(|_| ()).ok().map(|()| thread_key())
}

/// One per thread that runs loops: unparks it and flags woken roots.
#[derive(Debug)]
pub(crate) struct ThreadSignal {
    /// The thread to unpark.
    thread: Thread,
    /// That thread's key, to skip unparking ourselves.
    key: u64,
    /// Some `block_on` future of this thread was woken since the loops last
    /// looked; they then scan the frame stack for it.
    roots_woken: AtomicBool,
    /// An executor of this thread was interrupted; loops then look for the
    /// `try_block_on` it ends.
    interrupted: AtomicBool,
}

impl ThreadSignal {
    /// The signal of the calling thread.
    pub(crate) fn for_current_thread() -> Arc<Self> {
        Arc::new(ThreadSignal {
            thread: thread::current(),
            key: thread_key(),
            roots_woken: AtomicBool::new(false),
            interrupted: AtomicBool::new(false),
        })
    }

    /// The key of the thread this signal belongs to.
    pub(crate) fn key(&self) -> u64 {
        self.key
    }

    /// Wakes the thread if it may be parked, i.e. if we are not it.
    #[inline]
    pub(crate) fn unpark(&self) {
        if self.key != thread_key() {
            self.thread.unpark();
        }
    }

    /// Notes that a root was woken, `remote`ly (from another thread) or not.
    fn root_woken(&self, remote: bool) {
        self.roots_woken.store(true, Ordering::Release);
        if remote {
            self.thread.unpark();
        }
    }

    /// Raises the "some root was woken" flag for the loops of this thread.
    pub(crate) fn note_roots_woken(&self) {
        self.roots_woken.store(true, Ordering::Release);
    }

    /// Takes the "some root was woken" flag.
    pub(crate) fn take_roots_woken(&self) -> bool {
        self.roots_woken.load(Ordering::Relaxed) && self.roots_woken.swap(false, Ordering::AcqRel)
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

    /// Whether a root was woken and not yet looked at.
    pub(crate) fn roots_woken(&self) -> bool {
        self.roots_woken.load(Ordering::Acquire)
    }
}

pub(crate) use thread::park;

/// A wake from another thread that arrives sooner than this after the loops
/// of its thread went idle looks like one of a stream (see `BatchPause`).
/// A cross-thread round trip takes longer: the other thread must wake up.
const QUICK_REMOTE_WAKE: Duration = Duration::from_micros(2);

/// How long a loop lets such a stream build up before it polls.
const BATCH_PAUSE: Duration = Duration::from_micros(3);

/// Whether a loop waits a moment before polling work that another thread
/// made ready (its own future woken there, tasks woken or spawned there),
/// when that is all it has to do.
///
/// Another thread that streams items (a channel, a queue) wakes the loop for
/// the first item after each poll. Polling at once takes a few items and
/// waits again, so every few items cost the producer a wake (a system call
/// when the loop parked) and both threads cache misses on the shared state.
/// When the wake came quickly (`QUICK_REMOTE_WAKE`) after the loop went idle,
/// or while it was still busy, the loop yields its thread for `BATCH_PAUSE`
/// first and takes a batch. A wake that came later (a reply from a thread
/// that had to wake up itself) is polled at once, and a wake from the loop's
/// own thread never waits. Per thread: the loops nested on it park in turn.
#[derive(Debug, Default)]
pub(crate) struct BatchPause {
    /// When a loop of this thread last went to park; `None` once a loop has
    /// looked at work from another thread since (it has been busy).
    idle_since: Cell<Option<Instant>>,
    /// Pauses taken, for the tests.
    #[cfg(test)]
    pub(crate) pauses: Cell<usize>,
}

impl BatchPause {
    /// A loop is about to park.
    #[inline]
    pub(crate) fn parking(&self) {
        self.idle_since.set(Some(Instant::now()));
    }

    /// A loop with nothing else to do is about to poll work that another
    /// thread made ready: pauses if that work looks like part of a stream.
    pub(crate) fn before_remote_work(&self) {
        if Self::looks_like_stream(self.idle_since.take(), Instant::now) {
            #[cfg(test)]
            self.pauses.set(self.pauses.get() + 1);
            thread::pause(BATCH_PAUSE);
        }
    }

    /// Whether a wake from another thread, noticed at `now()`, came quickly
    /// after the loops went idle at `idle_since` (`None`: they were busy).
    fn looks_like_stream(idle_since: Option<Instant>, now: impl FnOnce() -> Instant) -> bool {
        idle_since.is_none_or(|idle| now().saturating_duration_since(idle) < QUICK_REMOTE_WAKE)
    }
}

/// `RootWaker::woken`: a wake is pending.
const WOKEN: usize = 1;
/// `RootWaker::woken`: a pending wake came from another thread.
const FROM_ANOTHER_THREAD: usize = 2;

/// The waker of a `block_on` future.
///
/// It is an `Arc` of our own (not a `waker_fn` closure) so that the deadlock
/// check (rule R9) can count its clones: with the loop's own two references
/// the strong count is 2 exactly when no clone exists anywhere.
#[derive(Debug)]
pub(crate) struct RootWaker {
    /// `WOKEN` since the last poll began, plus `FROM_ANOTHER_THREAD` if a
    /// wake came from another thread.
    woken: AtomicUsize,
    /// The thread whose loops poll this root.
    signal: Arc<ThreadSignal>,
}

impl RootWaker {
    /// A waker for a root about to be polled for the first time.
    pub(crate) fn new(signal: Arc<ThreadSignal>) -> Self {
        RootWaker {
            woken: AtomicUsize::new(0),
            signal,
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

    /// Marks the root woken again (a wake that stays for another loop).
    #[inline]
    pub(crate) fn set_woken(&self) {
        self.woken.store(WOKEN, Ordering::Release);
    }

    /// Clears a reused waker before its next first poll. Only when no clone
    /// of it exists: nothing else can set the flag meanwhile.
    #[inline]
    pub(crate) fn clear_woken(&self) {
        self.woken.store(0, Ordering::Relaxed);
    }

    /// Marks the root woken and tells its thread (what its `Waker` does,
    /// see `raw::root_waker`).
    #[inline]
    pub(crate) fn wake(&self) {
        let remote = self.signal.key != thread_key();
        let flags = if remote {
            WOKEN | FROM_ANOTHER_THREAD
        } else {
            WOKEN
        };
        if self.woken.swap(flags, Ordering::AcqRel) == 0 {
            self.signal.root_woken(remote);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_root_wake_from_another_thread_is_told_apart_from_one_on_its_own_thread() {
        let root = Arc::new(RootWaker::new(ThreadSignal::for_current_thread()));
        let waker = crate::raw::root_waker(root.clone());

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
        // Both wakes above raised the thread's "a root was woken" flag.
        assert!(root.signal.take_roots_woken());
    }

    /// Runs `scenario` on a new thread (fresh loop state) and returns how
    /// many batch pauses its loops took. A lost wake fails it through the
    /// timeout instead of hanging.
    fn pauses_taken(scenario: impl FnOnce(&crate::Executor) + Send + 'static) -> usize {
        std::thread::spawn(|| {
            let executor = crate::Executor::new();
            scenario(&executor);
            crate::frames::with(|ts| ts.batch_pause.pauses.get())
        })
        .join()
        .unwrap()
    }

    /// `block_on` with a deadline, so that a lost wake fails the test.
    fn block_on_or_fail<T>(executor: &crate::Executor, future: impl Future<Output = T>) -> T {
        executor
            .block_on(crate::time::timeout(Duration::from_secs(30), future))
            .expect("the future was never woken")
    }

    /// A future that calls `remote` on another thread during its first poll
    /// and waits for that thread to finish, then is pending once; `remote`
    /// gets the future's waker.
    fn poll_with_remote_call(
        remote: impl FnOnce(std::task::Waker) + Send + 'static,
    ) -> impl Future<Output = ()> {
        let mut remote = Some(remote);
        std::future::poll_fn(move |cx| match remote.take() {
            Some(remote) => {
                let waker = cx.waker().clone();
                std::thread::spawn(move || remote(waker)).join().unwrap();
                std::task::Poll::Pending
            }
            None => std::task::Poll::Ready(()),
        })
    }

    #[test]
    fn a_wake_from_another_thread_while_the_loop_is_busy_pauses_once() {
        // The loop's own future: the other thread wakes it during its poll.
        let pauses = pauses_taken(|executor| {
            block_on_or_fail(executor, poll_with_remote_call(|waker| waker.wake()));
        });
        assert_eq!(pauses, 1);

        // A task spawned from the other thread while the loop was busy.
        let pauses = pauses_taken(|executor| {
            let spawner = executor.spawner();
            let (tx, rx) = futures::channel::oneshot::channel();
            block_on_or_fail(executor, async move {
                poll_with_remote_call(move |waker| {
                    drop(spawner.spawn(async move { tx.send(7).unwrap() }));
                    waker.wake();
                })
                .await;
                assert_eq!(rx.await, Ok(7));
            });
        });
        assert_eq!(pauses, 1);
    }

    #[test]
    fn a_wake_from_another_thread_long_after_the_loop_went_idle_is_polled_at_once() {
        let late = Duration::from_millis(100); // far above QUICK_REMOTE_WAKE
        let pauses = pauses_taken(move |executor| {
            let (tx, rx) = futures::channel::oneshot::channel();
            let sender = std::thread::spawn(move || {
                std::thread::sleep(late);
                tx.send(1).unwrap();
            });
            assert_eq!(block_on_or_fail(executor, rx), Ok(1));
            sender.join().unwrap();

            // A task spawned from there late: the same.
            let spawner = executor.spawner();
            let (tx, rx) = futures::channel::oneshot::channel();
            let sender = std::thread::spawn(move || {
                std::thread::sleep(late);
                drop(spawner.spawn(async move { tx.send(2).unwrap() }));
            });
            assert_eq!(block_on_or_fail(executor, rx), Ok(2));
            sender.join().unwrap();
        });
        assert_eq!(pauses, 0);
    }

    #[test]
    fn wakes_from_the_loops_own_thread_and_run_until_stalled_never_pause() {
        let pauses = pauses_taken(|executor| {
            let task = executor.spawn(async {
                for _ in 0..100 {
                    crate::yield_now().await;
                }
            });
            block_on_or_fail(executor, async {
                for _ in 0..100 {
                    crate::yield_now().await;
                }
                task.await.unwrap();
            });

            // run_until_stalled runs what is ready and returns: nothing to
            // batch for.
            let spawner = executor.spawner();
            let (tx, rx) = std::sync::mpsc::channel();
            std::thread::spawn(move || drop(spawner.spawn(async move { tx.send(3).unwrap() })))
                .join()
                .unwrap();
            assert_eq!(executor.run_until_stalled(), 1);
            assert_eq!(rx.try_recv(), Ok(3));
        });
        assert_eq!(pauses, 0);
    }

    #[test]
    fn only_a_wake_soon_after_the_loops_went_idle_looks_like_a_stream() {
        let idle = Instant::now();
        let at = |micros| move || idle + Duration::from_micros(micros);
        assert!(BatchPause::looks_like_stream(None, at(1_000_000)));
        assert!(BatchPause::looks_like_stream(Some(idle), at(0)));
        assert!(BatchPause::looks_like_stream(Some(idle), at(1)));
        assert!(!BatchPause::looks_like_stream(Some(idle), at(2)));
        assert!(!BatchPause::looks_like_stream(Some(idle), at(50)));
    }
}
