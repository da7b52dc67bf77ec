//! R4: panics go to their owner, and leave the executor consistent.

mod common;

use std::cell::Cell;
use std::panic::{AssertUnwindSafe, catch_unwind, panic_any};
use std::rc::Rc;

use common::{DropCounter, PanicOnDrop, expect_panic, panic_message, watchdog};
use futures::channel::oneshot;
use nestloop::{Executor, block_on, depth, spawn, yield_now};

#[test]
fn a_panicking_task_completes_its_handle_with_the_panic() {
    watchdog(|| {
        let ex = Executor::new();
        let bad = ex.spawn(async {
            yield_now().await;
            panic!("task boom");
        });
        let good = ex.spawn(async { 1 });
        let err = ex.block_on(bad).unwrap_err();
        assert!(err.is_panic());
        assert!(!err.is_cancelled());
        assert_eq!(err.to_string(), "task panicked with message \"task boom\"");
        assert_eq!(panic_message(&*err.into_panic()), "task boom");
        // The executor keeps running.
        assert_eq!(ex.block_on(good).unwrap(), 1);
        assert_eq!(ex.block_on(ex.spawn(async { 2 })).unwrap(), 2);
        assert_eq!(ex.task_count(), 0);
    });
}

#[test]
fn a_panicking_tasks_future_is_dropped_before_its_handle_resolves() {
    watchdog(|| {
        let ex = Executor::new();
        let drops = DropCounter::new();
        let token = drops.token();
        let handle = ex.spawn(async move {
            let _token = token;
            yield_now().await;
            panic!("boom");
        });
        let d = drops.clone();
        ex.block_on(async move {
            let err = handle.await.unwrap_err();
            assert!(err.is_panic());
            assert_eq!(
                d.dropped(),
                1,
                "future still alive when the handle resolved"
            );
        });
    });
}

#[test]
fn a_block_on_panic_comes_out_of_that_block_on() {
    watchdog(|| {
        let ex = Executor::new();
        let msg = expect_panic(|| ex.block_on(async { panic!("root boom") }));
        assert_eq!(msg, "root boom");
        assert_eq!(depth(), 0);
        assert_eq!(ex.block_on(async { 3 }), 3);
    });
}

#[test]
fn an_outer_futures_panic_polled_by_a_nested_loop_comes_out_of_the_outer_block_on() {
    watchdog(|| {
        let ex = common::nesting();
        let nested_result = Rc::new(Cell::new(None));
        let nr = nested_result.clone();
        let payload = catch_unwind(AssertUnwindSafe(|| {
            ex.block_on(async move {
                let (tx, rx) = oneshot::channel::<u32>();
                let _task = spawn(async move {
                    // The nested loop polls the outer future, which panics;
                    // this call must not see that panic.
                    let v = block_on(async {
                        yield_now().await;
                        yield_now().await;
                        rx.await.unwrap_or(99)
                    });
                    nr.set(Some(v));
                });
                yield_now().await;
                assert_eq!(depth(), 2);
                drop(tx);
                panic_any(1234_u32);
            })
        }))
        .unwrap_err();
        assert_eq!(payload.downcast_ref::<u32>(), Some(&1234));
        assert_eq!(
            nested_result.get(),
            Some(99),
            "nested call did not finish normally"
        );
        assert_eq!(depth(), 0);
        assert_eq!(ex.block_on(async { 5 }), 5);
    });
}

#[test]
fn a_panic_in_a_nested_block_on_goes_to_the_task_that_called_it() {
    watchdog(|| {
        let ex = Executor::new();
        let ex2 = ex.clone();
        let out = ex.block_on(async move {
            let task = ex2.spawn(async { block_on(async { panic!("inner boom") }) });
            let err = task.await.unwrap_err();
            (err.to_string(), depth())
        });
        assert_eq!(out.0, "task panicked with message \"inner boom\"");
        assert_eq!(out.1, 1);
    });
}

#[test]
fn panics_at_every_depth_unwind_cleanly() {
    watchdog(|| {
        let ex = Executor::new();
        for panic_depth in 1..=5 {
            fn nest(level: usize, panic_depth: usize) -> usize {
                block_on(async move {
                    assert_eq!(depth(), level);
                    if level == panic_depth {
                        panic!("at {level}");
                    }
                    nest(level + 1, panic_depth)
                })
            }
            let msg = expect_panic(|| ex.block_on(async move { nest(2, panic_depth + 1) }));
            assert_eq!(msg, format!("at {}", panic_depth + 1));
            assert_eq!(depth(), 0);
        }
        assert_eq!(ex.block_on(async { depth() }), 1);
    });
}

#[test]
fn a_panic_while_dropping_an_unclaimed_output_is_contained() {
    watchdog(|| {
        let ex = Executor::new();
        drop(ex.spawn(async { PanicOnDrop::new("output drop boom") })); // detached: output dropped by the executor
        let handle = ex.spawn(async { PanicOnDrop::new("output drop boom") });
        ex.run_until_stalled();
        drop(handle); // completed, never claimed: dropped with the handle
        assert_eq!(ex.block_on(async { 1 }), 1);
        assert_eq!(ex.task_count(), 0);
    });
}

#[test]
fn a_panic_while_dropping_a_completed_future_is_reported_as_a_panic() {
    watchdog(|| {
        let ex = Executor::new();
        let guard = PanicOnDrop::new("future drop boom");
        let handle = ex.spawn(async move {
            let _guard = &guard;
            7
        });
        let err = ex.block_on(handle).unwrap_err();
        assert_eq!(
            err.to_string(),
            "task panicked with message \"future drop boom\""
        );
    });
}

#[test]
fn the_executor_is_consistent_after_a_task_panics_in_a_nested_loop() {
    watchdog(|| {
        let ex = Executor::new();
        let ex2 = ex.clone();
        let count = ex.block_on(async move {
            let a = ex2.spawn(async { panic!("a") });
            let b = ex2.spawn(async { 2 });
            let ex3 = ex2.clone();
            let nested = ex2.spawn(async move {
                ex3.block_on(async {
                    yield_now().await;
                    yield_now().await;
                })
            });
            nested.await.unwrap();
            assert!(a.await.unwrap_err().is_panic());
            b.await.unwrap()
        });
        assert_eq!(count, 2);
        assert_eq!(ex.task_count(), 0);
        assert_eq!(depth(), 0);
    });
}

#[test]
fn a_panicking_waker_does_not_keep_other_due_timers_from_firing() {
    watchdog(|| {
        let ex = Executor::new();
        // Margins wide enough for Miri's slow clock.
        let deadline = std::time::Instant::now() + std::time::Duration::from_millis(200);
        let other = ex.spawn(nestloop::time::sleep_until(deadline));
        let msg = expect_panic(|| {
            ex.block_on(async {
                let mut sleep = Box::pin(nestloop::time::sleep_until(deadline));
                // Register the timer with a user waker that panics when woken.
                let waker = waker_fn::waker_fn(|| panic!("waker boom"));
                let mut cx = std::task::Context::from_waker(&waker);
                assert!(sleep.as_mut().poll(&mut cx).is_pending());
                nestloop::time::sleep(std::time::Duration::from_millis(400)).await;
            })
        });
        assert_eq!(msg, "waker boom");
        assert_eq!(depth(), 0);
        // The other timer with the same deadline still fired: its task was
        // woken (a lost wake would leave this waiting until the watchdog).
        ex.block_on(other).unwrap();
    });
}
