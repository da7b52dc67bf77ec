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
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::rc::Rc;
use std::sync::mpsc;

use common::{panic_message, watchdog};
use nestloop::{Executor, JoinHandle};

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
/// executor, which nestloop shuts down at thread exit. The action gets the
/// handle of another task of that executor, pending until then. Returns
/// what the action returned or the message of its panic, and whether the
/// rest of the destructor ran after it.
fn at_thread_exit<T: Send + 'static>(action: fn(JoinHandle<()>) -> T) -> (Result<T, String>, bool) {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let worker = nestloop::spawn(pending::<()>());
        drop(nestloop::spawn(async move {
            let mut worker = Some(worker);
            let _guard = OnDrop(move || {
                let worker = worker.take().unwrap();
                let result = catch_unwind(AssertUnwindSafe(|| action(worker)))
                    .map_err(|p| panic_message(&*p));
                // The rest of the destructor.
                let _ = tx.send((result, true));
            });
            pending::<()>().await;
        }));
        nestloop::block_on(nestloop::yield_now());
    })
    .join()
    .expect("the thread exits cleanly: any panic stays contained");
    rx.recv()
        .expect("the task's future was dropped at thread exit")
}

#[test]
fn a_task_spawned_by_a_drop_at_thread_exit_runs_when_awaited() {
    let (result, rest_ran) = at_thread_exit(|_| {
        let handle = nestloop::spawn(async {
            nestloop::yield_now().await;
            1
        });
        // Not dropped yet: it runs, and is shut down with the rest if it
        // does not finish.
        nestloop::block_on(handle).unwrap()
    });
    assert_eq!(result, Ok(1));
    assert!(rest_ran);
}

#[test]
fn block_on_of_a_timer_in_a_drop_at_thread_exit_runs() {
    let (result, rest_ran) = at_thread_exit(|_| {
        nestloop::block_on(async {
            nestloop::time::sleep(std::time::Duration::from_millis(1)).await;
            "slept"
        })
    });
    assert_eq!(result, Ok("slept"));
    assert!(rest_ran);
}

#[test]
fn block_on_of_another_threads_work_in_a_drop_at_thread_exit_runs() {
    let (result, _) = at_thread_exit(|_| {
        let (tx, rx) = futures::channel::oneshot::channel();
        std::thread::spawn(move || tx.send(5).unwrap());
        nestloop::block_on(rx).unwrap()
    });
    assert_eq!(result, Ok(5));
}

#[test]
fn block_on_of_a_task_that_never_runs_again_in_a_drop_at_thread_exit_resolves_to_cancelled() {
    // The worker waits for nothing and no waker of it exists: the exit
    // drops it, so the wait ends instead of hanging the thread's exit.
    let (result, rest_ran) =
        at_thread_exit(|worker| nestloop::block_on(worker).unwrap_err().is_cancelled());
    assert_eq!(result, Ok(true));
    assert!(rest_ran);
}

#[test]
fn block_on_that_can_never_finish_in_a_drop_at_thread_exit_panics_saying_the_thread_is_exiting() {
    // Nothing holds a waker of the future: it can never finish, and waiting
    // would hang the thread's exit (whatever `detect_deadlock` says).
    let (result, rest_ran) = at_thread_exit(|_| nestloop::block_on(pending::<()>()));
    let msg = result.unwrap_err();
    assert!(msg.starts_with("nestloop: this thread is exiting"), "{msg}");
    assert!(msg.contains("before the thread's main function"), "{msg}");
    assert!(rest_ran);
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
            // The nested call waits for a task queued after the toucher,
            // so the toucher runs meanwhile.
            let (tx, rx) = futures::channel::oneshot::channel();
            drop(ex2.spawn(async move { tx.send(()).unwrap() }));
            ex2.block_on(rx).unwrap();
            drop(guard);
        });
        let err = ex.block_on(toucher).unwrap_err();
        assert!(err.to_string().contains("already borrowed"), "{err}");
    });
}

/// The scenario of `a_wait_that_can_never_finish_at_thread_exit_is_reported_on_stderr`,
/// run in a child process (the test binary itself).
const CHILD: &str = "NESTLOOP_TEST_EXIT_CHILD";

#[test]
#[cfg_attr(miri, ignore = "runs a child process")]
fn a_wait_that_can_never_finish_at_thread_exit_is_reported_on_stderr() {
    if std::env::var_os(CHILD).is_some() {
        // A destructor at thread exit waits on a future nothing can wake.
        std::thread::spawn(|| {
            drop(nestloop::spawn(async {
                let _guard = OnDrop(|| nestloop::block_on(pending::<()>()));
                pending::<()>().await;
            }));
            nestloop::block_on(nestloop::yield_now());
        })
        .join()
        .unwrap();
        println!("the thread ended");
        return;
    }
    let exe = std::env::current_exe().unwrap();
    let mut child = std::process::Command::new(exe)
        .args([
            "--exact",
            "a_wait_that_can_never_finish_at_thread_exit_is_reported_on_stderr",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CHILD, "1")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let start = std::time::Instant::now();
    while child.try_wait().unwrap().is_none() {
        if start.elapsed() > common::DEADLINE {
            child.kill().unwrap();
            panic!("the child hung at thread exit");
        }
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    let output = child.wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stdout}\n{stderr}");
    assert!(stdout.contains("the thread ended"), "{stdout}");
    assert!(
        stderr.contains("nestloop: this thread is exiting"),
        "{stderr}"
    );
}
