//! `try_block_on` and `InterruptHandle`: Python's KeyboardInterrupt for Rust
//! hosts. The waits here are long sleeps rather than `pending()`, except
//! where a live handle is the call's only way out: a future nothing can
//! wake is reported by the deadlock check, unless an `InterruptHandle`
//! that could end the enclosing `try_block_on` is alive (R9, see
//! `tests/deadlock.rs`).

mod common;

use std::cell::Cell;
use std::rc::Rc;
use std::sync::Once;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use common::{DropCounter, watchdog};
use nestloop::time::sleep;
use nestloop::{Executor, Interrupted, block_on, depth, yield_now};

/// Panic-hook calls in this test binary: an interrupt must make none.
static HOOK_CALLS: AtomicUsize = AtomicUsize::new(0);

fn count_panic_messages() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let default = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            HOOK_CALLS.fetch_add(1, Ordering::SeqCst);
            default(info);
        }));
    });
}

/// Interrupts `ex` from another thread after `after`.
fn interrupt_later(ex: &Executor, after: Duration) -> std::thread::JoinHandle<()> {
    let handle = ex.interrupt_handle();
    std::thread::spawn(move || {
        std::thread::sleep(after);
        handle.interrupt();
    })
}

#[test]
fn an_interrupt_ends_a_parked_try_block_on_promptly_and_drops_its_future() {
    count_panic_messages();
    watchdog(|| {
        let ex = Executor::new();
        let drops = DropCounter::new();
        let token = drops.token();
        let t = interrupt_later(&ex, Duration::from_millis(30));
        let start = Instant::now();
        let result = ex.try_block_on(async move {
            let _token = token;
            sleep(Duration::from_secs(3600)).await;
        });
        assert_eq!(result, Err(Interrupted::new()));
        assert!(start.elapsed() < Duration::from_secs(10));
        assert_eq!(drops.dropped(), 1);
        assert_eq!(depth(), 0);
        t.join().unwrap();
    });
    assert_eq!(
        HOOK_CALLS.load(Ordering::SeqCst),
        0,
        "an interrupt printed a panic"
    );
}

#[test]
fn nested_block_on_calls_unwind_up_to_the_try_block_on() {
    count_panic_messages();
    watchdog(|| {
        let ex = Executor::new();
        let drops = DropCounter::new();
        let depth_seen = Rc::new(Cell::new(0));
        let handle = ex.interrupt_handle();
        let (d, seen) = (drops.clone(), depth_seen.clone());
        let ex2 = ex.clone();
        let result = ex.block_on(async move {
            // try_block_on at depth 2, plain block_on calls at 3, 4 and 5.
            ex2.try_block_on(async move {
                let token = d.token();
                block_on(async move {
                    let _token = token;
                    let token = d.token();
                    block_on(async move {
                        let _token = token;
                        block_on(async move {
                            seen.set(depth());
                            // From another thread, while this loop is parked.
                            let t = std::thread::spawn(move || handle.interrupt());
                            sleep(Duration::from_secs(3600)).await;
                            drop(t);
                        })
                    })
                })
            })
        });
        assert_eq!(result, Err(Interrupted::new()));
        assert_eq!(depth_seen.get(), 5);
        assert_eq!(drops.dropped(), 2, "the nested futures were dropped");
        assert_eq!(depth(), 0);
        // Consistent and usable.
        assert_eq!(ex.block_on(ex.spawn(async { 3 })).unwrap(), 3);
        assert_eq!(ex.task_count(), 0);
    });
    assert_eq!(
        HOOK_CALLS.load(Ordering::SeqCst),
        0,
        "an interrupt printed a panic"
    );
}

#[test]
fn a_task_whose_poll_is_unwound_by_an_interrupt_is_cancelled() {
    count_panic_messages();
    watchdog(|| {
        let ex = common::nesting();
        let drops = DropCounter::new();
        let token = drops.token();
        let handle = ex.interrupt_handle();
        // A background task that nests a long block_on of its own, during
        // which the interrupt comes.
        let task = ex.spawn(async move {
            let _token = token;
            block_on(async move {
                handle.interrupt();
                sleep(Duration::from_secs(3600)).await;
            });
        });
        // The line being run: it lets the task start, then waits.
        let result = ex.try_block_on(async {
            yield_now().await;
            sleep(Duration::from_secs(3600)).await;
        });
        assert_eq!(result, Err(Interrupted::new()));
        assert!(ex.block_on(task).unwrap_err().is_cancelled());
        assert_eq!(drops.dropped(), 1);
        assert_eq!(ex.task_count(), 0);
    });
    assert_eq!(
        HOOK_CALLS.load(Ordering::SeqCst),
        0,
        "an interrupt printed a panic"
    );
}

#[test]
fn an_interrupt_outside_any_try_block_on_does_nothing() {
    watchdog(|| {
        let ex = Executor::new();
        let handle = ex.interrupt_handle();
        handle.interrupt();
        // A plain block_on is never interrupted.
        assert_eq!(
            ex.block_on(async {
                handle.interrupt();
                yield_now().await;
                1
            }),
            1
        );
        // Nor a try_block_on that starts after the interrupt.
        assert_eq!(
            ex.try_block_on(async { sleep(Duration::from_millis(5)).await }),
            Ok(())
        );
    });
}

#[test]
fn one_interrupt_ends_only_the_innermost_try_block_on() {
    watchdog(|| {
        let ex = Executor::new();
        let handle = ex.interrupt_handle();
        let outer = ex.try_block_on(async {
            let inner = ex.try_block_on(async {
                handle.interrupt();
                sleep(Duration::from_secs(3600)).await
            });
            assert_eq!(inner, Err(Interrupted::new()));
            // The outer call goes on, and can wait again.
            sleep(Duration::from_millis(5)).await;
            "outer done"
        });
        assert_eq!(outer, Ok("outer done"));
    });
}

#[test]
fn a_try_block_on_of_another_executor_in_between_unwinds_too() {
    watchdog(|| {
        let a = Executor::new();
        let b = Executor::new();
        let t = interrupt_later(&a, Duration::from_millis(30));
        let b2 = b.clone();
        let result = a.try_block_on(async move {
            // B's own try_block_on is not the target: it passes the
            // interrupt down to A's.
            let r = b2.try_block_on(async { sleep(Duration::from_secs(3600)).await });
            unreachable!("B's call returned {r:?}");
        });
        assert_eq!(result, Err(Interrupted::new()));
        // B still works, and its interrupt state is untouched.
        assert_eq!(b.try_block_on(async { 2 }), Ok(2));
        t.join().unwrap();
    });
}

#[test]
fn a_future_that_finishes_as_the_interrupt_arrives_keeps_its_value() {
    watchdog(|| {
        let ex = Executor::new();
        let handle = ex.interrupt_handle();
        // Interrupted and finished within the same poll: the value wins and
        // the interrupt is used up.
        assert_eq!(
            ex.try_block_on(async {
                handle.interrupt();
                7
            }),
            Ok(7)
        );
        assert_eq!(
            ex.try_block_on(async { sleep(Duration::from_millis(5)).await }),
            Ok(())
        );
    });
}

#[test]
fn interrupt_handles_cross_threads() {
    fn assert_send_sync_clone<T: Send + Sync + Clone>() {}
    assert_send_sync_clone::<nestloop::InterruptHandle>();
    fn assert_error<T: std::error::Error + Send + Sync + 'static>() {}
    assert_error::<Interrupted>();
}

#[test]
fn try_block_on_of_pending_waits_for_an_interrupt_a_live_handle_can_send() {
    watchdog(|| {
        let ex = Executor::new();
        // A Ctrl-C handler's handle on another thread: until it fires, it is
        // the only way out of the call, and counts as one (R9).
        let handler = interrupt_later(&ex, Duration::from_millis(20));
        assert_eq!(
            ex.try_block_on(std::future::pending::<()>()),
            Err(Interrupted::new())
        );
        handler.join().unwrap();
    });
}

#[test]
fn run_forever_inside_try_block_on_waits_for_an_interrupt_a_live_handle_can_send() {
    watchdog(|| {
        let ex = Executor::new();
        let handler = interrupt_later(&ex, Duration::from_millis(20));
        let ex2 = ex.clone();
        assert!(ex.try_block_on(async move { ex2.run_forever() }).is_err());
        handler.join().unwrap();
    });
}
