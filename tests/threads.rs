//! R7: wakes and spawns from other threads.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::thread;
use std::time::Duration;

use common::{thread_cpu_time, watchdog};
use futures::StreamExt;
use futures::channel::{mpsc, oneshot};
use nestloop::{Executor, JoinHandle, Spawner, block_on, depth, spawn};

fn assert_send_sync<T: Send + Sync>() {}
fn assert_send<T: Send>() {}

#[test]
fn handles_and_wakers_cross_threads() {
    assert_send_sync::<Spawner>();
    assert_send_sync::<std::task::Waker>();
    assert_send::<JoinHandle<u32>>();
    assert_send_sync::<nestloop::JoinError>();
    assert_send::<nestloop::YieldNow>();
}

#[test]
fn a_wake_from_another_thread_unparks_a_loop_at_depth_three() {
    let v = watchdog(|| {
        block_on(async {
            spawn(async {
                block_on(async {
                    block_on(async {
                        assert_eq!(depth(), 3);
                        let (tx, rx) = oneshot::channel();
                        let t = thread::spawn(move || {
                            thread::sleep(Duration::from_millis(30));
                            tx.send(77).unwrap();
                        });
                        let v = rx.await.unwrap();
                        t.join().unwrap();
                        v
                    })
                })
            })
            .await
            .unwrap()
        })
    });
    assert_eq!(v, 77);
}

#[test]
fn a_wake_from_another_thread_reaches_an_outer_task_during_a_nested_call() {
    watchdog(|| {
        let ex = Executor::new();
        let ex2 = ex.clone();
        ex.block_on(async move {
            let (tx, mut rx) = mpsc::unbounded::<u32>();
            // An outer task fed by another thread.
            let consumer = ex2.spawn(async move {
                let mut sum = 0;
                while let Some(v) = rx.next().await {
                    sum += v;
                }
                sum
            });
            let producer = thread::spawn(move || {
                for i in 1..=100 {
                    tx.unbounded_send(i).unwrap();
                    if i % 10 == 0 {
                        thread::sleep(Duration::from_millis(1));
                    }
                }
            });
            // The nested call waits for the consumer, which only other-thread
            // wakes can move forward.
            let sum = ex2.block_on(consumer).unwrap();
            producer.join().unwrap();
            assert_eq!(sum, 5050);
        });
    });
}

#[test]
fn spawner_tasks_run_on_the_executor_thread() {
    watchdog(|| {
        let ex = Executor::new();
        let home = thread::current().id();
        let spawner = ex.spawner();
        let ran = Arc::new(AtomicUsize::new(0));
        let workers: Vec<_> = (0..4)
            .map(|_| {
                let spawner = spawner.clone();
                let ran = ran.clone();
                thread::spawn(move || {
                    (0..25)
                        .map(|_| {
                            let ran = ran.clone();
                            spawner.spawn(async move {
                                ran.fetch_add(1, Ordering::SeqCst);
                                thread::current().id()
                            })
                        })
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        let handles: Vec<_> = workers
            .into_iter()
            .flat_map(|w| w.join().unwrap())
            .collect();
        let ids = ex.block_on(futures::future::join_all(handles));
        assert_eq!(ids.len(), 100);
        assert!(ids.into_iter().all(|id| id.unwrap() == home));
        assert_eq!(ran.load(Ordering::SeqCst), 100);
        assert_eq!(ex.task_count(), 0);
    });
}

#[test]
fn a_remote_spawn_wakes_a_parked_nested_loop() {
    watchdog(|| {
        let ex = Executor::new();
        let spawner = ex.spawner();
        let ex2 = ex.clone();
        let v = ex.block_on(async move {
            let (tx, rx) = oneshot::channel::<JoinHandle<u32>>();
            let t = thread::spawn(move || {
                thread::sleep(Duration::from_millis(30));
                tx.send(spawner.spawn(async { 5 })).unwrap();
            });
            let v = ex2.block_on(async move { rx.await.unwrap().await.unwrap() });
            t.join().unwrap();
            v
        });
        assert_eq!(v, 5);
    });
}

#[test]
fn a_join_handle_can_be_awaited_on_another_thread() {
    watchdog(|| {
        let ex = Executor::new();
        let (tx, rx) = oneshot::channel::<()>();
        let handle = ex.spawn(async move {
            rx.await.unwrap();
            "result"
        });
        let waiter = thread::spawn(move || futures::executor::block_on(handle).unwrap());
        ex.block_on(async move {
            tx.send(()).unwrap();
            nestloop::yield_now().await;
        });
        assert_eq!(waiter.join().unwrap(), "result");
    });
}

/// R7 with R8: a loop whose only wakes come from another thread, spaced
/// out, sleeps between them; the pause a stream of wakes gets (a few µs,
/// with work ready) never turns into a spin.
#[test]
fn a_loop_waiting_for_another_thread_sleeps_instead_of_spinning() {
    watchdog(|| {
        let Some(before) = thread_cpu_time() else {
            return; // not Linux: nothing to measure with
        };
        let (tx, rx) = mpsc::unbounded::<u32>();
        let sender = thread::spawn(move || {
            for i in 0..20 {
                thread::sleep(Duration::from_millis(15));
                tx.unbounded_send(i).unwrap();
            }
        });
        let sum = block_on(rx.fold(0, |acc, v| async move { acc + v }));
        sender.join().unwrap();
        assert_eq!(sum, (0..20).sum::<u32>());
        let used = thread_cpu_time().unwrap() - before;
        assert!(
            used < Duration::from_millis(100),
            "waiting 300 ms for another thread used {used:?} of CPU"
        );
    });
}
