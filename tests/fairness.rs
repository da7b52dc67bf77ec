//! R11: a nested loop's own future and the task queue alternate; FIFO order.

mod common;

use std::cell::{Cell, RefCell};
use std::rc::Rc;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use common::{busy, watchdog};
use nestloop::{Executor, block_on, spawn, yield_now};

/// Task polls allowed between two polls of a woken `block_on` future
/// (documented on `Executor::block_on`).
const BUDGET: usize = 64;

#[test]
#[cfg_attr(miri, ignore = "too many polls for Miri; no unsafe code of its own")]
fn a_nested_call_is_not_starved_by_tasks_that_keep_waking_themselves() {
    watchdog(|| {
        let ex = Executor::new();
        for _ in 0..10 {
            ex.spawn(busy());
        }
        let ex2 = ex.clone();
        let v = ex.block_on(async move {
            ex2.spawn(async {
                block_on(async {
                    for _ in 0..100 {
                        yield_now().await;
                    }
                    "nested done"
                })
            })
            .await
            .unwrap()
        });
        assert_eq!(v, "nested done");
        ex.shutdown();
    });
}

#[test]
fn a_future_that_keeps_waking_itself_does_not_starve_tasks() {
    watchdog(|| {
        let done = Rc::new(Cell::new(0));
        block_on(async {
            for _ in 0..5 {
                let d = done.clone();
                spawn(async move {
                    for _ in 0..50 {
                        yield_now().await;
                    }
                    d.set(d.get() + 1);
                });
            }
            // Busy root at depth 2: yields until the tasks are done.
            block_on(async {
                while done.get() < 5 {
                    yield_now().await;
                }
            });
        });
        assert_eq!(done.get(), 5);
    });
}

#[test]
#[cfg_attr(miri, ignore = "too many polls for Miri; no unsafe code of its own")]
fn own_future_and_tasks_alternate_within_the_budget() {
    let (max_gap, root_polls, task_polls) = watchdog(|| {
        let ex = Executor::new();
        let task_polls = Rc::new(Cell::new(0usize));
        for _ in 0..200 {
            let t = task_polls.clone();
            ex.spawn(async move {
                loop {
                    t.set(t.get() + 1);
                    yield_now().await;
                }
            });
        }
        let tp = task_polls.clone();
        let (max_gap, root_polls) = ex.block_on(async move {
            let mut last = tp.get();
            let mut max_gap = 0;
            let mut polls = 0;
            for _ in 0..50 {
                yield_now().await;
                polls += 1;
                let now = tp.get();
                max_gap = max_gap.max(now - last);
                last = now;
            }
            (max_gap, polls)
        });
        let total = task_polls.get();
        ex.shutdown();
        (max_gap, root_polls, total)
    });
    assert_eq!(root_polls, 50);
    assert!(
        max_gap <= BUDGET,
        "{max_gap} task polls between two polls of the own future"
    );
    assert!(
        task_polls >= 49 * BUDGET,
        "tasks only got {task_polls} polls"
    );
}

#[test]
fn tasks_run_in_spawn_order() {
    let order = watchdog(|| {
        let ex = Executor::new();
        let order = Rc::new(RefCell::new(Vec::new()));
        for i in 0..20 {
            let o = order.clone();
            ex.spawn(async move { o.borrow_mut().push(i) });
        }
        ex.run_until_stalled();
        Rc::try_unwrap(order).unwrap().into_inner()
    });
    assert_eq!(order, (0..20).collect::<Vec<_>>());
}

#[test]
fn tasks_run_in_the_order_they_were_woken() {
    let order = watchdog(|| {
        let ex = Executor::new();
        let order = Rc::new(RefCell::new(Vec::new()));
        let wakers = Rc::new(RefCell::new(vec![None, None, None]));
        for i in 0..3 {
            let (o, w) = (order.clone(), wakers.clone());
            ex.spawn(std::future::poll_fn(move |cx| {
                if w.borrow()[i].is_none() {
                    w.borrow_mut()[i] = Some(cx.waker().clone());
                    return std::task::Poll::Pending;
                }
                o.borrow_mut().push(i);
                std::task::Poll::Ready(())
            }));
        }
        ex.run_until_stalled();
        for i in [2, 0, 1] {
            wakers.borrow()[i].as_ref().unwrap().wake_by_ref();
        }
        ex.run_until_stalled();
        Rc::try_unwrap(order).unwrap().into_inner()
    });
    assert_eq!(order, [2, 0, 1]);
}

#[test]
fn remote_spawns_are_not_starved_by_busy_local_tasks() {
    watchdog(|| {
        let ex = Executor::new();
        for _ in 0..10 {
            ex.spawn(busy());
        }
        let spawner = ex.spawner();
        let ran = Arc::new(AtomicBool::new(false));
        let r = ran.clone();
        let handle = std::thread::spawn(move || {
            spawner.spawn(async move { r.store(true, Ordering::SeqCst) })
        })
        .join()
        .unwrap();
        ex.block_on(handle).unwrap();
        assert!(ran.load(Ordering::SeqCst));
        ex.shutdown();
    });
}

/// The REPL cell of a host: a producer task sends an item every 2 ms on an
/// MPMC channel, a consumer task receives from it in a loop, and the cell
/// (a `block_on` future, at the top level or nested inside a task) receives
/// from it too. With `consumer_first`, the consumer is waiting on the
/// channel before the cell starts (a REPL whose earlier line spawned it):
/// the cell queues behind it. Returns how many of its `wanted` items the
/// cell got before the producer finished (a starved cell sees the channel
/// close).
fn cell_sharing_a_channel_with_a_consumer_task(
    nested: bool,
    consumer_first: bool,
    wanted: usize,
) -> usize {
    watchdog(move || {
        let ex = common::nesting();
        let (tx, rx) = async_channel::unbounded::<usize>();
        ex.spawn(async move {
            for i in 0..100 {
                nestloop::time::sleep(std::time::Duration::from_millis(2)).await;
                if tx.send(i).await.is_err() {
                    break;
                }
            }
        });
        let consumer_rx = rx.clone();
        ex.spawn(async move {
            while consumer_rx.recv().await.is_ok() {
                yield_now().await; // handles the item
            }
        });
        if consumer_first {
            ex.run_until_stalled();
        }
        let cell = async move {
            let mut got = 0;
            while got < wanted && rx.recv().await.is_ok() {
                got += 1;
            }
            got
        };
        let got = if nested {
            let inner = ex.clone();
            ex.block_on(async move { inner.spawn(async move { block_on(cell) }).await.unwrap() })
        } else {
            ex.block_on(cell)
        };
        ex.shutdown();
        got
    })
}

#[test]
#[cfg_attr(miri, ignore = "real timers: too slow under Miri")]
fn a_top_level_cell_gets_items_it_shares_with_a_consumer_task() {
    assert_eq!(
        cell_sharing_a_channel_with_a_consumer_task(false, false, 5),
        5
    );
}

/// The cell queues behind a consumer that waited first. It is woken when the
/// consumer, having taken an item, hands its channel wake on; it must then
/// be polled before the consumer's own next poll (queued by that same poll),
/// or it loses its place in the channel's queue of receivers every time and
/// gets nothing (tokio's LocalSet gives it its share; asyncio's
/// `run_until_complete` too).
#[test]
#[cfg_attr(miri, ignore = "real timers: too slow under Miri")]
fn a_top_level_cell_behind_a_waiting_consumer_task_gets_its_share() {
    assert_eq!(
        cell_sharing_a_channel_with_a_consumer_task(false, true, 5),
        5
    );
}

#[test]
#[cfg_attr(miri, ignore = "real timers: too slow under Miri")]
fn a_nested_cell_gets_items_it_shares_with_a_consumer_task() {
    assert_eq!(
        cell_sharing_a_channel_with_a_consumer_task(true, false, 5),
        5
    );
    assert_eq!(
        cell_sharing_a_channel_with_a_consumer_task(true, true, 5),
        5
    );
}

/// `tasks` tasks each call a synchronous helper that nests one `block_on`
/// of a future that is ready after one `yield_now` (the aiida-core report of
/// ~200 submissions exceeding the recursion depth). Returns the deepest
/// loop any of them saw.
fn deepest_loop_when_each_of_n_tasks_nests_once(tasks: usize) -> usize {
    watchdog(move || {
        let ex = Executor::new();
        let deepest = Rc::new(Cell::new(0));
        let handles: Vec<_> = (0..tasks)
            .map(|_| {
                let deepest = deepest.clone();
                ex.spawn(async move {
                    block_on(async {
                        yield_now().await;
                        deepest.set(deepest.get().max(nestloop::depth()));
                    });
                })
            })
            .collect();
        ex.block_on(async {
            for handle in handles {
                handle.await.unwrap();
            }
        });
        deepest.get()
    })
}

#[test]
#[cfg_attr(miri, ignore = "a thousand tasks: too slow under Miri")]
fn depth_does_not_grow_with_the_number_of_tasks_that_each_nest_once() {
    // The outer block_on, the task's nested call: two loops, however many
    // tasks do the same.
    assert_eq!(deepest_loop_when_each_of_n_tasks_nests_once(1_000), 2);
}

/// Task A wakes the `block_on` future; task B, queued before that wake,
/// then spawns task C, queued after it. Returns the order in which the
/// future, B and C were polled after the wake, at the top level or nested.
fn order_after_a_task_wakes_the_future(nested: bool) -> Vec<&'static str> {
    watchdog(move || {
        let ex = common::nesting();
        let log = Rc::new(RefCell::new(Vec::new()));
        let waker = Rc::new(RefCell::new(None::<std::task::Waker>));
        let woken = Rc::new(Cell::new(false));
        let (w, flag) = (waker.clone(), woken.clone());
        ex.spawn(async move {
            // A: waits for the future to register its waker, then wakes it.
            loop {
                if let Some(waker) = w.borrow_mut().take() {
                    flag.set(true);
                    waker.wake();
                    break;
                }
                yield_now().await;
            }
        });
        let (l, flag, inner) = (log.clone(), woken.clone(), ex.clone());
        ex.spawn(async move {
            // B: queued when the future is woken.
            while !flag.get() {
                yield_now().await;
            }
            l.borrow_mut().push("B, queued before the wake");
            let l = l.clone();
            drop(inner.spawn(async move { l.borrow_mut().push("C, queued after it") }));
        });
        let (l, w) = (log.clone(), waker.clone());
        let mut registered = false;
        let future = std::future::poll_fn(move |cx| {
            if !registered {
                registered = true;
                *w.borrow_mut() = Some(cx.waker().clone());
                return std::task::Poll::Pending;
            }
            l.borrow_mut().push("future");
            std::task::Poll::Ready(())
        });
        if nested {
            let inner = ex.clone();
            ex.block_on(async move { inner.spawn(async move { block_on(future) }).await.unwrap() });
        } else {
            ex.block_on(future);
        }
        ex.run_until_stalled();
        Rc::try_unwrap(log).unwrap().into_inner()
    })
}

#[test]
fn a_woken_block_on_future_goes_after_earlier_tasks_and_before_later_ones() {
    // FIFO at the top level, as asyncio's ready queue.
    assert_eq!(
        order_after_a_task_wakes_the_future(false),
        ["B, queued before the wake", "future", "C, queued after it"]
    );
}

#[test]
fn a_woken_nested_block_on_future_goes_before_any_task() {
    // A nested call's future goes first, so that the call unwinds as soon
    // as it can.
    assert_eq!(
        order_after_a_task_wakes_the_future(true),
        ["future", "B, queued before the wake", "C, queued after it"]
    );
}
