//! R12: with fibers, a `block_on` inside a task suspends that task's stack,
//! so calls return when their own future is done, not in stack order, and
//! waiting calls do not deepen any stack.
#![cfg(any(target_arch = "x86_64", target_arch = "aarch64"))]

mod common;

use std::cell::RefCell;
use std::rc::Rc;
use std::time::{Duration, Instant};

use common::watchdog;
use nestloop::Executor;

fn fibers() -> Executor {
    Executor::builder().fibers(true).build()
}

/// A synchronous helper that waits `ms` milliseconds in a nested
/// `block_on`, then notes its name.
fn helper(name: &'static str, ms: u64, order: &RefCell<Vec<&'static str>>) {
    nestloop::block_on(nestloop::time::sleep(Duration::from_millis(ms)));
    order.borrow_mut().push(name);
}

#[test]
fn a_helper_whose_future_is_done_returns_before_one_opened_after_it() {
    let order = watchdog(|| {
        let ex = fibers();
        let order = Rc::new(RefCell::new(Vec::new()));
        ex.block_on(async {
            let (a, b) = (order.clone(), order.clone());
            // The fast helper is opened first: nested in stack order, it
            // would wait for the slow one opened after it.
            let fast = nestloop::spawn(async move { helper("fast", 5, &a) });
            let slow = nestloop::spawn(async move { helper("slow", 80, &b) });
            fast.await.unwrap();
            order.borrow_mut().push("fast awaited");
            slow.await.unwrap();
        });
        Rc::try_unwrap(order).unwrap().into_inner()
    });
    assert_eq!(order, ["fast", "fast awaited", "slow"]);
}

#[test]
fn waiting_helpers_do_not_deepen_the_stack() {
    let depths = watchdog(|| {
        let ex = fibers();
        ex.block_on(async {
            let handles: Vec<_> = (0..50)
                .map(|_| {
                    nestloop::spawn(async {
                        nestloop::block_on(async {
                            let depth = nestloop::depth();
                            nestloop::time::sleep(Duration::from_millis(10)).await;
                            depth
                        })
                    })
                })
                .collect();
            let mut depths = Vec::new();
            for h in handles {
                depths.push(h.await.unwrap());
            }
            depths
        })
    });
    assert!(depths.iter().all(|&d| d == 2), "{depths:?}");
}

#[test]
fn a_thousand_helpers_each_return_near_their_own_deadline() {
    let late = watchdog(|| {
        let ex = fibers();
        ex.block_on(async {
            let start = Instant::now();
            let handles: Vec<_> = (0..1000u64)
                .map(|i| {
                    nestloop::spawn(async move {
                        // Deadlines spread over 0.5 s, in reverse of the order
                        // the calls are opened.
                        let due = Duration::from_micros(500 * (1000 - i));
                        nestloop::block_on(nestloop::time::sleep(due));
                        start.elapsed().saturating_sub(due)
                    })
                })
                .collect();
            let mut late = Duration::ZERO;
            for h in handles {
                late = late.max(h.await.unwrap());
            }
            late
        })
    });
    // Nested in stack order, the first-opened call would return last,
    // about 0.5 s late.
    assert!(
        late < Duration::from_millis(150),
        "latest return {late:?} after its deadline"
    );
}

#[test]
fn ten_thousand_helpers_wait_at_once_on_a_2_mib_thread() {
    let done = common::watchdog_with(2 << 20, Duration::from_secs(120), || {
        let ex = fibers();
        ex.block_on(async {
            let (tx, rx) = async_channel::unbounded::<()>();
            let handles: Vec<_> = (0..10_000)
                .map(|_| {
                    let rx = rx.clone();
                    nestloop::spawn(async move {
                        // All of them wait at once, until the channel closes.
                        let _ = nestloop::block_on(rx.recv());
                    })
                })
                .collect();
            // Let every task reach its helper.
            nestloop::time::sleep(Duration::from_millis(10)).await;
            drop(tx);
            let mut done = 0;
            for h in handles {
                h.await.unwrap();
                done += 1;
            }
            done
        })
    });
    assert_eq!(done, 10_000);
}

#[test]
fn a_helper_waiting_for_a_task_blocked_in_its_own_helper_completes() {
    // nest-asyncio #66: nested in stack order, the first helper could only
    // return after the second, which waits for the first's task.
    let got = watchdog(|| {
        let ex = fibers();
        ex.block_on(async {
            let (tx, rx) = async_channel::bounded::<u32>(1);
            let producer = nestloop::spawn(async move {
                // Blocked in its own helper until the consumer's helper has
                // started waiting.
                nestloop::block_on(nestloop::time::sleep(Duration::from_millis(5)));
                nestloop::block_on(tx.send(7)).unwrap();
                1
            });
            let consumer = nestloop::spawn(async move {
                let got = nestloop::block_on(rx.recv()).unwrap();
                // Waits for the producer, itself blocked in helpers.
                got + nestloop::block_on(producer).unwrap()
            });
            consumer.await.unwrap()
        })
    });
    assert_eq!(got, 8);
}

#[test]
fn a_panic_after_a_helper_waited_reaches_the_join_handle() {
    let err = watchdog(|| {
        let ex = fibers();
        ex.block_on(async {
            let task = nestloop::spawn(async {
                nestloop::block_on(nestloop::time::sleep(Duration::from_millis(2)));
                panic!("after the wait");
            });
            let err = task.await.unwrap_err();
            assert!(err.is_panic());
            err.to_string()
        })
    });
    assert!(err.contains("after the wait"), "{err}");
}

#[test]
fn a_panic_in_the_waited_future_comes_out_of_the_helper() {
    let caught = watchdog(|| {
        let ex = fibers();
        ex.block_on(async {
            nestloop::spawn(async {
                std::panic::catch_unwind(|| {
                    nestloop::block_on(async {
                        nestloop::time::sleep(Duration::from_millis(2)).await;
                        panic!("in the future");
                    })
                })
                .is_err()
            })
            .await
            .unwrap()
        })
    });
    assert!(caught);
}

nestloop::task_local! {
    static NAME: u32;
}

#[test]
fn task_locals_stay_with_their_task_across_out_of_order_resumes() {
    let seen = watchdog(|| {
        let ex = fibers();
        ex.block_on(async {
            let handles: Vec<_> = (0..20u32)
                .map(|i| {
                    nestloop::spawn(NAME.scope(i, async move {
                        let mut seen = Vec::new();
                        for round in 0..3u64 {
                            // Each task's helpers finish in a different order.
                            let ms = (u64::from(i) * 7 + round * 13) % 11;
                            nestloop::block_on(async {
                                seen.push(NAME.get());
                                nestloop::time::sleep(Duration::from_millis(ms)).await;
                                seen.push(NAME.get());
                            });
                            seen.push(NAME.get());
                        }
                        (i, seen)
                    }))
                })
                .collect();
            let mut all = Vec::new();
            for h in handles {
                all.push(h.await.unwrap());
            }
            all
        })
    });
    for (i, seen) in seen {
        assert_eq!(seen.len(), 9);
        assert!(seen.iter().all(|&v| v == i), "task {i} saw {seen:?}");
    }
}

#[test]
fn wakes_from_other_threads_resume_suspended_helpers() {
    let sum = watchdog(|| {
        let ex = fibers();
        ex.block_on(async {
            let handles: Vec<_> = (0..20u64)
                .map(|i| {
                    let (tx, rx) = futures::channel::oneshot::channel();
                    std::thread::spawn(move || {
                        std::thread::sleep(Duration::from_millis(20 - i));
                        tx.send(i).unwrap();
                    });
                    nestloop::spawn(async move { nestloop::block_on(rx).unwrap() })
                })
                .collect();
            let mut sum = 0;
            for h in handles {
                sum += h.await.unwrap();
            }
            sum
        })
    });
    assert_eq!(sum, (0..20).sum::<u64>());
}

/// Notes its drop.
struct Dropped(Rc<RefCell<Vec<&'static str>>>, &'static str);

impl Drop for Dropped {
    fn drop(&mut self) {
        self.0.borrow_mut().push(self.1);
    }
}

/// A task that waits 10 s in a helper; the task and the helper's future
/// note their drops in `dropped`.
fn spawn_task_blocked_in_a_helper(
    dropped: &Rc<RefCell<Vec<&'static str>>>,
) -> nestloop::JoinHandle<()> {
    let d = dropped.clone();
    nestloop::spawn(async move {
        let _guard = Dropped(d.clone(), "task");
        nestloop::block_on(async move {
            let _guard = Dropped(d, "helper's future");
            nestloop::time::sleep(Duration::from_secs(10)).await;
        });
    })
}

#[test]
fn shutdown_cancels_tasks_blocked_in_helpers_promptly() {
    let (dropped, cancelled, waited) = watchdog(|| {
        let ex = fibers();
        let dropped = Rc::new(RefCell::new(Vec::new()));
        let start = Instant::now();
        let handle = ex.block_on(async {
            let handle = spawn_task_blocked_in_a_helper(&dropped);
            // Let it block.
            nestloop::time::sleep(Duration::from_millis(5)).await;
            Some(handle)
        });
        let handle = handle.unwrap();
        ex.shutdown();
        let cancelled = ex.block_on(handle).unwrap_err().is_cancelled();
        (dropped.take(), cancelled, start.elapsed())
    });
    assert_eq!(dropped, ["helper's future", "task"]);
    assert!(cancelled);
    assert!(waited < Duration::from_secs(5), "waited {waited:?}");
}

#[test]
fn thread_exit_cancels_tasks_blocked_in_helpers() {
    use std::sync::{Arc, Mutex};
    /// Notes its drop, from any thread.
    struct Noted(Arc<Mutex<Vec<&'static str>>>);
    impl Drop for Noted {
        fn drop(&mut self) {
            self.0.lock().unwrap().push("task");
        }
    }
    let dropped = Arc::new(Mutex::new(Vec::new()));
    let d = dropped.clone();
    let start = Instant::now();
    std::thread::spawn(move || {
        let ex = fibers();
        let keep = ex.clone();
        ex.block_on(async move {
            nestloop::spawn(async move {
                // Keeps the executor alive until the thread exits.
                let _keep = keep;
                let _guard = Noted(d);
                nestloop::block_on(nestloop::time::sleep(Duration::from_secs(10)));
            });
            nestloop::time::sleep(Duration::from_millis(5)).await;
        });
    })
    .join()
    .unwrap();
    assert_eq!(*dropped.lock().unwrap(), ["task"]);
    assert!(start.elapsed() < Duration::from_secs(5));
}

#[test]
fn abort_cancels_a_task_blocked_in_a_helper_promptly() {
    let (dropped, cancelled, waited) = watchdog(|| {
        let ex = fibers();
        let dropped = Rc::new(RefCell::new(Vec::new()));
        let start = Instant::now();
        let cancelled = ex.block_on(async {
            let handle = spawn_task_blocked_in_a_helper(&dropped);
            nestloop::time::sleep(Duration::from_millis(5)).await;
            handle.abort();
            handle.await.unwrap_err().is_cancelled()
        });
        (dropped.take(), cancelled, start.elapsed())
    });
    assert_eq!(dropped, ["helper's future", "task"]);
    assert!(cancelled);
    assert!(waited < Duration::from_secs(5), "waited {waited:?}");
}

#[test]
fn abort_from_another_thread_cancels_a_task_blocked_in_a_helper() {
    let cancelled = watchdog(|| {
        let ex = fibers();
        ex.block_on(async {
            let handle = nestloop::spawn(async {
                nestloop::block_on(nestloop::time::sleep(Duration::from_secs(10)));
            });
            let abort = handle.abort_handle();
            std::thread::spawn(move || {
                std::thread::sleep(Duration::from_millis(5));
                abort.abort();
            });
            handle.await.unwrap_err().is_cancelled()
        })
    });
    assert!(cancelled);
}

#[test]
fn a_repl_cell_calls_a_helper_while_tasks_block_in_helpers() {
    let (cell, background) = watchdog(|| {
        let ex = fibers();
        let interrupt = ex.interrupt_handle();
        let log = Rc::new(RefCell::new(Vec::new()));
        // Cell 1 spawns tasks that block in helpers and outlive it.
        let l = log.clone();
        let tasks = ex
            .try_block_on(async move {
                (0..3u64)
                    .map(|i| {
                        let l = l.clone();
                        nestloop::spawn(async move {
                            nestloop::block_on(nestloop::time::sleep(Duration::from_millis(
                                30 + 10 * i,
                            )));
                            l.borrow_mut().push(i);
                        })
                    })
                    .collect::<Vec<_>>()
            })
            .unwrap();
        // Cell 2 calls a helper of its own, which returns at once when done.
        let cell = ex
            .try_block_on(async {
                nestloop::block_on(nestloop::time::sleep(Duration::from_millis(5)));
                log.borrow().len()
            })
            .unwrap();
        // Cell 3 waits for the background tasks; cell 4 is interrupted
        // while they are done and nothing else runs.
        ex.try_block_on(async {
            for t in tasks {
                t.await.unwrap();
            }
        })
        .unwrap();
        let interrupted = ex.try_block_on(async move {
            // Ctrl-C, as a REPL's handler sends it.
            std::thread::spawn(move || {
                std::thread::sleep(Duration::from_millis(5));
                interrupt.interrupt();
            });
            std::future::pending::<()>().await
        });
        assert_eq!(interrupted, Err(nestloop::Interrupted::new()));
        (cell, log.take())
    });
    assert_eq!(
        cell, 0,
        "the cell's helper returned before the background ones"
    );
    assert_eq!(background, [0, 1, 2]);
}

#[test]
fn a_helper_waiting_for_its_own_task_is_reported_to_that_task() {
    // nest-asyncio #66 for real: the task waits, in a helper, for its own
    // handle. With fibers the wait is a suspended call; R9 ends it with a
    // panic that goes to the task (its future is dropped), and then
    // reports the outer call, which nothing can wake either: no hang.
    let (task_dropped, outer) = watchdog(|| {
        let ex = fibers();
        let dropped = Rc::new(RefCell::new(Vec::new()));
        let d = dropped.clone();
        let outer = common::expect_panic(|| {
            ex.block_on(async {
                let own = Rc::new(RefCell::new(None::<nestloop::JoinHandle<()>>));
                let slot = own.clone();
                let task = nestloop::spawn(async move {
                    let _guard = Dropped(d, "task");
                    nestloop::yield_now().await;
                    let me = slot.borrow_mut().take().unwrap();
                    nestloop::block_on(me).unwrap();
                });
                *own.borrow_mut() = Some(task);
                std::future::pending::<()>().await
            })
        });
        (dropped.take(), outer)
    });
    assert_eq!(task_dropped, ["task"]);
    assert!(outer.starts_with("nestloop: deadlock"), "{outer}");
}

/// Nests plain `block_on` calls (each in the first poll of the one below)
/// until a panic stops it; returns the panic's message and the depth
/// reached.
fn nest_until_it_panics() -> (String, usize) {
    use std::cell::Cell;
    thread_local!(static DEEPEST: Cell<usize> = const { Cell::new(0) });
    fn nest() -> usize {
        DEEPEST.with(|d| d.set(d.get().max(nestloop::depth())));
        nestloop::block_on(async { nest() })
    }
    let msg = common::expect_panic(nest);
    (msg, DEEPEST.with(Cell::get))
}

#[test]
fn recursion_through_block_on_on_a_fiber_ends_in_a_clean_panic() {
    for stack in [256 << 10, 1 << 20, 2 << 20] {
        let (msg, deepest) = watchdog(move || {
            let ex = Executor::builder()
                .fibers(true)
                .fiber_stack_size(stack)
                .build();
            ex.block_on(async {
                nestloop::spawn(async {
                    // On the fiber of the loop: the first polls run inline.
                    nestloop::yield_now().await;
                    nest_until_it_panics()
                })
                .await
                .unwrap()
            })
        });
        assert!(
            msg.starts_with("nestloop: not enough stack for nesting depth")
                && msg.contains("fiber_stack_size"),
            "{stack}: {msg}"
        );
        assert!(deepest > 2, "{stack}: {deepest}");
    }
}

/// Set in the child process of the overflow test.
const OVERFLOW_CHILD: &str = "NESTLOOP_TEST_FIBER_OVERFLOW_CHILD";

#[test]
fn a_plain_overflow_of_a_fibers_stack_is_reported_with_the_setting_to_raise() {
    if std::env::var_os(OVERFLOW_CHILD).is_some() {
        #[inline(never)]
        fn recurse(n: u64) -> u64 {
            if n == u64::MAX {
                return 0; // never: the stack ends first
            }
            let frame = [n; 64];
            std::hint::black_box(&frame);
            recurse(n + 1) + std::hint::black_box(frame[3])
        }
        let ex = Executor::builder()
            .fibers(true)
            .fiber_stack_size(256 << 10)
            .build();
        ex.block_on(async {
            nestloop::spawn(async {
                nestloop::yield_now().await;
                recurse(0)
            })
            .await
            .unwrap()
        });
        return;
    }
    let exe = std::env::current_exe().unwrap();
    let output = std::process::Command::new(exe)
        .args([
            "--exact",
            "a_plain_overflow_of_a_fibers_stack_is_reported_with_the_setting_to_raise",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(OVERFLOW_CHILD, "1")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success());
    assert!(
        stderr.contains("nestloop: a fiber's stack overflowed (its stack is  256 KiB")
            && stderr.contains("fiber_stack_size"),
        "{stderr}"
    );
}

#[test]
fn a_helper_on_a_fiber_under_the_outermost_calls_first_poll_keeps_its_own_state() {
    // The outermost call's first poll runs a nested call on the thread's
    // stack; that call's loop runs a task on a fiber, whose helper waits
    // on a set. Both the outermost future and the helper then wait at
    // once, each with a waker of its own (sharing one, R9 took the helper
    // for stuck and reported it).
    let total = watchdog(|| {
        fibers().block_on(async {
            let outer = nestloop::spawn(async {
                let mut set = nestloop::JoinSet::new();
                for n in 1..=10_u32 {
                    set.spawn(async move {
                        nestloop::time::sleep(Duration::from_millis(u64::from(n % 3))).await;
                        n
                    });
                }
                nestloop::block_on(async {
                    let mut sum = 0;
                    while let Some(n) = set.join_next().await {
                        sum += n.unwrap();
                    }
                    sum
                })
            });
            let other = fibers();
            let mut set = nestloop::JoinSet::new();
            set.spawn_on(async { 100 }, &other);
            let hundred = other.block_on(set.join_next()).unwrap().unwrap();
            outer.await.unwrap() + hundred
        })
    });
    assert_eq!(total, 155);
}

#[test]
fn a_loop_on_a_fiber_polls_a_woken_outer_future_below_it() {
    // R3 across stacks: an outer call nests a loop on the thread's stack
    // (fibers off); a task there calls a fibers executor's block_on, whose
    // loop runs on a fiber. The outer future, woken meanwhile, sends what
    // that call waits for: the loop on the fiber must poll it.
    let got = watchdog(|| {
        let outer = common::nesting();
        let inner = fibers();
        let o = outer.clone();
        outer.block_on(async move {
            let (tx, rx) = futures::channel::oneshot::channel::<u32>();
            let (go_tx, go_rx) = futures::channel::oneshot::channel::<()>();
            let task = o.spawn(async move {
                go_tx.send(()).unwrap();
                inner.block_on(rx).unwrap()
            });
            go_rx.await.unwrap();
            tx.send(5).unwrap();
            task.await.unwrap()
        })
    });
    assert_eq!(got, 5);
}
