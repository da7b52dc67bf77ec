//! The public API's promises that no single rule covers.

mod common;

use std::cell::Cell;
use std::rc::Rc;

use common::watchdog;
use nestloop::{Builder, Executor, JoinError, block_on, depth, spawn, yield_now};

fn assert_send_sync_clone<T: Send + Sync + Clone>() {}
fn assert_error<T: std::error::Error + Send + Sync + 'static>() {}

#[test]
fn types_have_the_promised_traits() {
    assert_send_sync_clone::<nestloop::Spawner>();
    assert_error::<JoinError>();
    assert_error::<nestloop::time::Elapsed>();
    // Debug everywhere.
    let ex = Executor::new();
    let h = ex.spawn(async {});
    let text = format!("{ex:?} {h:?} {:?} {:?}", ex.spawner(), Builder::new());
    assert!(text.contains("Executor"), "{text}");
}

#[test]
fn executor_current_is_none_outside_loops_and_the_owner_inside() {
    watchdog(|| {
        assert!(Executor::current().is_none());
        let ex = Executor::new();
        let ex2 = ex.clone();
        ex.block_on(async move {
            assert!(Executor::current().unwrap().ptr_eq(&ex2));
        });
        // run_until_stalled: the innermost loop's executor.
        let ex3 = ex.clone();
        ex.spawn(async move { assert!(Executor::current().unwrap().ptr_eq(&ex3)) });
        assert_eq!(ex.run_until_stalled(), 1);
        assert!(Executor::current().is_none());
    });
}

#[test]
fn free_functions_outside_loops_use_the_default_executor() {
    watchdog(|| {
        let ran = Rc::new(Cell::new(false));
        let r = ran.clone();
        let handle = spawn(async move { r.set(true) });
        assert!(!ran.get());
        assert_eq!(depth(), 0);
        block_on(handle).unwrap();
        assert!(ran.get());
        // The same default executor each time.
        let a = block_on(async { Executor::current().unwrap() });
        let b = block_on(async { Executor::current().unwrap() });
        assert!(a.ptr_eq(&b));
    });
}

#[test]
fn task_count_counts_live_tasks_including_remote_ones() {
    watchdog(|| {
        let ex = Executor::new();
        assert_eq!(ex.task_count(), 0);
        let a = ex.spawn(async { yield_now().await });
        let spawner = ex.spawner();
        let b = std::thread::spawn(move || spawner.spawn(async {}))
            .join()
            .unwrap();
        assert_eq!(ex.task_count(), 2);
        ex.block_on(a).unwrap();
        ex.block_on(b).unwrap();
        assert_eq!(ex.task_count(), 0);
        let c = ex.spawn(std::future::pending::<()>());
        assert_eq!(ex.task_count(), 1);
        c.abort();
        assert_eq!(ex.task_count(), 0);
    });
}

#[test]
fn run_until_stalled_returns_the_number_of_polls() {
    watchdog(|| {
        let ex = Executor::new();
        assert_eq!(ex.run_until_stalled(), 0);
        ex.spawn(async {
            yield_now().await;
            yield_now().await;
        });
        ex.spawn(async {});
        assert_eq!(ex.run_until_stalled(), 4);
        assert_eq!(ex.task_count(), 0);
    });
}

#[test]
fn join_handle_reports_finished_and_panics_when_polled_after_its_result() {
    watchdog(|| {
        // The handle alone holds the finished task (it frees the task as it
        // takes the result), or an abort handle holds it too.
        for keep_aborter in [false, true] {
            let ex = Executor::new();
            let mut handle = ex.spawn(async { 1 });
            let kept = keep_aborter.then(|| handle.abort_handle());
            assert!(!handle.is_finished());
            assert_eq!(ex.block_on(&mut handle).unwrap(), 1);
            assert!(handle.is_finished());
            // Aborting a finished task does nothing; an abort handle made
            // now sees it finished.
            handle.abort();
            let late = handle.abort_handle();
            assert!(late.is_finished());
            late.abort();
            assert!(kept.is_none_or(|k| k.is_finished()));
            let msg = common::expect_panic(|| ex.block_on(&mut handle));
            assert!(
                msg.starts_with("nestloop: JoinHandle polled again"),
                "{msg}"
            );
            assert!(handle.is_finished());
        }
    });
}

#[test]
fn join_error_into_panic_of_a_cancelled_task_explains_itself() {
    watchdog(|| {
        let ex = Executor::new();
        let h = ex.spawn(std::future::pending::<()>());
        h.abort();
        let err = ex.block_on(h).unwrap_err();
        assert_eq!(err.to_string(), "task was cancelled");
        let msg = common::expect_panic(move || err.into_panic());
        assert!(msg.starts_with("nestloop:"), "{msg}");
    });
}

#[test]
fn yield_now_works_in_other_executors() {
    // It only wakes itself: another executor polls it again and it finishes.
    let polls = watchdog(|| {
        let mut polls = 0;
        let mut yielding = std::pin::pin!(yield_now());
        futures::executor::block_on(std::future::poll_fn(|cx| {
            polls += 1;
            yielding.as_mut().poll(cx)
        }));
        polls
    });
    assert_eq!(polls, 2);
}

#[test]
fn join_handle_is_a_fused_future_terminated_once_it_returned() {
    use futures::future::{Either, FusedFuture, select};
    watchdog(|| {
        let ex = Executor::new();
        // Ok, a panic and a cancellation all terminate it.
        let mut ok = ex.spawn(async { 1 });
        let mut panicked = ex.spawn(async { panic!("boom") });
        let mut cancelled = ex.spawn(std::future::pending::<()>());
        cancelled.abort();
        assert!(!ok.is_terminated() && !panicked.is_terminated());
        assert!(!cancelled.is_terminated(), "aborted, not yet awaited");
        assert_eq!(ex.block_on(&mut ok).unwrap(), 1);
        assert!(ex.block_on(&mut panicked).unwrap_err().is_panic());
        assert!(ex.block_on(&mut cancelled).unwrap_err().is_cancelled());
        assert!(ok.is_terminated() && panicked.is_terminated() && cancelled.is_terminated());

        // In `select`, the loser stays pending and can be awaited later.
        let mut slow = ex.spawn(async {
            nestloop::time::sleep(std::time::Duration::from_millis(5)).await;
            "slow"
        });
        let mut fast = ex.spawn(async { "fast" });
        let first = ex.block_on(async {
            match select(&mut slow, &mut fast).await {
                Either::Left((out, _)) | Either::Right((out, _)) => out.unwrap(),
            }
        });
        assert_eq!(first, "fast");
        assert!(fast.is_terminated() && !slow.is_terminated());
        assert_eq!(ex.block_on(&mut slow).unwrap(), "slow");
        assert!(slow.is_terminated() && slow.is_finished());
    });
}
