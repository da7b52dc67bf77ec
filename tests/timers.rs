//! R8: timers belong to the thread; every loop fires them; no spinning.

mod common;

use std::cell::{Cell, RefCell};
use std::future::pending;
use std::rc::Rc;
use std::time::{Duration, Instant};

use common::{expect_panic, thread_cpu_time, watchdog};
use nestloop::time::{self, MissedTickBehavior, interval, sleep, sleep_until, timeout};
use nestloop::{Executor, block_on, depth, spawn};

fn assert_send<T: Send>() {}

#[test]
fn timers_are_send() {
    assert_send::<time::Sleep>();
    assert_send::<time::Interval>();
    assert_send::<time::Timeout<time::Sleep>>();
}

#[test]
fn sleep_waits_at_least_its_duration() {
    watchdog(|| {
        let start = Instant::now();
        block_on(sleep(Duration::from_millis(30)));
        assert!(start.elapsed() >= Duration::from_millis(30));
    });
}

#[test]
#[allow(clippy::async_yields_async)] // the handle is returned, not awaited, on purpose
fn a_timer_registered_in_a_nested_loop_fires_after_that_loop_returns() {
    watchdog(|| {
        let ex = Executor::new();
        let fired = Rc::new(Cell::new(false));
        let f = fired.clone();
        let handle = ex.block_on(async move {
            // Nested loop: spawn a sleeper (it registers its timer in the
            // nested loop) and return at once.
            block_on(async move {
                let h = spawn(async move {
                    sleep(Duration::from_millis(20)).await;
                    f.set(true);
                });
                nestloop::yield_now().await; // the sleeper gets its first poll here
                h
            })
        });
        assert!(!fired.get());
        // Only the outer loop is left to fire it.
        ex.block_on(handle).unwrap();
        assert!(fired.get());
    });
}

#[test]
fn outer_task_timers_keep_firing_during_a_nested_call() {
    let ticks = watchdog(|| {
        let ex = Executor::new();
        let ticks = Rc::new(Cell::new(0));
        let t = ticks.clone();
        ex.spawn(async move {
            let mut every = interval(Duration::from_millis(5));
            loop {
                every.tick().await;
                t.set(t.get() + 1);
            }
        });
        let ex2 = ex.clone();
        let t2 = ticks.clone();
        let during = ex.block_on(async move {
            nestloop::yield_now().await;
            let before = t2.get();
            ex2.spawn(async {
                // A nested call that lasts 60 ms.
                block_on(sleep(Duration::from_millis(60)));
            })
            .await
            .unwrap();
            t2.get() - before
        });
        ex.shutdown();
        during
    });
    assert!(
        ticks >= 5,
        "only {ticks} ticks during a 60 ms nested call of a 5 ms interval"
    );
}

#[test]
fn deadlines_fire_in_order_and_ties_in_registration_order() {
    let order = watchdog(|| {
        let order = Rc::new(RefCell::new(Vec::new()));
        // Far enough ahead that all five register before the first fires,
        // even under valgrind (a deadline already passed at the first poll
        // is ready at once, ahead of any tie).
        let base = Instant::now() + Duration::from_millis(200);
        block_on(async {
            let mut handles = Vec::new();
            for (name, offset) in [("c", 30), ("a", 10), ("b1", 20), ("b2", 20), ("b3", 20)] {
                let o = order.clone();
                handles.push(spawn(async move {
                    sleep_until(base + Duration::from_millis(offset)).await;
                    o.borrow_mut().push(name);
                }));
            }
            for h in handles {
                h.await.unwrap();
            }
        });
        Rc::try_unwrap(order).unwrap().into_inner()
    });
    assert_eq!(order, ["a", "b1", "b2", "b3", "c"]);
}

#[test]
fn a_loop_waiting_for_a_timer_sleeps_instead_of_spinning() {
    watchdog(|| {
        let Some(before) = thread_cpu_time() else {
            return; // not Linux: nothing to measure with
        };
        block_on(async {
            spawn(async { block_on(sleep(Duration::from_millis(300))) })
                .await
                .unwrap();
        });
        let used = thread_cpu_time().unwrap() - before;
        assert!(
            used < Duration::from_millis(100),
            "waiting 300 ms for a timer used {used:?} of CPU"
        );
    });
}

#[test]
fn a_timer_polled_outside_any_loop_panics_with_a_clear_message() {
    let msg = expect_panic(|| futures::executor::block_on(sleep(Duration::from_millis(1))));
    assert!(msg.starts_with("nestloop:"), "{msg}");
    assert!(msg.contains("outside any nestloop loop"), "{msg}");
    let msg = expect_panic(|| {
        futures::executor::block_on(timeout(Duration::from_millis(1), pending::<()>()))
    });
    assert!(msg.contains("outside any nestloop loop"), "{msg}");
}

#[test]
fn timeout_polls_the_future_first() {
    watchdog(|| {
        // Ready at once wins, even with a zero duration, even outside a loop.
        assert_eq!(
            futures::executor::block_on(timeout(Duration::ZERO, async { 1 })),
            Ok(1)
        );
        block_on(async {
            assert_eq!(timeout(Duration::ZERO, async { 2 }).await, Ok(2));
        });
    });
}

#[test]
fn timeout_elapses_and_drops_the_future() {
    watchdog(|| {
        let dropped = Rc::new(Cell::new(false));
        struct Flag(Rc<Cell<bool>>);
        impl Drop for Flag {
            fn drop(&mut self) {
                self.0.set(true);
            }
        }
        let d = Flag(dropped.clone());
        let start = Instant::now();
        let result = block_on(timeout(Duration::from_millis(20), async move {
            let _d = d;
            pending::<()>().await
        }));
        assert!(result.is_err());
        assert_eq!(result.unwrap_err().to_string(), "deadline has elapsed");
        assert!(start.elapsed() >= Duration::from_millis(20));
        assert!(dropped.get());
    });
}

#[test]
fn a_sleep_moved_to_another_thread_registers_there() {
    watchdog(|| {
        // Long enough to be pending at its first poll even under valgrind.
        let mut sleep = Box::pin(sleep(Duration::from_millis(500)));
        // Register it with this thread's loop first.
        let pending_here = block_on(std::future::poll_fn(|cx| {
            std::task::Poll::Ready(sleep.as_mut().poll(cx).is_pending())
        }));
        assert!(pending_here);
        let deadline = sleep.deadline();
        // This thread runs no loop any more: only the other thread's loop can
        // fire the timer, so it must have registered there.
        std::thread::spawn(move || block_on(sleep)).join().unwrap();
        assert!(Instant::now() >= deadline);
    });
}

#[test]
fn interval_ticks_on_schedule() {
    watchdog(|| {
        block_on(async {
            let start = Instant::now();
            let mut every = interval(Duration::from_millis(10));
            let first = every.tick().await;
            assert!(first.duration_since(start) < Duration::from_millis(5));
            let mut last = first;
            for _ in 0..3 {
                let t = every.tick().await;
                assert_eq!(t - last, Duration::from_millis(10));
                assert!(Instant::now() >= t);
                last = t;
            }
        });
    });
}

#[test]
fn interval_missed_tick_behaviours() {
    watchdog(|| {
        block_on(async {
            let period = Duration::from_millis(10);
            for (behavior, expect_burst) in [
                (MissedTickBehavior::Burst, true),
                (MissedTickBehavior::Delay, false),
                (MissedTickBehavior::Skip, false),
            ] {
                let mut every = interval(period);
                every.set_missed_tick_behavior(behavior);
                let first = every.tick().await;
                // Miss about three ticks.
                std::thread::sleep(Duration::from_millis(35));
                let late = every.tick().await;
                assert_eq!(late, first + period);
                let next = every.tick().await;
                let immediate = next <= first + 2 * period;
                assert_eq!(
                    immediate,
                    expect_burst,
                    "{behavior:?}: next tick at {:?}",
                    next - first
                );
                if behavior == MissedTickBehavior::Skip {
                    assert_eq!(
                        (next - first).as_millis() % 10,
                        0,
                        "skip keeps the schedule"
                    );
                }
            }
        });
    });
}

#[test]
fn sleep_reset_moves_the_deadline() {
    watchdog(|| {
        block_on(async {
            let mut s = sleep(Duration::from_secs(3600));
            let start = Instant::now();
            s.reset(start + Duration::from_millis(10));
            s.await;
            assert!(start.elapsed() < Duration::from_secs(60));
        });
    });
}

#[test]
fn timers_fire_inside_run_until_stalled_only_when_due() {
    watchdog(|| {
        let ex = Executor::new();
        let h = ex.spawn(sleep(Duration::from_millis(20)));
        ex.run_until_stalled(); // registers, does not wait
        assert!(!h.is_finished());
        std::thread::sleep(Duration::from_millis(25));
        ex.run_until_stalled(); // due now: fired and the task completed
        assert!(h.is_finished());
        assert_eq!(depth(), 0);
    });
}

#[test]
fn an_interval_is_a_stream_that_never_ends() {
    use futures::StreamExt;
    use futures::stream::{FusedStream, Stream};
    watchdog(|| {
        block_on(async {
            let start = Instant::now();
            let mut ticks = interval(Duration::from_millis(2));
            let first = ticks.next().await.unwrap();
            let second = ticks.next().await.unwrap();
            assert_eq!(second - first, Duration::from_millis(2));
            assert!(start.elapsed() >= Duration::from_millis(2));
            assert!(!ticks.is_terminated());
            // Mixed with `tick`: one schedule.
            let third = ticks.tick().await;
            assert_eq!(
                ticks.next().await.unwrap() - third,
                Duration::from_millis(2)
            );
            assert_eq!(ticks.size_hint(), (usize::MAX, None));
        });
    });
}

#[test]
fn a_dropped_tick_loses_no_tick() {
    use futures::future::{Either, select};
    watchdog(|| {
        block_on(async {
            // Far enough ahead that the 1 ms sleep wins also under
            // valgrind, where the code runs ~50x slower.
            let start = Instant::now() + Duration::from_millis(500);
            let mut ticks = time::interval_at(start, Duration::from_millis(5));
            // tick() loses a select against a shorter sleep and is dropped.
            {
                let tick = std::pin::pin!(ticks.tick());
                let lost = select(tick, sleep(Duration::from_millis(1))).await;
                assert!(matches!(lost, Either::Right(_)));
            }
            // The tick it was waiting for still comes, on schedule.
            assert_eq!(ticks.tick().await, start);
            assert_eq!(ticks.tick().await, start + Duration::from_millis(5));
        });
    });
}
