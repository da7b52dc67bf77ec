//! R9: a `block_on` whose future can never be woken panics instead of
//! hanging; a future that can still be woken never trips the check.

mod common;

use std::cell::RefCell;
use std::future::{pending, poll_fn};
use std::rc::Rc;
use std::task::Poll;
use std::time::Duration;

use common::{expect_panic, watchdog};
use futures::channel::oneshot;
use nestloop::{Executor, JoinHandle, block_on, spawn, yield_now};

#[test]
fn a_future_nothing_can_wake_panics_naming_depth_one() {
    let msg = watchdog(|| expect_panic(|| block_on(pending::<()>())));
    assert!(msg.starts_with("nestloop: deadlock"), "{msg}");
    assert!(msg.contains("nesting depth 1"), "{msg}");
    assert!(
        msg.contains("detect_deadlock(false)"),
        "says how to turn it off: {msg}"
    );
}

#[test]
fn a_nested_deadlock_names_its_depth_and_goes_to_the_calling_task() {
    watchdog(|| {
        let err = common::nesting().block_on(async {
            spawn(async { block_on(async { block_on(pending::<()>()) }) })
                .await
                .unwrap_err()
        });
        assert!(err.is_panic());
        let msg = err.to_string();
        assert!(
            msg.contains("nestloop: deadlock in block_on at nesting depth 3"),
            "{msg}"
        );
        assert_eq!(nestloop::depth(), 0);
    });
}

#[test]
fn a_waker_dropped_without_waking_is_detected() {
    watchdog(|| {
        let msg = expect_panic(|| {
            block_on(poll_fn(|cx| {
                let waker = cx.waker().clone();
                // A task holds the waker for a while, then drops it.
                spawn(async move {
                    yield_now().await;
                    drop(waker);
                });
                Poll::<()>::Pending
            }))
        });
        assert!(msg.starts_with("nestloop: deadlock"), "{msg}");
    });
}

#[test]
fn a_future_woken_by_another_thread_is_not_a_deadlock() {
    let v = watchdog(|| {
        let (tx, rx) = oneshot::channel();
        let t = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(50));
            tx.send(3).unwrap();
        });
        let v = block_on(rx).unwrap();
        t.join().unwrap();
        v
    });
    assert_eq!(v, 3);
}

#[test]
fn a_future_waiting_on_a_timer_or_a_task_is_not_a_deadlock() {
    watchdog(|| {
        block_on(nestloop::time::sleep(Duration::from_millis(10)));
        let h = spawn(async {
            nestloop::time::sleep(Duration::from_millis(10)).await;
            1
        });
        assert_eq!(block_on(h).unwrap(), 1);
    });
}

#[test]
#[cfg_attr(miri, ignore = "leaves a parked thread behind, which Miri reports")]
fn with_detection_off_the_call_waits() {
    let ex_thread = std::thread::spawn(|| {
        let ex = Executor::builder().detect_deadlock(false).build();
        ex.block_on(pending::<()>());
    });
    std::thread::sleep(Duration::from_millis(200));
    // Still waiting (not panicked): the thread is left parked.
    assert!(!ex_thread.is_finished());
}

type Slot = Rc<RefCell<Option<JoinHandle<()>>>>;
type Report = Rc<RefCell<Option<String>>>;

/// Spawns a task that gets its own handle (through `slot`) and runs `body`
/// with it, then drives the executor until nothing is ready.
fn with_own_handle(body: impl FnOnce(JoinHandle<()>, Report) + 'static) -> Option<String> {
    let ex = common::nesting();
    let slot: Slot = Rc::default();
    let report: Report = Rc::default();
    let (s, r) = (slot.clone(), report.clone());
    let task = ex.spawn(async move {
        let own = s.borrow_mut().take().unwrap();
        body(own, r);
    });
    *slot.borrow_mut() = Some(task);
    ex.run_until_stalled();
    assert_eq!(ex.task_count(), 0);
    report.take()
}

#[test]
fn a_task_blocking_on_its_own_handle_is_reported() {
    // nest-asyncio issue #66: task T nests a block_on whose future awaits T.
    let msg = watchdog(|| {
        with_own_handle(|own, report| {
            *report.borrow_mut() = Some(expect_panic(move || block_on(own)));
        })
    })
    .unwrap();
    assert!(
        msg.starts_with("nestloop: deadlock in block_on at nesting depth 2"),
        "{msg}"
    );
    assert!(msg.contains("suspended further down the stack"), "{msg}");
}

#[test]
fn blocking_on_a_task_further_down_the_stack_is_reported_to_the_caller() {
    let msg = watchdog(|| {
        with_own_handle(|own, report| {
            // T0 nests a block_on; inside it, T1 blocks on T0's handle.
            let msg = block_on(async move {
                let t1 = spawn(async move { block_on(own).unwrap() });
                t1.await.unwrap_err().to_string()
            });
            *report.borrow_mut() = Some(msg);
        })
    })
    .unwrap();
    assert!(
        msg.contains("nestloop: deadlock in block_on at nesting depth 3"),
        "{msg}"
    );
    assert!(msg.contains("suspended further down the stack"), "{msg}");
}

#[test]
fn a_task_on_the_stack_raced_with_a_timer_is_not_a_deadlock() {
    let outcome = watchdog(|| {
        with_own_handle(|own, report| {
            let r = block_on(nestloop::time::timeout(Duration::from_millis(10), own));
            *report.borrow_mut() = Some(format!("{r:?}"));
        })
    });
    assert_eq!(outcome.as_deref(), Some("Err(Elapsed(()))"));
}

#[test]
fn a_task_on_the_stack_raced_with_another_thread_is_not_a_deadlock() {
    let outcome = watchdog(|| {
        with_own_handle(|own, report| {
            let (tx, rx) = oneshot::channel::<&str>();
            let t = std::thread::spawn(move || {
                std::thread::sleep(Duration::from_millis(20));
                tx.send("from the other thread").unwrap();
            });
            let won = match block_on(futures::future::select(own, rx)) {
                futures::future::Either::Left(_) => "own handle",
                futures::future::Either::Right((msg, _)) => msg.unwrap(),
            };
            t.join().unwrap();
            *report.borrow_mut() = Some(won.to_owned());
        })
    });
    assert_eq!(outcome.as_deref(), Some("from the other thread"));
}

#[test]
fn a_root_woken_by_value_from_another_thread_is_never_taken_for_a_deadlock() {
    // The sender's waker marks the root woken, then drops its clone: a loop
    // that sees the clone gone must also see the wake. (This raced once.)
    let messages: u64 = if cfg!(miri) { 200 } else { 100_000 };
    let sums = watchdog(move || {
        (0..3)
            .map(|_| {
                block_on(async move {
                    let (tx, rx) = futures::channel::mpsc::unbounded::<u64>();
                    let sender = std::thread::spawn(move || {
                        for i in 0..messages {
                            tx.unbounded_send(i).unwrap();
                        }
                    });
                    let sum =
                        futures::StreamExt::fold(rx, 0, |acc, v| async move { acc + v }).await;
                    sender.join().unwrap();
                    sum
                })
            })
            .collect::<Vec<_>>()
    });
    assert!(sums.iter().all(|&s| s == messages * (messages - 1) / 2));
}

#[test]
fn a_waker_kept_from_an_earlier_block_on_does_not_hide_the_next_deadlock() {
    // block_on reuses its per-depth state only when no clone of the old
    // waker exists; a kept clone must not make the next call's future look
    // wakeable, and waking it later must disturb nothing.
    watchdog(|| {
        let ex = Executor::new();
        let mut kept = None;
        ex.block_on(poll_fn(|cx| {
            kept = Some(cx.waker().clone());
            Poll::Ready(())
        }));
        let msg = expect_panic(|| ex.block_on(pending::<()>()));
        assert!(msg.starts_with("nestloop: deadlock"), "{msg}");
        // Calls that wait meanwhile still finish (on another state).
        let yielded = ex.block_on(async {
            yield_now().await;
            5
        });
        assert_eq!(yielded, 5);
        kept.take().unwrap().wake();
        assert_eq!(ex.block_on(async { 7 }), 7);
    });
}

/// Runs `main` (a `block_on` that never ends by itself) inside a
/// `try_block_on` while a task serves three messages that another thread
/// sends on a channel, 5 ms apart; the task then interrupts the main.
/// Returns what the task served.
fn serve_three_messages_from_another_thread(main: fn(&Executor)) -> Vec<u32> {
    watchdog(move || {
        use futures::StreamExt;
        let ex = Executor::new();
        let interrupt = ex.interrupt_handle();
        let (tx, rx) = futures::channel::mpsc::unbounded::<u32>();
        let feeder = std::thread::spawn(move || {
            for n in 0..3 {
                std::thread::sleep(Duration::from_millis(5));
                tx.unbounded_send(n).unwrap();
            }
        });
        let served = Rc::new(RefCell::new(Vec::new()));
        let s = served.clone();
        ex.spawn(async move {
            *s.borrow_mut() = rx.take(3).collect().await;
            interrupt.interrupt();
        });
        let ex2 = ex.clone();
        let result = ex.try_block_on(async move { main(&ex2) });
        assert!(result.is_err(), "the main only ends by the interrupt");
        feeder.join().unwrap();
        served.take()
    })
}

#[test]
fn block_on_pending_serves_a_task_fed_by_another_thread() {
    let served = serve_three_messages_from_another_thread(|ex| ex.block_on(pending::<()>()));
    assert_eq!(served, [0, 1, 2]);
}

#[test]
fn run_forever_serves_a_task_fed_by_another_thread() {
    let served = serve_three_messages_from_another_thread(|ex| ex.run_forever());
    assert_eq!(served, [0, 1, 2]);
}

#[test]
fn block_on_pending_serves_a_task_whose_waker_another_thread_holds() {
    // Like a task waiting on a socket: a "reactor" thread holds its waker
    // and wakes it later.
    let polls = watchdog(|| {
        let ex = Executor::new();
        let interrupt = ex.interrupt_handle();
        let polls = Rc::new(std::cell::Cell::new(0));
        let p = polls.clone();
        ex.spawn(poll_fn(move |cx| {
            p.set(p.get() + 1);
            if p.get() == 1 {
                let waker = cx.waker().clone();
                std::thread::spawn(move || {
                    std::thread::sleep(Duration::from_millis(20));
                    waker.wake();
                });
                return Poll::Pending;
            }
            interrupt.interrupt();
            Poll::Ready(())
        }));
        let ex2 = ex.clone();
        assert!(
            ex.try_block_on(async move { ex2.block_on(pending::<()>()) })
                .is_err()
        );
        polls.get()
    });
    assert_eq!(polls, 2);
}

#[test]
fn block_on_pending_with_only_tasks_nothing_can_wake_is_still_reported() {
    let msg = watchdog(|| {
        let ex = Executor::new();
        // Pending forever, and no waker of them kept anywhere.
        ex.spawn(pending::<()>());
        ex.spawn(async { pending::<()>().await });
        expect_panic(|| ex.block_on(pending::<()>()))
    });
    assert!(msg.starts_with("nestloop: deadlock"), "{msg}");
}

#[test]
fn without_a_live_interrupt_handle_try_block_on_of_pending_is_a_deadlock() {
    watchdog(|| {
        let ex = Executor::new();
        drop(ex.interrupt_handle());
        let msg = expect_panic(|| ex.try_block_on(std::future::pending::<()>()));
        assert!(
            msg.starts_with("nestloop: deadlock in try_block_on at nesting depth 1"),
            "{msg}"
        );
    });
}

#[test]
fn a_live_interrupt_handle_does_not_hide_a_deadlock_outside_try_block_on() {
    watchdog(|| {
        let ex = Executor::new();
        let _handle = ex.interrupt_handle(); // it could end no call
        let msg = expect_panic(|| ex.block_on(std::future::pending::<()>()));
        assert!(
            msg.starts_with("nestloop: deadlock in block_on at nesting depth 1"),
            "{msg}"
        );
    });
}

#[test]
fn dropping_the_last_interrupt_handle_ends_the_wait_with_the_deadlock_report() {
    watchdog(|| {
        let ex = Executor::new();
        let interrupt = ex.interrupt_handle();
        let dropper = std::thread::spawn(move || {
            std::thread::sleep(std::time::Duration::from_millis(20));
            drop(interrupt);
        });
        let msg = expect_panic(|| ex.try_block_on(std::future::pending::<()>()));
        assert!(
            msg.starts_with("nestloop: deadlock in try_block_on at nesting depth 1"),
            "{msg}"
        );
        dropper.join().unwrap();
    });
}
