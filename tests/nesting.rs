//! R1 (nesting) and R3 (outer futures progress).

mod common;

use std::cell::{Cell, RefCell};
use std::rc::Rc;
use std::time::Duration;

use common::watchdog;
use futures::channel::oneshot;
use nestloop::{Executor, block_on, depth, spawn, yield_now};

#[test]
fn nested_block_on_in_a_task_waits_for_a_sibling_task() {
    let value = watchdog(|| {
        let ex = common::nesting();
        let inner = ex.clone();
        ex.block_on(async move {
            let producer = inner.spawn(async {
                yield_now().await;
                yield_now().await;
                7
            });
            let ex2 = inner.clone();
            let consumer = inner.spawn(async move {
                // Synchronous wait inside a task, for another task.
                ex2.block_on(producer).unwrap() * 6
            });
            consumer.await.unwrap()
        })
    });
    assert_eq!(value, 42);
}

#[test]
fn nested_block_on_inside_a_block_on_future() {
    let seen = watchdog(|| {
        block_on(async {
            let outer = depth();
            let (inner, innermost) = block_on(async {
                let inner = depth();
                let innermost = block_on(async { depth() });
                (inner, innermost)
            });
            (outer, inner, innermost, depth())
        })
    });
    assert_eq!(seen, (1, 2, 3, 1));
    assert_eq!(depth(), 0);
}

#[test]
fn depth_counts_block_on_and_run_until_stalled() {
    watchdog(|| {
        let ex = common::nesting();
        let seen = Rc::new(RefCell::new(Vec::new()));
        let s = seen.clone();
        let ex2 = ex.clone();
        ex.spawn(async move {
            s.borrow_mut().push(depth());
            // run_until_stalled from inside a task, inside block_on.
            let s2 = s.clone();
            ex2.spawn(async move { s2.borrow_mut().push(depth()) });
            ex2.run_until_stalled();
        });
        ex.block_on(yield_now());
        assert_eq!(*seen.borrow(), vec![1, 2]);
        assert_eq!(depth(), 0);
        ex.spawn(async {});
        // run_until_stalled at the top level is depth 1 inside.
        let s3 = seen.clone();
        ex.spawn(async move { s3.borrow_mut().push(depth()) });
        ex.run_until_stalled();
        assert_eq!(*seen.borrow(), vec![1, 2, 1]);
    });
}

#[test]
fn nested_loop_drives_every_ready_task_of_the_outer_loop() {
    watchdog(|| {
        let ex = common::nesting();
        let ticks = Rc::new(Cell::new(0));
        let t = ticks.clone();
        ex.spawn(async move {
            loop {
                t.set(t.get() + 1);
                yield_now().await;
            }
        });
        let ex2 = ex.clone();
        let ticks2 = ticks.clone();
        let during = ex.block_on(async move {
            yield_now().await;
            let before = ticks2.get();
            // The nested call keeps the background task going.
            ex2.block_on(async {
                for _ in 0..10 {
                    yield_now().await;
                }
            });
            ticks2.get() - before
        });
        // Every yield but the first lets the task run: a nested call's
        // future goes on right after its first poll (R11).
        assert!(
            during >= 9,
            "background task ran {during} times during the nested call"
        );
        ex.shutdown();
    });
}

#[test]
fn nested_call_returns_as_soon_as_its_future_is_done() {
    watchdog(|| {
        let ex = common::nesting();
        // A task that never finishes and always has work.
        ex.spawn(common::busy());
        let ex2 = ex.clone();
        let v = ex.block_on(async move { ex2.block_on(async { 5 }) + ex2.block_on(async { 6 }) });
        assert_eq!(v, 11);
        ex.shutdown();
    });
}

#[test]
fn outer_future_sends_what_the_nested_call_waits_for() {
    let (value, depth_at_send) = watchdog(|| {
        let ex = common::nesting();
        ex.block_on(async {
            let (tx, rx) = oneshot::channel::<u32>();
            // The task nests a block_on that waits for the outer future.
            let task = spawn(async move { block_on(rx).unwrap() });
            yield_now().await;
            // We are polled by the task's nested loop (R3).
            let depth_at_send = depth();
            tx.send(5).unwrap();
            (task.await.unwrap(), depth_at_send)
        })
    });
    assert_eq!(value, 5);
    assert_eq!(
        depth_at_send, 2,
        "the outer future was not polled by the nested loop"
    );
}

#[test]
fn outer_future_completing_in_a_nested_loop_returns_when_control_is_back() {
    watchdog(|| {
        let ex = common::nesting();
        let task_done = Rc::new(Cell::new(false));
        let done = task_done.clone();
        let out = ex.block_on(async move {
            let (tx, rx) = oneshot::channel::<u32>();
            let _detached = spawn(async move {
                let v = block_on(rx).unwrap();
                done.set(true);
                v
            });
            yield_now().await;
            assert_eq!(depth(), 2);
            tx.send(1).unwrap();
            "outer done" // completes inside the nested loop
        });
        assert_eq!(out, "outer done");
        // The nested loop above it had to return first (stack order).
        assert!(task_done.get());
        assert_eq!(ex.task_count(), 0);
    });
}

#[test]
fn outer_future_waits_on_a_timer_during_a_nested_call() {
    let order = watchdog(|| {
        let order = Rc::new(RefCell::new(Vec::new()));
        let o = order.clone();
        block_on(async move {
            let o2 = o.clone();
            let (tx, rx) = oneshot::channel::<()>();
            let task = spawn(async move {
                o2.borrow_mut().push("task nests");
                block_on(rx).unwrap();
                o2.borrow_mut().push("task resumes");
            });
            nestloop::time::sleep(Duration::from_millis(10)).await;
            o.borrow_mut()
                .push("outer woke from its timer inside the nested loop");
            tx.send(()).unwrap();
            task.await.unwrap();
        });
        Rc::try_unwrap(order).unwrap().into_inner()
    });
    assert_eq!(
        order,
        vec![
            "task nests",
            "outer woke from its timer inside the nested loop",
            "task resumes"
        ]
    );
}

#[test]
fn every_outer_future_not_on_the_stack_progresses() {
    // Three levels: the outer futures at depth 1 and 2 are both needed by the
    // innermost call, which is reached from tasks, not from those futures.
    let v = watchdog(|| {
        let ex = common::nesting();
        ex.block_on(async {
            let (tx1, rx1) = oneshot::channel::<u32>();
            let (tx2, rx2) = oneshot::channel::<u32>();
            let outer_task = spawn(async move {
                // depth 2 root: sends tx2 after a yield, while a deeper call waits.
                block_on(async move {
                    let deep = spawn(async move {
                        // depth 3: needs both outer roots to make progress.
                        let a = block_on(rx1).unwrap();
                        let b = block_on(rx2).unwrap();
                        a + b
                    });
                    yield_now().await;
                    tx2.send(20).unwrap();
                    deep.await.unwrap()
                })
            });
            yield_now().await;
            tx1.send(22).unwrap();
            outer_task.await.unwrap()
        })
    });
    assert_eq!(v, 42);
}

#[test]
fn free_functions_use_the_executor_that_owns_the_polled_task() {
    watchdog(|| {
        let a = common::nesting();
        let b = common::nesting();
        let b2 = b.clone();
        let a2 = a.clone();
        a.block_on(async move {
            assert!(Executor::current().unwrap().ptr_eq(&a2));
            let handle = b2.spawn(async {
                // Polled by a's nested loop below, yet owned by b.
                Executor::current().unwrap()
            });
            let owner = b2.block_on(handle).unwrap();
            assert!(owner.ptr_eq(&b2));
            // spawn() inside a's future goes to a.
            let h = spawn(async { Executor::current().unwrap() });
            assert!(h.await.unwrap().ptr_eq(&a2));
        });
        assert!(Executor::current().is_none());
    });
}

/// The future of a `block_on` of `ex` that looks at its frame in every way
/// during its first poll, and is ready then: the depth, whether `ex` is the
/// current executor, whether a task spawned with the free function (onto
/// `ex`) ran in a call nested in this one, and the depth after that.
async fn look_at_the_frame(ex: Executor) -> (usize, bool, bool, usize) {
    let d = depth();
    let current = Executor::current().is_some_and(|c| c.ptr_eq(&ex));
    let ran = Rc::new(Cell::new(false));
    let flag = ran.clone();
    let task = spawn(async move { flag.set(true) });
    assert_eq!(ex.task_count(), 1, "spawned onto this call's executor");
    // A call nested in this one drives that executor's tasks.
    block_on(task).unwrap();
    (d, current, ran.get(), depth())
}

/// The outermost `block_on` pushes its frame only when something looks for
/// it during the first poll; everything must see it all the same.
#[test]
fn a_nested_frame_is_seen_during_its_first_poll() {
    watchdog(|| {
        let ex = common::nesting();
        let other = common::nesting();
        let other2 = other.clone();
        let ex2 = ex.clone();
        let seen = ex
            .block_on(ex.spawn(async move {
                // Ready at once, reading nothing: nothing is left behind.
                assert_eq!(other2.block_on(async { 5 }), 5);
                assert_eq!(depth(), 1);
                // Ready at once, after looking at the frame in every way.
                let inner = other2.block_on(look_at_the_frame(other2.clone()));
                // A panic in a nested first poll leaves no frame behind.
                let panicked = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                    other2.block_on(async {
                        let _ = depth();
                        panic!("first poll");
                    })
                }));
                assert!(panicked.is_err());
                // Pending first, then a real nested loop: the frame is there.
                let looped = other2.block_on(async {
                    yield_now().await;
                    depth()
                });
                // Back in the task: its own executor is current again.
                let back = Executor::current().is_some_and(|c| c.ptr_eq(&ex2));
                (inner, depth(), looped, back)
            }))
            .unwrap();
        assert_eq!(seen, ((2, true, true, 2), 1, 2, true));
        assert_eq!(depth(), 0);
        assert_eq!(other.task_count(), 0);
    });
}

#[test]
fn the_outermost_frame_is_seen_during_the_first_poll() {
    watchdog(|| {
        let ex = common::nesting();
        // Ready at once, reading nothing: nothing is left behind.
        assert_eq!(ex.block_on(async { 5 }), 5);
        assert_eq!(depth(), 0);
        // Ready at once, after looking at the frame in every way.
        let seen = ex.block_on(look_at_the_frame(ex.clone()));
        assert_eq!(seen, (1, true, true, 1));
        assert_eq!(depth(), 0);
        assert_eq!(ex.task_count(), 0);
        // A panic in the first poll leaves no frame behind.
        let panicked = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            ex.block_on(async {
                let _ = depth();
                panic!("first poll");
            })
        }));
        assert!(panicked.is_err());
        assert_eq!(depth(), 0);
        assert!(Executor::current().is_none());
        // Pending first, then a real loop: the frame is there.
        let d = ex.block_on(async {
            yield_now().await;
            depth()
        });
        assert_eq!(d, 1);
        assert_eq!(depth(), 0);
        // The executor is not kept alive by a stale frame: dropping the
        // last handle drops its pending task.
        struct SetOnDrop(Rc<Cell<bool>>);
        impl Drop for SetOnDrop {
            fn drop(&mut self) {
                self.0.set(true);
            }
        }
        let dropped = Rc::new(Cell::new(false));
        let guard = SetOnDrop(dropped.clone());
        drop(ex.spawn(async move {
            let _guard = guard;
            std::future::pending::<()>().await
        }));
        ex.block_on(async { depth() });
        drop(ex);
        assert!(dropped.get());
    });
}
