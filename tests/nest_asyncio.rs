//! The scenarios of nest-asyncio's own test suite, restated for nestloop.

mod common;

use std::time::{Duration, Instant};

use common::watchdog;
use nestloop::time::{sleep, timeout};
use nestloop::{block_on, depth, spawn};

async fn after(ms: u64, value: u32) -> u32 {
    sleep(Duration::from_millis(ms)).await;
    value
}

#[test]
fn three_levels_of_nesting_mixed_with_plain_awaits() {
    let result = watchdog(|| {
        block_on(async {
            let r1 = block_on(async {
                // Level 2 nests level 3 and awaits in between.
                let a = block_on(after(5, 1));
                let b = after(5, 10).await;
                assert_eq!(depth(), 2);
                a + b
            });
            let r2 = after(5, 2).await;
            let r3 = block_on(after(5, 3));
            let r4 = after(5, 4).await;
            (r1, r2, r3, r4)
        })
    });
    assert_eq!(result, (11, 2, 3, 4));
}

#[test]
fn block_on_of_an_already_spawned_task_from_inside_a_task() {
    let v = watchdog(|| {
        block_on(async {
            spawn(async {
                let task = spawn(after(10, 42));
                block_on(task).unwrap()
            })
            .await
            .unwrap()
        })
    });
    assert_eq!(v, 42);
}

#[test]
fn block_on_of_a_join_over_a_spawned_task() {
    let v = watchdog(|| {
        block_on(async {
            let gathered = futures::future::join_all(vec![spawn(after(5, 42)), spawn(after(1, 7))]);
            block_on(gathered)
                .into_iter()
                .map(Result::unwrap)
                .collect::<Vec<_>>()
        })
    });
    assert_eq!(v, vec![42, 7]);
}

#[test]
fn a_timeout_inside_a_nested_call_elapses_and_propagates() {
    let outcome = watchdog(|| {
        block_on(async {
            let nested = spawn(async {
                // The nested call's timeout elapses; its error propagates out.
                block_on(timeout(Duration::from_millis(10), after(100, 1)))
            });
            nested.await.unwrap()
        })
    });
    assert!(outcome.is_err());
}

#[test]
fn two_nested_calls_side_by_side_in_one_outer_loop() {
    let (results, elapsed) = watchdog(|| {
        let start = Instant::now();
        let results = block_on(async {
            // Like asyncio.gather of two coroutines that each nest a call:
            // the second finishes first, results stay in order.
            let f1 = spawn(async {
                block_on(sleep(Duration::from_millis(40)));
                4
            });
            let f2 = spawn(async {
                block_on(sleep(Duration::from_millis(20)));
                2
            });
            vec![f1.await.unwrap(), f2.await.unwrap()]
        });
        (results, start.elapsed())
    });
    assert_eq!(results, vec![4, 2]);
    // Both ran concurrently: the inner one nested in the outer's call.
    assert!(elapsed < Duration::from_millis(200), "{elapsed:?}");
}

#[test]
fn two_nested_calls_side_by_side_in_one_future() {
    let results = watchdog(|| {
        block_on(async {
            let f1 = async { block_on(after(20, 4)) };
            let f2 = async { block_on(after(10, 2)) };
            let (a, b) = futures::future::join(f1, f2).await;
            vec![a, b]
        })
    });
    assert_eq!(results, vec![4, 2]);
}
