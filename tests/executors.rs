//! R1 and R6: several executors on one thread, driven by every loop of the
//! thread, nested inside each other.

mod common;

use std::cell::{Cell, RefCell};
use std::rc::Rc;

use common::watchdog;
use futures::channel::oneshot;
use nestloop::{Executor, depth, yield_now};

#[test]
fn block_on_of_b_inside_a_task_of_a_drives_a() {
    let v = watchdog(|| {
        let a = Executor::new();
        let b = Executor::new();
        let a2 = a.clone();
        a.block_on(async move {
            let (tx, rx) = oneshot::channel();
            // A task of A that the future of B waits on.
            let _sender = a2.spawn(async move {
                yield_now().await;
                tx.send(11).unwrap();
            });
            let waiter = a2.spawn(async move {
                // Inside a task of A: a block_on of B whose future needs A.
                b.block_on(async move { rx.await.unwrap() })
            });
            waiter.await.unwrap()
        })
    });
    assert_eq!(v, 11);
}

#[test]
fn executors_nested_inside_each_other_drive_each_others_tasks() {
    watchdog(|| {
        let a = Executor::new();
        let b = Executor::new();
        let log = Rc::new(RefCell::new(Vec::new()));
        let (a2, b2, l) = (a.clone(), b.clone(), log.clone());
        a.block_on(async move {
            let (tx_a, rx_a) = oneshot::channel::<&str>();
            let (tx_b, rx_b) = oneshot::channel::<&str>();
            let l1 = l.clone();
            // A task of B that needs a task of A, and the other way round.
            let b_task = b2.spawn(async move {
                let got = rx_a.await.unwrap();
                l1.borrow_mut().push(format!("b got {got}"));
            });
            let l2 = l.clone();
            let a_task = a2.spawn(async move {
                tx_a.send("from a").unwrap();
                let got = rx_b.await.unwrap();
                l2.borrow_mut().push(format!("a got {got}"));
            });
            let (a3, b3) = (a2.clone(), b2.clone());
            // A -> B -> A nesting.
            b2.block_on(async move {
                assert_eq!(depth(), 2);
                b3.block_on(b_task).unwrap();
                tx_b.send("from b").unwrap();
                a3.block_on(async move {
                    assert_eq!(depth(), 3);
                    a_task.await.unwrap();
                });
            });
        });
        assert_eq!(*log.borrow(), vec!["b got from a", "a got from b"]);
    });
}

#[test]
fn every_loop_runs_the_tasks_of_every_executor_of_the_thread() {
    watchdog(|| {
        let a = Executor::new();
        let idle = Executor::new();
        let ran = Rc::new(Cell::new(false));
        let r = ran.clone();
        let _handle = idle.spawn(async move { r.set(true) });
        a.block_on(async {
            for _ in 0..5 {
                yield_now().await;
            }
        });
        assert!(
            ran.get(),
            "a loop of the thread skipped another executor's task"
        );
        assert_eq!(idle.task_count(), 0);
    });
}

#[test]
fn the_free_block_on_runs_a_task_of_a_hand_built_executor() {
    watchdog(|| {
        let ex = Executor::new();
        let handle = ex.spawn(async { 1 });
        assert_eq!(nestloop::block_on(handle).unwrap(), 1);
        assert_eq!(ex.task_count(), 0);
    });
}

#[test]
fn one_executors_block_on_awaits_another_executors_task() {
    watchdog(|| {
        let ex1 = Executor::new();
        let ex2 = Executor::new();
        let handle = ex1.spawn(async {
            nestloop::time::sleep(std::time::Duration::from_millis(1)).await;
            "from ex1"
        });
        assert_eq!(ex2.block_on(handle).unwrap(), "from ex1");
    });
}

#[test]
fn a_task_spawned_on_an_executor_outside_its_loop_is_awaited_in_the_free_block_on() {
    watchdog(|| {
        let ex = Executor::new();
        let answer = nestloop::block_on(async { ex.spawn(async { 6 * 7 }).await.unwrap() });
        assert_eq!(answer, 42);
    });
}

#[test]
fn a_task_another_thread_spawns_on_an_executor_without_a_loop_runs_under_the_free_block_on() {
    watchdog(|| {
        let ex = Executor::new();
        let spawner = ex.spawner();
        // Moved in from the executor's injection queue through the thread's
        // list of executors with work from other threads.
        let handle = std::thread::spawn(move || spawner.spawn(async { 5 }))
            .join()
            .unwrap();
        assert_eq!(nestloop::block_on(handle).unwrap(), 5);
        assert_eq!(ex.task_count(), 0);
    });
}

#[test]
fn a_hundred_idle_executors_do_not_keep_a_loop_from_its_work() {
    watchdog(|| {
        let idle: Vec<_> = (0..100)
            .map(|_| {
                let ex = Executor::new();
                let pending = ex.spawn(std::future::pending::<()>());
                (ex, pending)
            })
            .collect();
        let ex = Executor::new();
        let tasks: Vec<_> = (0..100_u32).map(|i| ex.spawn(async move { i })).collect();
        let sum: u32 = ex.block_on(async {
            let mut sum = 0;
            for task in tasks {
                sum += task.await.unwrap();
            }
            sum
        });
        assert_eq!(sum, 4950);
        assert!(idle.iter().all(|(ex, _)| ex.task_count() == 1));
    });
}

#[test]
fn executor_current_names_the_owner_at_every_level() {
    watchdog(|| {
        let a = Executor::new();
        let b = Executor::new();
        let (a2, b2) = (a.clone(), b.clone());
        a.block_on(async move {
            assert!(Executor::current().unwrap().ptr_eq(&a2));
            let (a3, b3) = (a2.clone(), b2.clone());
            b2.block_on(async move {
                assert!(Executor::current().unwrap().ptr_eq(&b3));
                let a_task = a3.spawn(async { Executor::current().unwrap() });
                // Polled by B's loop, owned by A.
                let owner = b3.block_on(a_task).unwrap();
                assert!(owner.ptr_eq(&a3));
            });
        });
    });
}

#[test]
fn dropping_one_executor_leaves_the_other_running() {
    watchdog(|| {
        let a = Executor::new();
        let b = Executor::new();
        let _pending = b.spawn(std::future::pending::<()>());
        let handle = a.spawn(async { 1 });
        drop(b);
        assert_eq!(a.block_on(handle).unwrap(), 1);
    });
}

#[test]
fn a_task_spawned_outside_any_loop_runs_in_another_executors_block_on() {
    let v = watchdog(|| {
        // Lands on the thread's default executor...
        let handle = nestloop::spawn(async {
            nestloop::yield_now().await;
            6 * 7
        });
        // ...which every loop on the thread drives.
        Executor::new().block_on(handle).unwrap()
    });
    assert_eq!(v, 42);
}

#[test]
fn a_task_spawned_outside_any_loop_runs_in_a_nested_call_of_an_app_executor() {
    let (v, owner_is_default) = watchdog(|| {
        let handle = nestloop::spawn(async {
            let owner = Executor::current().unwrap();
            nestloop::time::sleep(std::time::Duration::from_millis(1)).await;
            (7, owner)
        });
        let app = Executor::new();
        let inner = app.clone();
        let (v, owner) = app.block_on(async move {
            inner
                .spawn(async move { nestloop::block_on(handle).unwrap() })
                .await
                .unwrap()
        });
        // The task still belongs to the default executor, whoever polls it.
        (v, !owner.ptr_eq(&app))
    });
    assert_eq!(v, 7);
    assert!(owner_is_default);
}

#[test]
fn run_until_stalled_of_another_executor_runs_the_default_executors_tasks() {
    let ran = watchdog(|| {
        let handle = nestloop::spawn(async { 5 });
        // run_until_stalled is a loop too (R1): it drives the default
        // executor along with its own.
        let polls = Executor::new().run_until_stalled();
        (polls, handle.is_finished())
    });
    assert_eq!(ran, (1, true));
}
