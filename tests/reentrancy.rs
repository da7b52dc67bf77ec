//! R2: a task or `block_on` future on the stack is never polled again while
//! it is there; wakes it receives meanwhile are kept and honoured once.

mod common;

use std::cell::{Cell, RefCell};
use std::future::poll_fn;
use std::rc::Rc;
use std::task::{Poll, Waker};
use std::time::Duration;

use common::{Probe, watchdog};
use nestloop::{block_on, spawn, yield_now};

#[test]
fn task_woken_while_on_the_stack_is_polled_exactly_once_more() {
    let polls = watchdog(|| {
        let ex = common::nesting();
        let own_waker: Rc<RefCell<Option<Waker>>> = Rc::default();
        let w = own_waker.clone();
        let (task, stats) = Probe::new(poll_fn(move |cx| {
            if w.borrow().is_some() {
                return Poll::Ready(());
            }
            *w.borrow_mut() = Some(cx.waker().clone());
            let w2 = w.clone();
            block_on(async move {
                // Wake ourselves, directly and from another task, many times.
                for _ in 0..3 {
                    w2.borrow().as_ref().unwrap().wake_by_ref();
                }
                let w3 = w2.clone();
                spawn(async move {
                    for _ in 0..2 {
                        w3.borrow().as_ref().unwrap().wake_by_ref();
                        yield_now().await;
                    }
                })
                .await
                .unwrap();
                yield_now().await;
            });
            Poll::Pending
        }));
        let handle = ex.spawn(task);
        ex.block_on(handle).unwrap();
        assert!(stats.dropped.get());
        stats.polls.get()
    });
    assert_eq!(polls, 2, "the woken task must be polled once more, no more");
}

#[test]
fn task_woken_from_another_thread_while_on_the_stack_is_not_lost() {
    watchdog(|| {
        let ex = common::nesting();
        let first = Rc::new(Cell::new(true));
        let f = first.clone();
        let (task, stats) = Probe::new(poll_fn(move |cx| {
            if !f.replace(false) {
                return Poll::Ready(());
            }
            let waker = cx.waker().clone();
            // Woken from another thread while we are in a nested call.
            let t = std::thread::spawn(move || waker.wake());
            block_on(nestloop::time::sleep(Duration::from_millis(20)));
            t.join().unwrap();
            Poll::Pending
        }));
        ex.block_on(ex.spawn(task)).unwrap();
        assert_eq!(stats.polls.get(), 2);
    });
}

#[test]
fn block_on_future_on_the_stack_is_not_polled_by_the_nested_loop() {
    watchdog(|| {
        let ex = common::nesting();
        let ex2 = ex.clone();
        let stage = Rc::new(Cell::new(0));
        let s = stage.clone();
        let (root, stats) = Probe::new(poll_fn(move |cx| {
            s.set(s.get() + 1);
            if s.get() > 1 {
                return Poll::Ready(s.get());
            }
            let waker = cx.waker().clone();
            // While this future is on the stack, wake it over and over from
            // a task the nested loop runs; the nested loop must not poll it.
            ex2.block_on(async move {
                spawn(async move {
                    for _ in 0..5 {
                        waker.wake_by_ref();
                        yield_now().await;
                    }
                })
                .await
                .unwrap();
            });
            Poll::Pending
        }));
        let polls_seen = ex.block_on(root);
        assert_eq!(polls_seen, 2);
        assert_eq!(stats.polls.get(), 2);
    });
}

#[test]
fn outer_future_polled_by_a_nested_loop_is_not_reentered_by_a_deeper_one() {
    watchdog(|| {
        let ex = common::nesting();
        let step = Rc::new(Cell::new(0));
        let s = step.clone();
        let (root, stats) = Probe::new(async move {
            let (tx, rx) = futures::channel::oneshot::channel::<()>();
            let task = spawn(async move { block_on(rx).unwrap() });
            yield_now().await;
            // Now polled by the task's nested loop (depth 2), and we nest
            // again (depth 3) while waking ourselves.
            s.set(nestloop::depth());
            block_on(async {
                for _ in 0..3 {
                    yield_now().await;
                }
            });
            tx.send(()).unwrap();
            task.await.unwrap();
        });
        ex.block_on(root);
        assert_eq!(step.get(), 2);
        assert!(stats.polls.get() >= 2);
        assert!(stats.dropped.get());
    });
}

#[test]
fn a_wake_during_a_task_poll_requeues_it_behind_other_ready_tasks() {
    let order = watchdog(|| {
        let ex = common::nesting();
        let order = Rc::new(RefCell::new(Vec::new()));
        for name in ["a", "b"] {
            let o = order.clone();
            ex.spawn(async move {
                o.borrow_mut().push(format!("{name}1"));
                yield_now().await; // wakes itself while running
                o.borrow_mut().push(format!("{name}2"));
            });
        }
        ex.run_until_stalled();
        Rc::try_unwrap(order).unwrap().into_inner()
    });
    assert_eq!(order, ["a1", "b1", "a2", "b2"]);
}
