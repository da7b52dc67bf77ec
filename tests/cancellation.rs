//! R5: abort, shutdown, executor drop, and wakes of dead things.

mod common;

use std::cell::{Cell, RefCell};
use std::future::{pending, poll_fn};
use std::rc::Rc;
use std::sync::{Arc, Mutex};
use std::task::{Poll, Waker};
use std::time::Duration;

use common::{DropCounter, PanicOnDrop, hold_forever, watchdog};
use nestloop::{Executor, block_on, spawn, yield_now};

#[test]
fn abort_drops_a_pending_task_at_once_and_resolves_to_cancelled() {
    watchdog(|| {
        let ex = Executor::new();
        let drops = DropCounter::new();
        let token = drops.token();
        let handle = ex.spawn(hold_forever(token));
        ex.run_until_stalled();
        assert_eq!(ex.task_count(), 1);
        handle.abort();
        assert_eq!(
            drops.dropped(),
            1,
            "abort on the owner thread drops the future at once"
        );
        assert_eq!(ex.task_count(), 0);
        assert!(handle.is_finished());
        assert!(ex.block_on(handle).unwrap_err().is_cancelled());
    });
}

#[test]
fn abort_before_the_first_poll_never_polls() {
    watchdog(|| {
        let ex = Executor::new();
        let polled = Rc::new(Cell::new(false));
        let p = polled.clone();
        let handle = ex.spawn(async move { p.set(true) });
        handle.abort();
        ex.run_until_stalled();
        assert!(!polled.get());
        assert!(ex.block_on(handle).unwrap_err().is_cancelled());
    });
}

#[test]
fn abort_of_a_finished_task_keeps_its_result() {
    watchdog(|| {
        let ex = Executor::new();
        let handle = ex.spawn(async { 9 });
        ex.run_until_stalled();
        handle.abort();
        assert_eq!(ex.block_on(handle).unwrap(), 9);
    });
}

#[test]
fn abort_of_a_task_on_the_stack_drops_it_when_its_poll_returns() {
    watchdog(|| {
        let ex = Executor::new();
        let drops = DropCounter::new();
        let token = drops.token();
        let slot: Rc<RefCell<Option<nestloop::JoinHandle<()>>>> = Rc::default();
        let s = slot.clone();
        let d = drops.clone();
        let polls = Rc::new(Cell::new(0));
        let p = polls.clone();
        let handle = ex.spawn(poll_fn(move |_| {
            let _keep = &token;
            p.set(p.get() + 1);
            let s = s.clone();
            let d = d.clone();
            block_on(async move {
                // Abort ourselves while we are on the stack.
                s.borrow().as_ref().unwrap().abort();
                yield_now().await;
                assert_eq!(d.dropped(), 0, "future dropped while on the stack");
            });
            Poll::<()>::Pending
        }));
        let observer = ex.spawn(async {});
        *slot.borrow_mut() = Some(handle);
        ex.block_on(observer).unwrap();
        ex.run_until_stalled();
        assert_eq!(drops.dropped(), 1);
        assert_eq!(polls.get(), 1, "an aborted task is not polled again");
        let handle = slot.borrow_mut().take().unwrap();
        assert!(ex.block_on(handle).unwrap_err().is_cancelled());
        assert_eq!(ex.task_count(), 0);
    });
}

#[test]
fn abort_from_another_thread_is_honoured_by_the_loop() {
    watchdog(|| {
        let ex = Executor::new();
        let drops = DropCounter::new();
        let token = drops.token();
        let handle = ex.spawn(hold_forever(token));
        ex.run_until_stalled();
        let handle = std::thread::spawn(move || {
            handle.abort();
            handle
        })
        .join()
        .unwrap();
        let err = ex.block_on(handle).unwrap_err();
        assert!(err.is_cancelled());
        assert_eq!(drops.dropped(), 1);
    });
}

#[test]
fn a_panic_while_an_aborted_future_is_dropped_still_resolves_to_cancelled() {
    watchdog(|| {
        let ex = Executor::new();
        let handle = ex.spawn(async {
            let _guard = PanicOnDrop::new("drop boom");
            pending::<()>().await;
        });
        ex.run_until_stalled();
        handle.abort();
        assert!(ex.block_on(handle).unwrap_err().is_cancelled());
        assert_eq!(ex.block_on(async { 1 }), 1);
    });
}

#[test]
fn dropping_the_last_executor_handle_drops_every_task() {
    watchdog(|| {
        let ex = Executor::new();
        let drops = DropCounter::new();
        let mut handles = Vec::new();
        for _ in 0..10 {
            let token = drops.token();
            handles.push(ex.spawn(hold_forever(token)));
        }
        ex.run_until_stalled();
        drop(ex);
        assert_eq!(drops.dropped(), 10);
        for h in handles {
            assert!(h.is_finished());
            assert!(block_on(h).unwrap_err().is_cancelled());
        }
    });
}

#[test]
fn shutdown_drops_tasks_that_hold_their_executor() {
    watchdog(|| {
        let ex = Executor::new();
        let drops = DropCounter::new();
        let token = drops.token();
        let ex2 = ex.clone();
        let handle = ex.spawn(async move {
            let _cycle = ex2; // keeps the executor alive
            let _token = token;
            pending::<()>().await;
        });
        ex.run_until_stalled();
        ex.shutdown();
        assert_eq!(drops.dropped(), 1);
        assert_eq!(ex.task_count(), 0);
        assert!(ex.block_on(handle).unwrap_err().is_cancelled());
        // Still usable.
        assert_eq!(ex.block_on(ex.spawn(async { 4 })).unwrap(), 4);
    });
}

#[test]
fn shutdown_also_shuts_down_tasks_spawned_by_destructors() {
    watchdog(|| {
        struct SpawnOnDrop(
            Executor,
            Rc<RefCell<Vec<nestloop::JoinHandle<()>>>>,
            DropCounter,
        );
        impl Drop for SpawnOnDrop {
            fn drop(&mut self) {
                let token = self.2.token();
                let h = self.0.spawn(hold_forever(token));
                self.1.borrow_mut().push(h);
            }
        }
        let ex = Executor::new();
        let handles = Rc::new(RefCell::new(Vec::new()));
        let drops = DropCounter::new();
        let guard = SpawnOnDrop(ex.clone(), handles.clone(), drops.clone());
        let first = ex.spawn(async move {
            let _guard = guard;
            pending::<()>().await;
        });
        ex.run_until_stalled();
        ex.shutdown();
        assert_eq!(ex.task_count(), 0);
        assert_eq!(drops.dropped(), 1);
        assert!(ex.block_on(first).unwrap_err().is_cancelled());
        for h in handles.borrow_mut().drain(..) {
            assert!(ex.block_on(h).unwrap_err().is_cancelled());
        }
    });
}

/// A destructor run by the executor's drop aborts a sibling task that is
/// not shut down yet: the abort must not reach the executor being dropped
/// (its drop is under way), and the sibling still ends cancelled.
#[test]
fn a_destructor_aborting_a_sibling_while_the_executor_drops_is_harmless() {
    watchdog(|| {
        struct AbortOnDrop(nestloop::AbortHandle);
        impl Drop for AbortOnDrop {
            fn drop(&mut self) {
                self.0.abort();
            }
        }
        let ex = Executor::new();
        let drops = DropCounter::new();
        let sibling = ex.spawn(hold_forever(drops.token()));
        // Spawned last, shut down first: its destructor aborts the sibling.
        let aborter = ex.spawn(hold_forever(AbortOnDrop(sibling.abort_handle())));
        ex.run_until_stalled();
        drop(ex);
        assert_eq!(drops.dropped(), 1);
        assert!(block_on(sibling).unwrap_err().is_cancelled());
        assert!(block_on(aborter).unwrap_err().is_cancelled());
    });
}

#[test]
fn shutdown_contains_panics_of_destructors() {
    watchdog(|| {
        let ex = Executor::new();
        let a = ex.spawn(async {
            let _g = PanicOnDrop::new("shutdown drop boom");
            pending::<()>().await;
        });
        let b = ex.spawn(pending::<()>());
        ex.run_until_stalled();
        ex.shutdown();
        assert!(ex.block_on(a).unwrap_err().is_cancelled());
        assert!(ex.block_on(b).unwrap_err().is_cancelled());
    });
}

#[test]
fn waking_finished_aborted_and_orphaned_tasks_is_harmless() {
    watchdog(|| {
        let ex = Executor::new();
        let wakers: Rc<RefCell<Vec<Waker>>> = Rc::default();
        let w = wakers.clone();
        let finished = ex.spawn(poll_fn(move |cx| {
            w.borrow_mut().push(cx.waker().clone());
            Poll::Ready(())
        }));
        let w = wakers.clone();
        let aborted = ex.spawn(poll_fn(move |cx| {
            w.borrow_mut().push(cx.waker().clone());
            Poll::<()>::Pending
        }));
        ex.run_until_stalled();
        aborted.abort();
        let w = wakers.clone();
        let orphaned = ex.spawn(poll_fn(move |cx| {
            w.borrow_mut().push(cx.waker().clone());
            Poll::<()>::Pending
        }));
        ex.run_until_stalled();
        drop(orphaned);
        ex.block_on(finished).unwrap();
        for w in wakers.borrow().iter() {
            w.wake_by_ref();
        }
        assert_eq!(
            ex.run_until_stalled(),
            1,
            "only the live orphaned task runs"
        );
        // Executor gone: wakes from this thread and others are no-ops.
        drop(ex);
        let sendable: Vec<Waker> = wakers.borrow_mut().drain(..).collect();
        for w in &sendable {
            w.wake_by_ref();
        }
        std::thread::spawn(move || {
            for w in sendable {
                w.wake();
            }
        })
        .join()
        .unwrap();
    });
}

#[test]
fn dropping_a_handle_detaches_the_task() {
    watchdog(|| {
        let ex = Executor::new();
        let done = Rc::new(Cell::new(false));
        let d = done.clone();
        drop(ex.spawn(async move {
            yield_now().await;
            d.set(true);
        }));
        ex.block_on(async {
            for _ in 0..3 {
                yield_now().await;
            }
        });
        assert!(done.get());
    });
}

#[test]
fn spawner_of_a_dropped_executor_gives_cancelled_handles() {
    watchdog(|| {
        let ex = Executor::new();
        let spawner = ex.spawner();
        drop(ex);
        let drops = DropCounter::new();
        let token = drops.token();
        let handle = std::thread::spawn(move || {
            spawner.spawn(async move {
                let _token = token;
            })
        })
        .join()
        .unwrap();
        assert_eq!(drops.dropped(), 1);
        assert!(block_on(handle).unwrap_err().is_cancelled());
    });
}

#[test]
fn executor_dropped_before_adopting_a_remote_task_cancels_it() {
    watchdog(|| {
        let ex = Executor::new();
        let spawner = ex.spawner();
        let drops = DropCounter::new();
        let token = drops.token();
        let handle = std::thread::spawn(move || spawner.spawn(async move { drop(token) }))
            .join()
            .unwrap();
        assert_eq!(ex.task_count(), 1, "a task not yet adopted is live");
        drop(ex); // never ran a loop after the spawn
        assert_eq!(drops.dropped(), 1);
        assert!(block_on(handle).unwrap_err().is_cancelled());
    });
}

#[test]
fn spawns_racing_with_executor_drop_all_resolve() {
    watchdog(|| {
        let rounds = if cfg!(miri) { 3 } else { 50 };
        for _ in 0..rounds {
            let ex = Executor::new();
            let spawner = ex.spawner();
            let handles = Arc::new(Mutex::new(Vec::new()));
            let h2 = handles.clone();
            let t = std::thread::spawn(move || {
                for i in 0..if cfg!(miri) { 20 } else { 200 } {
                    let h = spawner.spawn(async move { i });
                    h2.lock().unwrap().push(h);
                }
            });
            ex.block_on(nestloop::time::sleep(Duration::from_micros(50)));
            drop(ex);
            t.join().unwrap();
            let handles = std::mem::take(&mut *handles.lock().unwrap());
            for (i, h) in handles.into_iter().enumerate() {
                match block_on(h) {
                    Ok(v) => assert_eq!(v, i),
                    Err(e) => assert!(e.is_cancelled()),
                }
            }
        }
    });
}

#[test]
fn default_executor_is_shut_down_at_thread_exit() {
    let drops = DropCounter::new();
    let token = drops.token();
    std::thread::spawn(move || {
        drop(spawn(hold_forever(token)));
        block_on(yield_now());
    })
    .join()
    .unwrap();
    assert_eq!(drops.dropped(), 1);
}

#[test]
fn executors_kept_alive_by_their_tasks_are_shut_down_at_thread_exit() {
    let drops = DropCounter::new();
    let token = drops.token();
    std::thread::spawn(move || {
        let ex = Executor::new();
        let ex2 = ex.clone();
        ex.spawn(async move {
            let _cycle = ex2;
            let _token = token;
            pending::<()>().await;
        });
        ex.run_until_stalled();
    })
    .join()
    .unwrap();
    assert_eq!(drops.dropped(), 1);
}

/// A pinned future notes where it was polled; its destructor reports
/// whether it is dropped at that same address (`Pin`'s drop guarantee).
struct PinnedProbe {
    /// Where the first poll saw it, once polled.
    polled_at: Cell<usize>,
    /// Receives `true` when dropped where it was polled.
    in_place: Rc<Cell<Option<bool>>>,
    _pinned: std::marker::PhantomPinned,
}

impl PinnedProbe {
    fn new(in_place: Rc<Cell<Option<bool>>>) -> Self {
        PinnedProbe {
            polled_at: Cell::new(0),
            in_place,
            _pinned: std::marker::PhantomPinned,
        }
    }
}

impl std::future::Future for PinnedProbe {
    type Output = ();
    fn poll(self: std::pin::Pin<&mut Self>, _: &mut std::task::Context<'_>) -> Poll<()> {
        self.polled_at.set(&*self as *const Self as usize);
        Poll::Pending
    }
}

impl Drop for PinnedProbe {
    fn drop(&mut self) {
        let here = self as *const Self as usize;
        self.in_place.set(Some(self.polled_at.get() == here));
    }
}

#[test]
fn a_cancelled_future_is_dropped_where_it_was_pinned() {
    watchdog(|| {
        type End = fn(&Executor, nestloop::JoinHandle<()>);
        let ends: [(&str, End); 3] = [
            ("abort", |_, handle| handle.abort()),
            ("shutdown", |ex, _| ex.shutdown()),
            ("executor drop", |_, _| {}),
        ];
        for (how, end) in ends {
            let ex = Executor::new();
            let in_place = Rc::new(Cell::new(None));
            let handle = ex.spawn(PinnedProbe::new(in_place.clone()));
            ex.run_until_stalled();
            end(&ex, handle);
            drop(ex);
            assert_eq!(in_place.get(), Some(true), "{how}");
        }
    });
}

/// A value whose destructor hands `bytes` to a writer task through a
/// channel and waits (a nested `block_on`) for the writer's
/// acknowledgement: how a buffered writer flushes on drop. Records what
/// the wait came to: `Ok(bytes written)` or `Err(())` when the writer was
/// gone.
struct FlushOnDrop {
    bytes: usize,
    to_writer:
        futures::channel::mpsc::UnboundedSender<(usize, futures::channel::oneshot::Sender<usize>)>,
    outcome: Arc<Mutex<Option<Result<usize, ()>>>>,
}

impl Drop for FlushOnDrop {
    fn drop(&mut self) {
        let (ack, acked) = futures::channel::oneshot::channel();
        let sent = self.to_writer.unbounded_send((self.bytes, ack));
        let outcome = match sent {
            Ok(()) => block_on(acked).map_err(|_| ()),
            Err(_) => Err(()),
        };
        *self.outcome.lock().unwrap() = Some(outcome);
    }
}

/// A writer task and a task that holds a `FlushOnDrop`, on `ex`, the writer
/// spawned first (`writer_first`) or last; both have started. Returns what
/// the flush came to, once the caller's `stop` (shutdown, drop, thread
/// exit) has run.
fn writer_and_flusher(ex: &Executor, writer_first: bool) -> Arc<Mutex<Option<Result<usize, ()>>>> {
    use futures::StreamExt;
    let (to_writer, mut requests) = futures::channel::mpsc::unbounded();
    let outcome = Arc::new(Mutex::new(None));
    let writer = async move {
        while let Some((bytes, ack)) = requests.next().await {
            yield_now().await; // writes
            let _ = futures::channel::oneshot::Sender::send(ack, bytes);
        }
    };
    let flusher = FlushOnDrop {
        bytes: 512,
        to_writer,
        outcome: outcome.clone(),
    };
    let holder = async move {
        let _flusher = flusher;
        pending::<()>().await;
    };
    if writer_first {
        drop(ex.spawn(writer));
        drop(ex.spawn(holder));
    } else {
        drop(ex.spawn(holder));
        drop(ex.spawn(writer));
    }
    ex.block_on(yield_now());
    outcome
}

#[test]
fn shutdown_drops_tasks_newest_first() {
    watchdog(|| {
        let ex = Executor::new();
        let order = Rc::new(RefCell::new(Vec::new()));
        for n in 1..=3 {
            let order = order.clone();
            let on_drop = common::OnDrop::new(move || order.borrow_mut().push(n));
            drop(ex.spawn(async move {
                let _on_drop = on_drop;
                pending::<()>().await;
            }));
        }
        ex.run_until_stalled();
        ex.shutdown();
        assert_eq!(*order.borrow(), [3, 2, 1]);
    });
}

#[test]
fn a_destructor_run_by_shutdown_waits_for_an_older_writer_task() {
    watchdog(|| {
        let ex = Executor::new();
        let outcome = writer_and_flusher(&ex, true);
        ex.shutdown(); // outside any loop: the flush's block_on runs the writer
        assert_eq!(*outcome.lock().unwrap(), Some(Ok(512)));
        assert_eq!(ex.task_count(), 0);
    });
}

#[test]
fn a_destructor_run_by_shutdown_inside_a_loop_waits_for_an_older_writer_task() {
    watchdog(|| {
        let ex = Executor::new();
        let outcome = writer_and_flusher(&ex, true);
        ex.block_on(async { ex.shutdown() });
        assert_eq!(*outcome.lock().unwrap(), Some(Ok(512)));
    });
}

#[test]
fn a_destructor_run_by_dropping_the_last_handle_waits_for_an_older_writer_task() {
    watchdog(|| {
        let ex = Executor::new();
        let outcome = writer_and_flusher(&ex, true);
        drop(ex);
        assert_eq!(*outcome.lock().unwrap(), Some(Ok(512)));
    });
}

#[test]
fn a_destructor_run_by_shutdown_finds_a_newer_writer_gone() {
    watchdog(|| {
        let ex = Executor::new();
        let outcome = writer_and_flusher(&ex, false);
        ex.shutdown(); // the writer went first: its channel is closed
        assert_eq!(*outcome.lock().unwrap(), Some(Err(())));
    });
}

#[test]
fn a_destructor_run_by_shutdown_waiting_on_a_task_that_never_runs_again_does_not_hang() {
    watchdog(|| {
        let ex = Executor::new();
        let (ack, acked) = futures::channel::oneshot::channel::<usize>();
        // Holds the sender and waits for nothing: it can never run again.
        drop(ex.spawn(async move {
            let _ack = ack;
            pending::<()>().await;
        }));
        let waited = Arc::new(Mutex::new(None));
        let w = waited.clone();
        let on_drop = common::OnDrop::new(move || *w.lock().unwrap() = Some(block_on(acked)));
        drop(ex.spawn(async move {
            let _on_drop = on_drop;
            pending::<()>().await;
        }));
        ex.run_until_stalled();
        ex.shutdown();
        let waited = waited.lock().unwrap().take();
        assert!(matches!(waited, Some(Err(_))), "{waited:?}");
    });
}

#[test]
fn at_thread_exit_a_destructor_waits_for_an_older_writer_task_through_a_channel() {
    let (tx, rx) = std::sync::mpsc::channel();
    let thread = std::thread::spawn(move || {
        // The thread's default executor, which lives until the thread ends.
        let default = block_on(async { Executor::current().unwrap() });
        let outcome = writer_and_flusher(&default, true);
        tx.send(outcome).unwrap();
        // The thread ends here, its tasks pending.
    });
    let outcome = rx.recv().unwrap();
    let joined = common::join_within(thread, common::DEADLINE);
    assert!(joined.is_ok(), "the thread's exit hung");
    assert_eq!(*outcome.lock().unwrap(), Some(Ok(512)));
}

#[test]
fn at_thread_exit_a_wait_on_a_task_that_never_runs_again_does_not_hang() {
    let waited = Arc::new(Mutex::new(None));
    let w = waited.clone();
    let thread = std::thread::spawn(move || {
        let (ack, acked) = futures::channel::oneshot::channel::<usize>();
        drop(spawn(async move {
            let _ack = ack;
            pending::<()>().await;
        }));
        let on_drop = common::OnDrop::new(move || *w.lock().unwrap() = Some(block_on(acked)));
        drop(spawn(async move {
            let _on_drop = on_drop;
            pending::<()>().await;
        }));
        block_on(yield_now());
    });
    assert!(
        common::join_within(thread, common::DEADLINE).is_ok(),
        "the thread's exit hung"
    );
    let waited = waited.lock().unwrap().take();
    assert!(matches!(waited, Some(Err(_))), "{waited:?}");
}
