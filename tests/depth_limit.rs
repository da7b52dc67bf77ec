//! R10: nesting ends in a clean panic before the stack overflows.
//!
//! .ci/run also runs this file in release mode.

mod common;

use std::hint::black_box;
use std::time::Duration;

use common::{expect_panic, watchdog_with};
use nestloop::{Executor, depth};

const MIB: usize = 1 << 20;

/// Nests one level per call: a `block_on` whose future awaits a task that
/// nests the next level. Returns the deepest depth reached, or the message
/// of the panic that stopped the nesting (caught by the innermost task and
/// passed up as a value, so it is reported once).
fn nest_through_tasks(ex: &Executor, target: usize, frame_bytes: usize) -> Result<usize, String> {
    let ex2 = ex.clone();
    ex.block_on(async move {
        let level = depth();
        if level >= target {
            return Ok(level);
        }
        let ex3 = ex2.clone();
        let task = ex2.spawn(async move {
            if frame_bytes > 0 {
                big_frame(|| nest_through_tasks(&ex3, target, frame_bytes))
            } else {
                nest_through_tasks(&ex3, target, frame_bytes)
            }
        });
        match task.await {
            Ok(result) => result,
            Err(err) => Err(err.to_string()),
        }
    })
}

/// Runs `next` below a 16 KiB stack frame, like user code with big locals.
#[inline(never)]
fn big_frame<R>(next: impl FnOnce() -> R) -> R {
    let big = [1u8; 16 * 1024];
    black_box(&big);
    let result = next();
    black_box(&big);
    result
}

/// Nests plain `block_on` calls (each in the future of the one below) until
/// a panic stops it; returns the panic's message, the depth reached and the
/// depth after unwinding.
fn nest_plain_until_it_panics() -> (String, usize, usize) {
    use std::cell::Cell;
    thread_local!(static DEEPEST: Cell<usize> = const { Cell::new(0) });
    fn nest() -> usize {
        DEEPEST.with(|d| d.set(d.get().max(depth())));
        nestloop::block_on(async { nest() })
    }
    let msg = expect_panic(nest);
    (msg, DEEPEST.with(Cell::get), depth())
}

#[test]
fn by_default_the_stack_ends_nesting_in_a_clean_panic_on_any_thread_size() {
    for stack in [256 * 1024, 512 * 1024, MIB, 2 * MIB, 4 * MIB] {
        let msg = watchdog_with(stack, Duration::from_secs(60), || {
            nest_through_tasks(&common::nesting(), usize::MAX, 0)
        })
        .unwrap_err();
        assert!(msg.contains("nestloop: not enough stack"), "{stack}: {msg}");

        let (msg, deepest, after) =
            watchdog_with(stack, Duration::from_secs(60), nest_plain_until_it_panics);
        assert!(
            msg.starts_with("nestloop: not enough stack"),
            "{stack}: {msg}"
        );
        assert!(deepest > 1, "{stack}: only {deepest} levels");
        assert_eq!(after, 0);
    }
}

#[test]
fn a_2_mib_stack_holds_more_levels_than_nest_asyncio_reaches() {
    // nest-asyncio stops at about 141 levels (Python's recursion limit).
    let (_, deepest, _) =
        watchdog_with(2 * MIB, Duration::from_secs(60), nest_plain_until_it_panics);
    assert!(deepest > 141, "only {deepest} levels");
    let reached = watchdog_with(2 * MIB, Duration::from_secs(60), || {
        nest_through_tasks(&common::nesting(), 200, 0)
    });
    assert_eq!(reached, Ok(200));
}

#[test]
fn a_recursion_200_deep_through_block_on_finishes_on_an_8_mib_stack() {
    fn sum_to(n: u64) -> u64 {
        if n == 0 {
            return 0;
        }
        // A recursive helper that waits for async work at every level.
        n + nestloop::block_on(async move {
            nestloop::yield_now().await;
            sum_to(n - 1)
        })
    }
    let sum = watchdog_with(8 * MIB, Duration::from_secs(60), || sum_to(200));
    assert_eq!(sum, 200 * 201 / 2);
}

#[test]
fn tasks_that_all_nest_a_sleep_before_the_first_timer_fires_finish_on_a_2_mib_stack() {
    const TASKS: usize = 300;
    // With feature async-io each loop runs inside `async_io::block_on`,
    // whose frame adds about 2 KiB per level in a debug build.
    let stack = if cfg!(feature = "async-io") {
        3 * MIB
    } else {
        2 * MIB
    };
    let (finished, deepest) = watchdog_with(stack, Duration::from_secs(60), || {
        let ex = common::nesting();
        let deepest = std::rc::Rc::new(std::cell::Cell::new(0));
        // Closed once every task has nested, so none of the nested calls
        // can return before that.
        let (gate, closed) = async_channel::bounded::<()>(1);
        let gate = std::rc::Rc::new(std::cell::RefCell::new(Some(gate)));
        let handles: Vec<_> = (0..TASKS)
            .map(|i| {
                let (deepest, gate, closed) = (deepest.clone(), gate.clone(), closed.clone());
                ex.spawn(async move {
                    if i == TASKS - 1 {
                        gate.borrow_mut().take();
                    }
                    // A synchronous helper that sleeps, nested in each task.
                    nestloop::block_on(async {
                        deepest.set(deepest.get().max(depth()));
                        nestloop::time::sleep(Duration::from_millis(2)).await;
                        let _ = closed.recv().await;
                    });
                })
            })
            .collect();
        let finished = ex.block_on(async {
            let mut finished = 0;
            for handle in handles {
                handle.await.unwrap();
                finished += 1;
            }
            finished
        });
        (finished, deepest.get())
    });
    assert_eq!(finished, TASKS);
    assert_eq!(deepest, TASKS + 1);
}

#[test]
fn depth_1000_on_an_8_mib_stack() {
    let reached = watchdog_with(8 * MIB, Duration::from_secs(120), || {
        let ex = Executor::builder().fibers(false).max_depth(1000).build();
        let reached = nest_through_tasks(&ex, 1000, 0);
        let beyond = nest_through_tasks(&ex, 1001, 0);
        (reached, beyond)
    });
    assert_eq!(reached.0, Ok(1000));
    let msg = reached.1.unwrap_err();
    assert!(msg.contains("loop number 1001"), "{msg}");
}

#[test]
fn the_stack_check_stops_nesting_before_an_overflow() {
    // No depth limit, and user code with 16 KiB frames at every level: the
    // stack check must end it with a panic, not a stack overflow.
    let result = watchdog_with(2 * MIB, Duration::from_secs(60), || {
        let ex = Executor::builder()
            .fibers(false)
            .max_depth(usize::MAX)
            .build();
        nest_through_tasks(&ex, usize::MAX, 16 * 1024)
    });
    let msg = result.unwrap_err();
    assert!(
        msg.starts_with("task panicked with message \"nestloop: not enough stack"),
        "{msg}"
    );
}

#[test]
fn max_depth_is_per_executor_and_counts_every_loop() {
    let msg = watchdog_with(2 * MIB, Duration::from_secs(60), || {
        let roomy = common::nesting();
        let tight = Executor::builder().fibers(false).max_depth(2).build();
        roomy.block_on(async move {
            roomy_nest();
            fn roomy_nest() {
                // depth 2 on the roomy executor, then `tight` at depth 3.
                nestloop::block_on(async {})
            }
            let t = tight.clone();
            expect_panic(move || t.block_on(async { nestloop::block_on(async {}) }))
        })
    });
    assert!(msg.contains("loop number 3"), "{msg}");
    assert!(msg.contains("max_depth is 2"), "{msg}");
}
