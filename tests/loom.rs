//! loom model checks of the cross-thread protocol: every interleaving of a
//! wake or spawn from another thread with the loop checking for work and
//! parking, of wakes, aborts and spawns with task completion and executor
//! drop, and of a wake from another thread with the deadlock check (R9).
//! Runs only with `--cfg nestloop_loom`:
//!
//! ```sh
//! RUSTFLAGS="--cfg nestloop_loom" cargo test --release --target-dir target/loom --test loom
//! ```
//!
//! Through `src/sync.rs`, loom sees every atomic operation and fence of the
//! protocol: a task's state word (reference counts included), the strong
//! counts of the `Arc`s that cross threads (an executor's shared part, a
//! thread's signal, a `block_on` future's waker, whose count the deadlock
//! check reads), the injection queue and parking. `Arc` counts and parking
//! order no more than `std`'s do (loom's own order more), so a fence that
//! `std` needs is one these models need too.
//!
//! An unbounded search does not end in reasonable time: the models explore
//! every interleaving with up to `PREEMPTIONS` preemptions per execution
//! (raise it with `LOOM_MAX_PREEMPTIONS`).
#![cfg(nestloop_loom)]

use std::future::{Future, poll_fn};
use std::pin::Pin;
use std::task::{Context, Poll, Waker};

use loom::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use loom::sync::{Arc, Mutex};
use loom::thread;
use nestloop::{Executor, yield_now};

/// Preemptions per execution explored by default (5: about 100 s for the
/// whole file in release on two busy cores, two thirds of it
/// `an_abort_from_another_thread_races_with_the_task`; each level costs
/// about five times the last).
const PREEMPTIONS: usize = 5;

/// `loom::model` with the default bound above.
fn model(f: impl Fn() + Sync + Send + 'static) {
    model_with(PREEMPTIONS, f);
}

/// `loom::model` with at most `preemptions` per execution (unless
/// `LOOM_MAX_PREEMPTIONS` says otherwise).
fn model_with(preemptions: usize, f: impl Fn() + Sync + Send + 'static) {
    let mut builder = loom::model::Builder::new();
    if builder.preemption_bound.is_none() {
        builder.preemption_bound = Some(preemptions);
    }
    builder.check(f);
}

/// A one-value channel built on loom's primitives, so loom sees its races.
#[derive(Default)]
struct Mailbox {
    /// The value and the receiver's waker.
    slot: Mutex<(Option<u32>, Option<Waker>)>,
}

impl Mailbox {
    fn send(&self, value: u32) {
        let waker = {
            let mut slot = self.slot.lock().unwrap();
            slot.0 = Some(value);
            slot.1.take()
        };
        if let Some(waker) = waker {
            waker.wake();
        }
    }

    fn recv(&self) -> impl Future<Output = u32> + '_ {
        poll_fn(move |cx| {
            let mut slot = self.slot.lock().unwrap();
            match slot.0.take() {
                Some(v) => Poll::Ready(v),
                None => {
                    slot.1 = Some(cx.waker().clone());
                    Poll::Pending
                }
            }
        })
    }
}

/// A thread whose end is awaited by spinning on a flag rather than by
/// `join`: a waker may still unpark a thread that has already left its
/// loop, and loom's `join` could not take such a stray `unpark` while the
/// shim parked through loom's own `park` (harmless with `std`, and with
/// the shim's parking now).
struct Flagged<T> {
    /// The closure's result.
    result: Arc<Mutex<Option<T>>>,
    /// Set as the thread's very last action.
    done: Arc<AtomicBool>,
}

fn spawn_flagged<T: 'static>(f: impl FnOnce() -> T + 'static) -> Flagged<T> {
    let result = Arc::new(Mutex::new(None));
    let done = Arc::new(AtomicBool::new(false));
    let (r, d) = (result.clone(), done.clone());
    thread::spawn(move || {
        let value = f();
        *r.lock().unwrap() = Some(value);
        d.store(true, Ordering::Release);
    });
    Flagged { result, done }
}

impl<T> Flagged<T> {
    fn wait(self) -> T {
        while !self.done.load(Ordering::Acquire) {
            thread::yield_now();
        }
        self.result.lock().unwrap().take().unwrap()
    }
}

/// Spawns a task that is pending after its first poll (which it runs here)
/// and ready on the next one; returns its handle and the waker it parked.
fn task_with_parked_waker(ex: &Executor) -> (nestloop::JoinHandle<u32>, Waker) {
    let slot = Arc::new(Mutex::new(None));
    let s = slot.clone();
    let mut first = true;
    let handle = ex.spawn(poll_fn(move |cx: &mut Context<'_>| {
        if first {
            first = false;
            *s.lock().unwrap() = Some(cx.waker().clone());
            Poll::Pending
        } else {
            Poll::Ready(1)
        }
    }));
    ex.run_until_stalled();
    let waker = slot.lock().unwrap().take().unwrap();
    (handle, waker)
}

#[test]
fn a_wake_from_another_thread_never_races_past_the_parking_loop() {
    model(|| {
        let ex = Executor::new();
        let mailbox = Arc::new(Mailbox::default());
        let m2 = mailbox.clone();
        let sender = spawn_flagged(move || m2.send(7));
        assert_eq!(ex.block_on(mailbox.recv()), 7);
        sender.wait();
    });
}

#[test]
fn a_remote_spawn_never_races_past_the_parking_loop() {
    model(|| {
        let ex = Executor::new();
        let spawner = ex.spawner();
        let mailbox = Arc::new(Mailbox::default());
        let m2 = mailbox.clone();
        let remote = spawn_flagged(move || drop(spawner.spawn(async move { m2.send(5) })));
        assert_eq!(ex.block_on(mailbox.recv()), 5);
        remote.wait();
        assert_eq!(ex.task_count(), 0);
    });
}

#[test]
fn a_remote_task_wake_races_with_its_completion() {
    model(|| {
        let ex = Executor::new();
        let (handle, waker) = task_with_parked_waker(&ex);
        // Two wakes: the first makes the task complete, the second races
        // with that completion.
        let waker2 = waker.clone();
        let waking = spawn_flagged(move || {
            waker.wake();
            waker2.wake();
        });
        assert_eq!(ex.block_on(handle).unwrap(), 1);
        waking.wait();
        assert_eq!(ex.task_count(), 0);
    });
}

#[test]
fn an_abort_from_another_thread_races_with_the_task() {
    model(|| {
        let ex = Executor::new();
        let drops = Arc::new(AtomicUsize::new(0));
        let d = drops.clone();
        /// Counts its drop.
        struct Token(Arc<AtomicUsize>);
        impl Drop for Token {
            fn drop(&mut self) {
                self.0.fetch_add(1, Ordering::SeqCst);
            }
        }
        let token = Token(d); // captured, so dropped even if never polled
        let handle = ex.spawn(async move {
            let _token = token;
            yield_now().await;
            1
        });
        let aborter = handle.abort_handle();
        let aborting = spawn_flagged(move || aborter.abort());
        match ex.block_on(handle) {
            Ok(v) => assert_eq!(v, 1),
            Err(e) => assert!(e.is_cancelled()),
        }
        aborting.wait();
        assert_eq!(drops.load(Ordering::SeqCst), 1);
        assert_eq!(ex.task_count(), 0);
    });
}

#[test]
fn a_wake_from_another_thread_races_with_executor_drop() {
    model(|| {
        let ex = Executor::new();
        let (handle, waker) = task_with_parked_waker(&ex);
        let waking = spawn_flagged(move || waker.wake());
        drop(ex);
        waking.wait();
        assert!(
            handle.is_finished(),
            "a handle of a dropped executor must resolve"
        );
    });
}

#[test]
fn a_remote_spawn_races_with_executor_drop() {
    model(|| {
        let ex = Executor::new();
        let spawner = ex.spawner();
        let remote = spawn_flagged(move || spawner.spawn(async { 1 }));
        drop(ex);
        let handle = remote.wait();
        assert!(
            handle.is_finished(),
            "a handle of a dropped executor must resolve"
        );
    });
}

#[test]
fn a_result_taken_on_another_thread_races_with_completion() {
    model(|| {
        let ex = Executor::new();
        let handle = ex.spawn(async { 5 });
        // The other thread awaits the handle with its own nestloop loop.
        let waiter = spawn_flagged(move || {
            let mut handle = handle;
            nestloop::block_on(poll_fn(|cx| Pin::new(&mut handle).poll(cx)))
        });
        ex.run_until_stalled();
        assert_eq!(waiter.wait().unwrap(), 5);
    });
}

/// The deadlock check (R9) racing a wake from another thread: the loop's
/// future hands a clone of its waker to a new thread on its first poll (the
/// spawn orders the hand-over) and is pending; that thread sets the flag
/// the future waits for, wakes it (by value, or by reference and then
/// drops the clone) and so brings the waker's count back to the loop's own
/// two. A loop that finds the count at two must also find the wake, or it
/// reports a deadlock that is not one. Each of these makes loom find such
/// an interleaving: no `fence(Acquire)` after the count in
/// `waker_clones_unwoken`, the flag read before the count there, a waker
/// woken by value that drops its count before it wakes.
fn the_deadlock_check_races_a_remote_wake(by_value: bool) {
    model(move || {
        let ex = Executor::new(); // deadlock detection on, the default
        let ready = Arc::new(AtomicBool::new(false));
        let mut waking = None;
        ex.block_on(poll_fn(|cx| {
            // Relaxed: the wake that got this poll going publishes it.
            if ready.load(Ordering::Relaxed) {
                return Poll::Ready(());
            }
            if waking.is_none() {
                let (waker, ready) = (cx.waker().clone(), ready.clone());
                waking = Some(spawn_flagged(move || {
                    ready.store(true, Ordering::Relaxed);
                    if by_value {
                        waker.wake();
                    } else {
                        waker.wake_by_ref();
                        drop(waker);
                    }
                }));
            }
            Poll::Pending
        }));
        waking.unwrap().wait();
    });
}

#[test]
fn the_deadlock_check_sees_a_wake_by_value_from_another_thread() {
    the_deadlock_check_races_a_remote_wake(true);
}

#[test]
fn the_deadlock_check_sees_a_wake_by_reference_then_drop_from_another_thread() {
    the_deadlock_check_races_a_remote_wake(false);
}

/// Two wakes from another thread, the second racing the loop as it unlists
/// the executor and moves the first in: the second push either finds it
/// unlisted (and lists it again) or its task is seen by that drain (R1:
/// the thread's list of executors with remote work, `RemoteReady::list`).
/// Under loom the injection queue is a mutex, which orders the push and
/// the drain by itself; the `SeqCst` fences that order them around the
/// lock-free queue are argued in `RemoteReady::list`.
#[test]
fn two_wakes_from_another_thread_race_the_loops_drain_of_the_first() {
    // Three preemptions reach the race (the second push's look at the list
    // between the loop's unlisting and its drain) in a tenth of the time.
    model_with(3, || {
        let ex = Executor::new();
        let (first, w1) = task_with_parked_waker(&ex);
        let (second, w2) = task_with_parked_waker(&ex);
        let waker = spawn_flagged(move || {
            w1.wake();
            w2.wake();
        });
        let sum = ex.block_on(async move { first.await.unwrap() + second.await.unwrap() });
        assert_eq!(sum, 2);
        waker.wait();
    });
}
