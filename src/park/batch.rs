//! [`BatchPause`]: how long a loop lets work from another thread build up.

use std::cell::Cell;
use std::time::{Duration, Instant};

use crate::sync::thread;

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
    /// Notes that a loop is about to park: the idle period starts now.
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

#[cfg(test)]
mod tests {
    use super::*;
    use std::future::Future;

    /// Runs `scenario` on a new thread (fresh loop state) and returns how
    /// many batch pauses its loops took. A lost wake fails it through the
    /// timeout instead of hanging.
    fn pauses_taken(scenario: impl FnOnce(&crate::Executor) + Send + 'static) -> usize {
        std::thread::spawn(|| {
            let executor = crate::Executor::new();
            scenario(&executor);
            crate::context::with(|ts| ts.batch_pause.pauses.get())
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
