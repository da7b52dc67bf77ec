//! A panic at every point a user's code runs: the executor stays consistent
//! and usable afterwards, and nothing leaks (drop counters).

mod common;

use std::future::{pending, poll_fn};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::pin::Pin;
use std::task::{Context, Poll};

use common::{DropCounter, PanicOnDrop, expect_panic, watchdog};
use nestloop::{Executor, block_on, depth, yield_now};

/// Spawns a few ordinary tasks and checks they all run: the executor works.
fn assert_usable(ex: &Executor) {
    let handles: Vec<_> = (0..3)
        .map(|i| {
            ex.spawn(async move {
                yield_now().await;
                i
            })
        })
        .collect();
    let sum: usize = ex.block_on(async {
        let mut sum = 0;
        for h in handles {
            sum += h.await.unwrap();
        }
        sum
    });
    assert_eq!(sum, 3);
    assert_eq!(depth(), 0);
}

#[test]
fn panic_in_a_tasks_poll() {
    watchdog(|| {
        let ex = Executor::new();
        let drops = DropCounter::new();
        let token = drops.token();
        let h = ex.spawn(async move {
            let _token = token;
            yield_now().await;
            panic!("poll boom");
        });
        assert!(ex.block_on(h).unwrap_err().is_panic());
        assert_eq!(drops.dropped(), 1);
        assert_eq!(ex.task_count(), 0);
        assert_usable(&ex);
    });
}

#[test]
fn panic_in_a_task_futures_drop_during_abort() {
    watchdog(|| {
        let ex = Executor::new();
        let drops = DropCounter::new();
        let guard = PanicOnDrop::counted("drop boom", drops.token());
        let h = ex.spawn(async move {
            let _guard = guard;
            pending::<()>().await;
        });
        ex.run_until_stalled();
        h.abort(); // the panic in the destructor stays inside abort
        assert_eq!(drops.dropped(), 1);
        assert!(ex.block_on(h).unwrap_err().is_cancelled());
        assert_usable(&ex);
    });
}

#[test]
fn panic_in_task_futures_drops_during_executor_drop() {
    watchdog(|| {
        let ex = Executor::new();
        let drops = DropCounter::new();
        let mut handles = Vec::new();
        for _ in 0..5 {
            let guard = PanicOnDrop::counted("drop boom", drops.token());
            handles.push(ex.spawn(async move {
                let _guard = guard;
                pending::<()>().await;
            }));
        }
        ex.run_until_stalled();
        // Every destructor panics; none escapes, and all futures go.
        drop(ex);
        assert_eq!(drops.dropped(), 5);
        for h in handles {
            assert!(block_on(h).unwrap_err().is_cancelled());
        }
    });
}

#[test]
fn panic_in_a_task_futures_drop_during_completion() {
    watchdog(|| {
        let ex = Executor::new();
        let drops = DropCounter::new();
        let guard = PanicOnDrop::counted("drop boom", drops.token());
        let h = ex.spawn(async move {
            let _keep = &guard;
            yield_now().await;
            5
        });
        let err = ex.block_on(h).unwrap_err();
        assert_eq!(err.to_string(), "task panicked with message \"drop boom\"");
        assert_eq!(drops.dropped(), 1);
        assert_usable(&ex);
    });
}

#[test]
fn panic_in_a_block_on_future_at_each_depth() {
    watchdog(|| {
        let ex = Executor::new();
        let drops = DropCounter::new();
        for at in 1..=6 {
            fn level(ex: &Executor, now: usize, at: usize, drops: &DropCounter) -> usize {
                let token = drops.token();
                let (ex2, d) = (ex.clone(), drops.clone());
                ex.block_on(async move {
                    let _token = token;
                    if now == at {
                        panic!("depth {now}");
                    }
                    // Half the levels nest from a task, half from the future.
                    if now.is_multiple_of(2) {
                        let ex3 = ex2.clone();
                        ex2.spawn(async move { level(&ex3, now + 1, at, &d) })
                            .await
                            .unwrap_or(0)
                    } else {
                        level(&ex2, now + 1, at, &d)
                    }
                })
            }
            let before = drops.dropped();
            let result = catch_unwind(AssertUnwindSafe(|| level(&ex, 1, at, &drops)));
            // Panics from odd levels' own futures reach the top; a task
            // boundary turns the rest into a JoinError (returned as 0).
            if let Err(payload) = result {
                assert!(common::panic_message(&*payload).starts_with("depth"));
            }
            assert_eq!(depth(), 0);
            assert_eq!(
                drops.dropped() - before,
                at,
                "every level's future dropped once"
            );
            assert_eq!(ex.task_count(), 0);
        }
        assert_usable(&ex);
    });
}

#[test]
fn panic_in_a_user_waker_called_by_a_future() {
    watchdog(|| {
        let ex = Executor::new();
        let h = ex.spawn(async {
            let waker = waker_fn::waker_fn(|| panic!("user waker boom"));
            waker.wake_by_ref(); // inside the task's poll
        });
        let err = ex.block_on(h).unwrap_err();
        assert_eq!(
            err.to_string(),
            "task panicked with message \"user waker boom\""
        );
        assert_usable(&ex);
    });
}

#[test]
fn panic_in_a_join_handle_awaiters_waker() {
    watchdog(|| {
        let ex = Executor::new();
        let drops = DropCounter::new();
        let token = drops.token();
        let mut handle = ex.spawn(async move {
            let _token = token;
            yield_now().await;
            7
        });
        // Register a waker that panics when the task completes and wakes it.
        let panicking = waker_fn::waker_fn(|| panic!("awaiter boom"));
        let pending_now = Pin::new(&mut handle)
            .poll(&mut Context::from_waker(&panicking))
            .is_pending();
        assert!(pending_now);
        // Two yields: the task (queued before each) runs twice, in wake order.
        let msg = expect_panic(|| {
            ex.block_on(async {
                yield_now().await;
                yield_now().await;
            })
        });
        assert_eq!(msg, "awaiter boom");
        // The task completed and left the executor before the wake.
        assert_eq!(drops.dropped(), 1);
        assert_eq!(ex.task_count(), 0);
        assert!(handle.is_finished());
        assert_eq!(ex.block_on(handle).unwrap(), 7);
        assert_usable(&ex);
    });
}

#[test]
fn panic_in_an_unclaimed_outputs_drop() {
    watchdog(|| {
        let ex = Executor::new();
        let drops = DropCounter::new();
        let token = drops.token();
        drop(ex.spawn(async move { PanicOnDrop::counted("drop boom", token) }));
        ex.run_until_stalled();
        assert_eq!(drops.dropped(), 1);
        assert_usable(&ex);
    });
}

#[test]
fn panic_in_a_block_on_futures_own_drop() {
    watchdog(|| {
        let ex = Executor::new();
        let drops = DropCounter::new();
        let guard = PanicOnDrop::counted("drop boom", drops.token());
        let msg = expect_panic(|| {
            ex.block_on(poll_fn(move |_| {
                let _keep = &guard;
                Poll::Ready(1)
            }))
        });
        assert_eq!(msg, "drop boom");
        assert_eq!(drops.dropped(), 1);
        assert_usable(&ex);
    });
}
