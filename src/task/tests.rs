//! The task allocation's reference counting, path by path; under Miri
//! (scripts/miri.sh) these also prove every path frees the allocation
//! exactly once and touches nothing after.

use std::cell::{Cell, RefCell};
use std::future::poll_fn;
use std::rc::Rc;
use std::task::{Poll, Waker};

use crate::Executor;

/// Counts drops of its output or future.
struct Counted(Rc<Cell<u32>>);
impl Drop for Counted {
    fn drop(&mut self) {
        self.0.set(self.0.get() + 1);
    }
}

/// A future that never finishes and counts one in `drops` when dropped.
fn pending_counted(drops: &Rc<Cell<u32>>) -> impl Future<Output = ()> + use<> {
    let token = Counted(drops.clone());
    async move {
        let _token = token;
        std::future::pending::<()>().await
    }
}

#[test]
fn every_waker_operation_keeps_the_count_right() {
    let ex = Executor::new();
    let drops = Rc::new(Cell::new(0));
    let kept: Rc<RefCell<Vec<Waker>>> = Rc::default();
    let (k, d) = (kept.clone(), drops.clone());
    let handle = ex.spawn(async move {
        let token = Counted(d.clone());
        let mut polls = 0;
        poll_fn(|cx| {
            polls += 1;
            match polls {
                1 => {
                    // Clones kept past the task's end, a clone woken by
                    // value while running, a wake by reference.
                    k.borrow_mut().push(cx.waker().clone());
                    k.borrow_mut().push(cx.waker().clone());
                    let by_value = cx.waker().clone();
                    by_value.wake();
                    cx.waker().wake_by_ref();
                    Poll::Pending
                }
                2 => {
                    // A clone dropped unused.
                    drop(cx.waker().clone());
                    Poll::Ready(())
                }
                _ => unreachable!(),
            }
        })
        .await;
        drop(token);
        Counted(d)
    });
    let output = ex.block_on(handle).unwrap();
    assert_eq!(drops.get(), 1);
    drop(output);
    assert_eq!(drops.get(), 2);
    // Wakes of a finished task: by reference, then the last references
    // woken by value and dropped.
    let wakers = std::mem::take(&mut *kept.borrow_mut());
    wakers[0].wake_by_ref();
    let mut wakers = wakers.into_iter();
    wakers.next().unwrap().wake();
    drop(wakers);
    assert_eq!(ex.task_count(), 0);
}

#[test]
fn a_handle_dropped_before_or_after_completion_frees_the_task() {
    let ex = Executor::new();
    let drops = Rc::new(Cell::new(0));
    // Dropped before the task runs: the output is dropped at completion.
    let d = drops.clone();
    drop(ex.spawn(async move { Counted(d) }));
    // Dropped after completion, the output unclaimed: dropped with it.
    let d = drops.clone();
    let late = ex.spawn(async move { Counted(d) });
    // Aborted while pending, with a waker still held elsewhere.
    let parked: Rc<RefCell<Option<Waker>>> = Rc::default();
    let (p, d) = (parked.clone(), drops.clone());
    let aborted = ex.spawn(async move {
        let _token = Counted(d);
        poll_fn(|cx| {
            *p.borrow_mut() = Some(cx.waker().clone());
            Poll::<()>::Pending
        })
        .await
    });
    let aborter = aborted.abort_handle();
    ex.run_until_stalled();
    assert_eq!(drops.get(), 1, "the detached task's output");
    drop(late);
    assert_eq!(drops.get(), 2, "the unclaimed output");
    aborter.abort();
    assert_eq!(drops.get(), 3, "the aborted future");
    assert!(ex.block_on(aborted).unwrap_err().is_cancelled());
    parked.borrow_mut().take().unwrap().wake();
    drop(aborter);
    assert_eq!(ex.task_count(), 0);
}

#[test]
#[cfg(not(nestloop_loom))] // loom's `Arc` has no `Weak`
fn tasks_keep_their_executors_shared_part_alive_and_free_it_once() {
    let ex = Executor::new();
    let shared = std::sync::Arc::downgrade(&ex.inner.shared);
    let spawner = ex.spawner();
    // More tasks than one batch of holds: the reserve is refilled, and
    // the finished ones give their holds back to it.
    let parked: std::sync::Arc<std::sync::Mutex<Vec<Waker>>> = Default::default();
    for i in 0..crate::sched::HOLD_BATCH + 10 {
        let p = parked.clone();
        drop(ex.spawn(async move {
            if i % 2 == 0 {
                poll_fn(|cx| {
                    p.lock().unwrap().push(cx.waker().clone());
                    Poll::<()>::Pending
                })
                .await
            }
        }));
    }
    ex.run_until_stalled();
    assert_eq!(ex.task_count(), crate::sched::HOLD_BATCH / 2 + 5);
    // The executor goes; its pending tasks live on through their wakers.
    drop(ex);
    assert!(shared.upgrade().is_some());
    let wakers = std::mem::take(&mut *parked.lock().unwrap());
    std::thread::spawn(move || {
        let mut wakers = wakers.into_iter();
        // Woken after the executor is gone, then dropped, on another
        // thread: each gives its hold back there.
        wakers.next().unwrap().wake();
        wakers.next().unwrap().wake_by_ref();
    })
    .join()
    .unwrap();
    // Only the spawner keeps it now; a spawn takes a hold again.
    let late = spawner.spawn(async {});
    assert!(
        futures::executor::block_on(late)
            .unwrap_err()
            .is_cancelled()
    );
    drop(spawner);
    assert!(
        shared.upgrade().is_none(),
        "freed once the last hold is gone"
    );
}

#[test]
fn the_task_list_unlinks_tasks_from_anywhere_in_it() {
    let ex = Executor::new();
    let drops = Rc::new(Cell::new(0));
    let handles: Vec<_> = (0..6).map(|_| ex.spawn(pending_counted(&drops))).collect();
    ex.run_until_stalled();
    assert_eq!(ex.task_count(), 6);
    // The newest (the list's head), the oldest (its tail), one between.
    for i in [5, 0, 2] {
        handles[i].abort();
    }
    assert_eq!((ex.task_count(), drops.get()), (3, 3));
    // A task spawned from another thread joins the list when adopted.
    let spawner = ex.spawner();
    let remote = std::thread::spawn(move || spawner.spawn(std::future::pending::<()>()))
        .join()
        .unwrap();
    ex.run_until_stalled();
    assert_eq!(ex.task_count(), 4);
    // Shutdown reaches every task still in the list.
    ex.shutdown();
    assert_eq!((ex.task_count(), drops.get()), (0, 6));
    assert!(ex.block_on(remote).unwrap_err().is_cancelled());
    for handle in handles {
        assert!(ex.block_on(handle).unwrap_err().is_cancelled());
    }
}

#[test]
fn the_run_queue_runs_tasks_in_wake_order_and_lets_go_of_stale_entries() {
    let ex = Executor::new();
    let order = Rc::new(RefCell::new(Vec::new()));
    let record = |i: u32| {
        let order = order.clone();
        async move {
            order.borrow_mut().push(i);
            crate::yield_now().await;
            order.borrow_mut().push(i + 10);
        }
    };
    let handles: Vec<_> = (0..4).map(|i| ex.spawn(record(i))).collect();
    assert_eq!(ex.run_until_stalled(), 8);
    assert_eq!(*order.borrow(), [0, 1, 2, 3, 10, 11, 12, 13]);
    assert!(handles.iter().all(|h| h.is_finished()));

    // A queued task that completes (aborted before its first poll) leaves
    // a stale entry: skipped, its reference dropped, the rest run.
    order.borrow_mut().clear();
    let drops = Rc::new(Cell::new(0));
    let aborted = ex.spawn(pending_counted(&drops));
    let after = ex.spawn(record(5));
    aborted.abort();
    assert_eq!(drops.get(), 1);
    assert_eq!(ex.run_until_stalled(), 2);
    assert_eq!(*order.borrow(), [5, 15]);
    assert!(after.is_finished());

    // Shutdown with tasks queued; the queue keeps working afterwards.
    let queued: Vec<_> = (0..3).map(|_| ex.spawn(pending_counted(&drops))).collect();
    ex.shutdown();
    assert_eq!(drops.get(), 4);
    order.borrow_mut().clear();
    let again = ex.spawn(record(7));
    ex.run_until_stalled();
    assert_eq!(*order.borrow(), [7, 17]);
    assert!(again.is_finished() && queued.iter().all(|h| h.is_finished()));

    // Dropping the executor with tasks queued (never polled) drops them.
    for _ in 0..2 {
        drop(ex.spawn(pending_counted(&drops)));
    }
    drop(ex);
    assert_eq!(drops.get(), 6);
}

#[test]
fn a_task_woken_many_times_while_queued_is_queued_and_polled_once() {
    let ex = Executor::new();
    let polls = Rc::new(Cell::new(0));
    let kept: Rc<RefCell<Option<Waker>>> = Rc::default();
    let (p, k) = (polls.clone(), kept.clone());
    let task = ex.spawn(poll_fn(move |cx| {
        p.set(p.get() + 1);
        *k.borrow_mut() = Some(cx.waker().clone());
        if p.get() == 2 {
            Poll::Ready(())
        } else {
            Poll::Pending
        }
    }));
    assert_eq!(ex.run_until_stalled(), 1);
    let waker = kept.borrow_mut().take().unwrap();
    // Wakes on this thread (by reference and by value), and from
    // another thread, all while the task is queued.
    for _ in 0..3 {
        waker.wake_by_ref();
    }
    let remote = waker.clone();
    std::thread::spawn(move || {
        remote.wake_by_ref();
        remote.wake();
    })
    .join()
    .unwrap();
    waker.wake();
    assert_eq!(ex.run_until_stalled(), 1);
    assert_eq!(polls.get(), 2);
    assert!(task.is_finished());
}

#[test]
fn a_task_awaiting_a_handle_is_held_in_one_word_and_woken_or_let_go() {
    use futures::channel::oneshot;

    assert_eq!(
        std::mem::size_of::<super::awaiter::AwaiterSlot>(),
        std::mem::size_of::<usize>()
    );
    let ex = Executor::new();
    // A task awaiting another: woken with the result.
    let (tx, rx) = oneshot::channel::<u32>();
    let first = ex.spawn(async move { rx.await.unwrap() });
    let second = ex.spawn(async move { first.await.unwrap() + 1 });
    ex.run_until_stalled();
    assert!(!second.is_finished());
    tx.send(4).unwrap();
    assert_eq!(ex.run_until_stalled(), 2);
    assert_eq!(ex.block_on(second).unwrap(), 5);

    // The awaiting task goes away first: the awaited one keeps its
    // waker (a reference) until it completes, then lets go of it.
    let drops = Rc::new(Cell::new(0));
    let (tx, rx) = oneshot::channel::<u32>();
    let first = ex.spawn(async move { rx.await.unwrap() });
    let token = Counted(drops.clone());
    let second = ex.spawn(async move {
        let _token = token;
        first.await
    });
    ex.run_until_stalled();
    second.abort();
    assert_eq!(drops.get(), 1);
    tx.send(1).unwrap();
    ex.run_until_stalled();
    assert_eq!(ex.task_count(), 0);

    // A handle a task registered on, then awaited by `block_on`: the
    // `block_on` future's waker (also one word) replaces the task's, and is the one
    // woken. (Other wakers are boxed: see the next test.)
    let (tx, rx) = oneshot::channel::<u32>();
    let first = ex.spawn(async move { rx.await.unwrap() });
    let parked = Rc::new(RefCell::new(None));
    let out = parked.clone();
    let poller = ex.spawn(async move {
        let mut handle = first;
        poll_fn(|cx| {
            assert!(std::pin::Pin::new(&mut handle).poll(cx).is_pending());
            Poll::Ready(())
        })
        .await;
        *out.borrow_mut() = Some(handle);
    });
    ex.run_until_stalled();
    assert!(poller.is_finished());
    let handle = parked.borrow_mut().take().unwrap();
    let _sender = ex.spawn(async move { tx.send(9).unwrap() });
    assert_eq!(ex.block_on(handle).unwrap(), 9);
    assert_eq!(ex.task_count(), 0);
}

#[test]
fn the_awaiter_slot_keeps_the_latest_waker_and_clones_only_when_it_changes() {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::task::{Context, Wake};

    struct Flag(AtomicBool);
    impl Wake for Flag {
        fn wake(self: Arc<Self>) {
            self.0.store(true, Ordering::SeqCst);
        }
    }
    let ex = Executor::new();
    let (tx, rx) = futures::channel::oneshot::channel::<()>();
    let mut handle = ex.spawn(async move {
        rx.await.unwrap();
        5
    });
    ex.run_until_stalled();
    let (a, b) = (
        Arc::new(Flag(AtomicBool::new(false))),
        Arc::new(Flag(AtomicBool::new(false))),
    );
    let (wa, wb) = (Waker::from(a.clone()), Waker::from(b.clone()));
    let mut poll =
        |waker: &Waker| std::pin::Pin::new(&mut handle).poll(&mut Context::from_waker(waker));
    assert!(poll(&wa).is_pending());
    assert_eq!(
        Arc::strong_count(&a),
        3,
        "registered: one clone in the slot"
    );
    assert!(poll(&wa).is_pending());
    assert_eq!(
        Arc::strong_count(&a),
        3,
        "the same waker again: no new clone"
    );
    assert!(poll(&wb).is_pending());
    assert_eq!(
        Arc::strong_count(&a),
        2,
        "replaced: the old clone is dropped"
    );
    assert_eq!(Arc::strong_count(&b), 3);
    tx.send(()).unwrap();
    ex.run_until_stalled();
    assert!(!a.0.load(Ordering::SeqCst));
    assert!(b.0.load(Ordering::SeqCst), "the latest waker is woken");
    assert_eq!(Arc::strong_count(&b), 2, "and taken out of the slot");
    assert!(matches!(poll(&wb), Poll::Ready(Ok(5))));
}
