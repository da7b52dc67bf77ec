//! Misuse gets a clear `nestloop:` error (or works, where it can).
//!
//! Also pinned elsewhere: timers polled outside any loop (tests/timers.rs),
//! a `Spawner` whose executor is gone (tests/cancellation.rs: the handle
//! resolves to cancelled), a `JoinHandle` polled after its result
//! (tests/api.rs), and `Executor` not being `Send` (a compile-fail doctest
//! on `Executor`).

mod common;

use std::cell::RefCell;
use std::future::pending;
use std::panic::catch_unwind;
use std::rc::Rc;
use std::sync::mpsc;

use common::{panic_message, watchdog};
use nestloop::Executor;

/// Runs `on_drop` when dropped.
struct OnDrop<F: FnMut()>(F);

impl<F: FnMut()> Drop for OnDrop<F> {
    fn drop(&mut self) {
        (self.0)();
    }
}

#[test]
fn block_on_in_a_task_drop_during_executor_drop_runs_elsewhere() {
    let seen = watchdog(|| {
        let ex = Executor::new();
        let seen = Rc::new(RefCell::new(Vec::new()));
        let s = seen.clone();
        ex.spawn(async move {
            let _guard = OnDrop(move || {
                // The dying executor is unreachable; the free block_on runs
                // this future on the thread's default executor.
                let v = nestloop::block_on(async {
                    nestloop::yield_now().await;
                    5
                });
                s.borrow_mut().push(v);
            });
            pending::<()>().await;
        });
        ex.run_until_stalled();
        drop(ex);
        Rc::try_unwrap(seen).unwrap().into_inner()
    });
    assert_eq!(seen, vec![5]);
}

/// Runs `action` in the destructor of a task of a fresh thread's default
/// executor, which is shut down at thread exit while thread-local state is
/// torn down; returns the message of the panic it raised there.
fn panic_of_at_thread_exit(action: fn()) -> String {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        drop(nestloop::spawn(async move {
            let _guard = OnDrop(move || {
                let result = catch_unwind(action);
                let _ = tx.send(result.map_err(|p| panic_message(&*p)));
            });
            pending::<()>().await;
        }));
        nestloop::block_on(nestloop::yield_now());
    })
    .join()
    .expect("the thread exits cleanly: the panic stays contained");
    let result = rx
        .recv()
        .expect("the task's future was dropped at thread exit");
    result.expect_err("the action should panic at thread exit")
}

#[test]
fn block_on_in_a_drop_at_thread_exit_panics_with_a_clear_message() {
    let msg = panic_of_at_thread_exit(|| nestloop::block_on(async {}));
    assert!(msg.starts_with("nestloop: this thread is exiting"), "{msg}");
}

#[test]
fn spawn_at_thread_exit_panics_with_a_clear_message_that_is_contained() {
    let msg = panic_of_at_thread_exit(|| drop(nestloop::spawn(async {})));
    assert!(msg.starts_with("nestloop: this thread is exiting"), "{msg}");
}

#[test]
fn a_refcell_borrowed_across_a_nested_call_is_touched_by_other_tasks() {
    // The documented hazard: state borrowed across block_on is visible to
    // the tasks that run meanwhile; a conflicting borrow panics in the task
    // (where it is reported), not in the executor.
    watchdog(|| {
        let ex = Executor::new();
        let state = Rc::new(RefCell::new(0));
        let s = state.clone();
        let toucher = ex.spawn(async move {
            *s.borrow_mut() += 1;
        });
        let s2 = state.clone();
        let ex2 = ex.clone();
        ex.block_on(async move {
            let guard = s2.borrow_mut();
            // The nested call waits, so the other task runs meanwhile.
            ex2.block_on(nestloop::time::sleep(std::time::Duration::from_millis(1)));
            drop(guard);
        });
        let err = ex.block_on(toucher).unwrap_err();
        assert!(err.to_string().contains("already borrowed"), "{err}");
    });
}
