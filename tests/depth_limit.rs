//! R10: nesting ends in a clean panic before the stack overflows.
//!
//! .ci/run also runs this file in release mode.

mod common;

use std::hint::black_box;
use std::time::Duration;

use common::{expect_panic, watchdog_with};
use nestloop::{DEFAULT_MAX_DEPTH, Executor, depth};

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

#[test]
fn the_default_limit_ends_in_a_clean_panic_on_a_2_mib_stack() {
    let result = watchdog_with(2 * MIB, Duration::from_secs(60), || {
        nest_through_tasks(&Executor::new(), usize::MAX, 0)
    });
    let msg = result.unwrap_err();
    assert!(
        msg.contains("nestloop: nesting depth limit reached"),
        "{msg}"
    );
    assert!(
        msg.contains(&format!("loop number {}", DEFAULT_MAX_DEPTH + 1)),
        "{msg}"
    );
}

#[test]
fn the_default_limit_is_reached_by_plain_nested_block_on_too() {
    let (msg, after) = watchdog_with(2 * MIB, Duration::from_secs(60), || {
        fn nest() -> usize {
            nestloop::block_on(async { nest() })
        }
        (expect_panic(nest), depth())
    });
    assert!(msg.contains("nesting depth limit reached"), "{msg}");
    assert_eq!(after, 0);
}

#[test]
fn depth_1000_on_an_8_mib_stack() {
    let reached = watchdog_with(8 * MIB, Duration::from_secs(120), || {
        let ex = Executor::builder().max_depth(1000).build();
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
        let ex = Executor::builder().max_depth(usize::MAX).build();
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
        let roomy = Executor::new();
        let tight = Executor::builder().max_depth(2).build();
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
