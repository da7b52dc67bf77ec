//! `JoinSet`: results in completion order, abort and drop semantics as in
//! tokio, cancel safety of `join_next`, and nesting.

mod common;

use std::cell::{Cell, RefCell};
use std::rc::Rc;
use std::time::Duration;

use common::watchdog;
use futures::future::{Either, select};
use nestloop::time::sleep;
use nestloop::{Executor, JoinSet, block_on, yield_now};

/// Counts drops of the futures that hold it.
#[derive(Clone, Default)]
struct Drops(Rc<Cell<usize>>);

impl Drops {
    fn guard(&self) -> DropGuard {
        DropGuard(self.0.clone())
    }
    fn count(&self) -> usize {
        self.0.get()
    }
}

struct DropGuard(Rc<Cell<usize>>);

/// Pends forever, holding `guard` until it is dropped.
async fn hold<T>(guard: DropGuard) -> T {
    let _guard = guard;
    std::future::pending().await
}

impl Drop for DropGuard {
    fn drop(&mut self) {
        self.0.set(self.0.get() + 1);
    }
}

#[test]
fn results_come_back_in_completion_order() {
    watchdog(|| {
        block_on(async {
            let mut set = JoinSet::new();
            // Spawned in one order, finishing in another (yields, not timers,
            // so the order is exact).
            for yields in [5, 1, 4, 0, 3, 2] {
                set.spawn(async move {
                    for _ in 0..yields {
                        yield_now().await;
                    }
                    yields
                });
            }
            assert_eq!(set.len(), 6);
            let mut order = Vec::new();
            while let Some(result) = set.join_next().await {
                order.push(result.unwrap());
                assert_eq!(set.len(), 6 - order.len());
            }
            assert_eq!(order, [0, 1, 2, 3, 4, 5]);
            assert!(set.is_empty());
            assert!(set.join_next().await.is_none());
        });
    });
}

#[test]
fn abort_all_keeps_the_tasks_and_join_next_returns_them_cancelled() {
    watchdog(|| {
        let ex = Executor::new();
        let drops = Drops::default();
        let mut set = JoinSet::new();
        set.spawn_on(async { "done" }, &ex);
        ex.run_until_stalled();
        for _ in 0..3 {
            set.spawn_on(hold(drops.guard()), &ex);
        }
        ex.run_until_stalled();
        set.abort_all();
        // Dropped at once (tokio defers this to the scheduler), still in the set.
        assert_eq!(drops.count(), 3);
        assert_eq!(set.len(), 4);
        let (mut done, mut cancelled) = (0, 0);
        ex.block_on(async {
            while let Some(result) = set.join_next().await {
                match result {
                    Ok(out) => {
                        assert_eq!(out, "done");
                        done += 1;
                    }
                    Err(err) => {
                        assert!(err.is_cancelled());
                        cancelled += 1;
                    }
                }
            }
        });
        assert_eq!((done, cancelled), (1, 3));
    });
}

#[test]
fn dropping_the_set_aborts_its_tasks_and_detach_all_does_not() {
    watchdog(|| {
        let ex = Executor::new();
        let drops = Drops::default();
        let mut set = JoinSet::new();
        for _ in 0..3 {
            set.spawn_on(hold::<()>(drops.guard()), &ex);
        }
        ex.run_until_stalled();
        assert_eq!(ex.task_count(), 3);
        drop(set);
        assert_eq!(drops.count(), 3);
        assert_eq!(ex.task_count(), 0);

        let ran = Rc::new(Cell::new(false));
        let mut set = JoinSet::new();
        let r = ran.clone();
        let aborter = set.spawn_on(async move { r.set(true) }, &ex);
        set.detach_all();
        assert!(set.is_empty());
        drop(set);
        ex.run_until_stalled();
        assert!(ran.get() && aborter.is_finished());
    });
}

#[test]
fn a_task_aborted_while_on_the_stack_is_dropped_when_its_poll_returns() {
    watchdog(|| {
        // The set is dropped by its own task, inside a nested block_on.
        let drops = Drops::default();
        let slot: Rc<RefCell<Option<JoinSet<()>>>> = Rc::default();
        let mut set = JoinSet::new();
        let (s, guard) = (slot.clone(), drops.guard());
        set.spawn(async move {
            let _guard = guard;
            block_on(async { drop(s.borrow_mut().take()) });
            yield_now().await;
            unreachable!("aborted");
        });
        *slot.borrow_mut() = Some(set);
        block_on(async {
            while drops.count() == 0 {
                yield_now().await;
            }
        });
        assert_eq!(drops.count(), 1);
    });
}

#[test]
fn panics_come_back_as_join_errors() {
    watchdog(|| {
        let mut set = JoinSet::new();
        set.spawn(async { panic!("boom") });
        set.spawn(async { 1 });
        let results = block_on(async {
            let mut all = Vec::new();
            while let Some(result) = set.join_next().await {
                all.push(result);
            }
            all
        });
        assert!(results[0].as_ref().unwrap_err().is_panic());
        assert_eq!(*results[1].as_ref().unwrap(), 1);
    });
}

#[test]
fn join_next_is_cancel_safe() {
    watchdog(|| {
        block_on(async {
            let mut set = JoinSet::new();
            set.spawn(async {
                sleep(Duration::from_millis(20)).await;
                "late"
            });
            // A join_next that loses a select is dropped: nothing is lost.
            {
                let next = std::pin::pin!(set.join_next());
                let short = std::pin::pin!(sleep(Duration::from_millis(1)));
                assert!(matches!(select(next, short).await, Either::Right(_)));
            }
            assert_eq!(set.len(), 1);
            assert_eq!(set.join_next().await.unwrap().unwrap(), "late");
        });
    });
}

#[test]
fn try_join_next_returns_only_finished_tasks() {
    watchdog(|| {
        let ex = Executor::new();
        let mut set = JoinSet::new();
        assert!(set.try_join_next().is_none());
        set.spawn_on(async { 1 }, &ex);
        set.spawn_on(std::future::pending(), &ex);
        assert!(set.try_join_next().is_none());
        ex.run_until_stalled();
        assert_eq!(set.try_join_next().unwrap().unwrap(), 1);
        assert!(set.try_join_next().is_none());
        assert_eq!(set.len(), 1);
        // A waiter registered after try_join_next is still woken.
        set.abort_all();
        assert!(
            ex.block_on(set.join_next())
                .unwrap()
                .unwrap_err()
                .is_cancelled()
        );
    });
}

#[test]
fn shutdown_aborts_and_empties_the_set() {
    watchdog(|| {
        let drops = Drops::default();
        let mut set = JoinSet::new();
        for _ in 0..4 {
            set.spawn(hold::<()>(drops.guard()));
        }
        block_on(set.shutdown());
        assert!(set.is_empty());
        assert_eq!(drops.count(), 4);
    });
}

#[test]
fn a_nested_block_on_joins_a_set_whose_tasks_outer_loops_run() {
    watchdog(|| {
        let ex = Executor::new();
        let inner = ex.clone();
        let total = ex.block_on(async move {
            let outer = nestloop::spawn(async {
                // Synchronous code in a task waits on a set at depth 2.
                let mut set = JoinSet::new();
                for n in 1..=10_u32 {
                    set.spawn(async move {
                        sleep(Duration::from_millis(u64::from(n % 3))).await;
                        n
                    });
                }
                block_on(async {
                    assert!(nestloop::depth() >= 2);
                    let mut sum = 0;
                    while let Some(n) = set.join_next().await {
                        sum += n.unwrap();
                    }
                    sum
                })
            });
            // A task of another executor, joined by that executor's
            // nested loop, which runs `outer` too (R6).
            let other = Executor::new();
            let mut set = JoinSet::new();
            set.spawn_on(async { 100 }, &other);
            let hundred = other.block_on(set.join_next()).unwrap().unwrap();
            assert!(Executor::current().unwrap().ptr_eq(&inner));
            outer.await.unwrap() + hundred
        });
        assert_eq!(total, 55 + 100);
    });
}

#[test]
fn tasks_from_another_thread_are_joined() {
    watchdog(|| {
        let ex = Executor::new();
        let spawner = ex.spawner();
        let mut set = JoinSet::new();
        std::thread::scope(|s| {
            s.spawn(|| {
                for n in 0..5 {
                    set.push(spawner.spawn(async move { n * 2 }));
                }
            });
        });
        let mut all: Vec<i32> = ex.block_on(async {
            let mut all = Vec::new();
            while let Some(n) = set.join_next().await {
                all.push(n.unwrap());
            }
            all
        });
        all.sort_unstable();
        assert_eq!(all, [0, 2, 4, 6, 8]);
    });
}

#[test]
fn a_thousand_tasks_are_joined_in_completion_order() {
    watchdog(|| {
        block_on(async {
            let mut set = JoinSet::new();
            // Task i finishes after (999 - i) % 7 yields; ties in spawn order.
            for i in 0..1000_usize {
                set.spawn(async move {
                    for _ in 0..(999 - i) % 7 {
                        yield_now().await;
                    }
                    i
                });
            }
            let mut order = Vec::new();
            while let Some(i) = set.join_next().await {
                order.push(i.unwrap());
            }
            let mut expected: Vec<usize> = (0..1000).collect();
            expected.sort_by_key(|i| (999 - i) % 7);
            assert_eq!(order, expected);
        });
    });
}

#[test]
fn join_set_is_send_when_its_output_is() {
    fn assert_send<T: Send>() {}
    assert_send::<JoinSet<u32>>();
    let text = format!("{:?}", JoinSet::<u8>::default());
    assert_eq!(text, "JoinSet { len: 0 }");
}
