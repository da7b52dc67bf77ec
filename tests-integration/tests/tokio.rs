//! Feature `tokio`: nestloop inside tokio runtimes, and tokio's reactor
//! inside nestloop tasks (real TCP on 127.0.0.1).
#![cfg(feature = "tokio")]

#[path = "../../tests/common/mod.rs"]
mod common;

use std::time::Duration;

use common::{expect_panic, watchdog};
use nestloop::Executor;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

fn multi_thread(workers: usize) -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(workers)
        .enable_all()
        .build()
        .unwrap()
}

#[test]
fn block_on_on_a_multi_thread_worker_keeps_tokio_tasks_running() {
    let v = watchdog(|| {
        // One worker: without block_in_place, blocking it would stall the
        // tokio task the nestloop future waits for.
        let rt = multi_thread(1);
        rt.block_on(async {
            tokio::spawn(async {
                let (tx, rx) = tokio::sync::oneshot::channel();
                tokio::spawn(async move {
                    tokio::time::sleep(Duration::from_millis(10)).await;
                    tx.send(42).unwrap();
                });
                // Synchronous code on a tokio worker waits with nestloop.
                nestloop::block_on(rx).unwrap()
            })
            .await
            .unwrap()
        })
    });
    assert_eq!(v, 42);
}

fn current_thread() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

/// A value from a tokio task that sleeps on tokio's timer first: ready only
/// while some thread drives the current runtime's tasks and timers.
async fn from_a_tokio_task(value: u32) -> u32 {
    let (tx, rx) = tokio::sync::oneshot::channel();
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(5)).await;
        tx.send(value).unwrap();
    });
    rx.await.unwrap()
}

/// A value after a nestloop timer and a nestloop task.
async fn from_nestloop(value: u32) -> u32 {
    nestloop::time::sleep(Duration::from_millis(5)).await;
    nestloop::spawn(async move { value }).await.unwrap()
}

#[test]
fn block_on_inside_a_current_thread_runtime_panics_with_advice() {
    let msgs = watchdog(|| {
        let rt = current_thread();
        // In the runtime's block_on future.
        let in_block_on = expect_panic(|| rt.block_on(async { nestloop::block_on(async { 1 }) }));
        // In one of its tasks.
        let in_task = rt.block_on(async {
            let err = tokio::spawn(async { nestloop::block_on(async { 1 }) })
                .await
                .unwrap_err();
            common::panic_message(&*err.into_panic())
        });
        // In a LocalSet task on it.
        let local = tokio::task::LocalSet::new();
        let in_local_set = local.block_on(&rt, async {
            let err = tokio::task::spawn_local(async { nestloop::block_on(async { 1 }) })
                .await
                .unwrap_err();
            common::panic_message(&*err.into_panic())
        });
        [in_block_on, in_task, in_local_set]
    });
    for msg in msgs {
        assert!(
            msg.starts_with("nestloop: block_on called inside a tokio current_thread runtime"),
            "{msg}"
        );
        assert!(msg.contains("LocalSet"), "names the case: {msg}");
        assert!(
            msg.contains("spawn_blocking") && msg.contains("multi_thread"),
            "says what to do: {msg}"
        );
    }
}

#[test]
fn block_on_in_spawn_blocking_of_a_current_thread_runtime_works() {
    let v = watchdog(|| {
        let rt = current_thread();
        rt.block_on(async {
            tokio::task::spawn_blocking(|| {
                // A blocking-pool thread does not drive the runtime: the
                // thread awaiting this closure keeps running its tasks.
                nestloop::block_on(async { from_a_tokio_task(40).await + from_nestloop(2).await })
            })
            .await
            .unwrap()
        })
    });
    assert_eq!(v, 42);
}

#[test]
fn block_on_on_a_thread_that_entered_a_current_thread_runtime_works() {
    let (ready, waited) = watchdog(|| {
        let rt = current_thread();
        let _context = rt.enter();
        let ready = nestloop::block_on(async { 1 });
        // The runtime is not driven here; nestloop's own timer and tasks are.
        let waited = nestloop::block_on(from_nestloop(2));
        (ready, waited)
    });
    assert_eq!((ready, waited), (1, 2));
}

#[test]
fn block_on_in_a_local_set_on_a_multi_thread_runtime_works() {
    let (in_run_until, in_spawn_local) = watchdog(|| {
        let rt = multi_thread(1);
        let local = tokio::task::LocalSet::new();
        rt.block_on(local.run_until(async {
            // In the run_until future, waiting on a task of the runtime's
            // worker and on nestloop.
            let in_run_until =
                nestloop::block_on(async { from_a_tokio_task(10).await + from_nestloop(1).await });
            // In a spawn_local task.
            let in_spawn_local = tokio::task::spawn_local(async {
                nestloop::block_on(async { from_a_tokio_task(20).await + from_nestloop(2).await })
            })
            .await
            .unwrap();
            (in_run_until, in_spawn_local)
        }))
    });
    assert_eq!((in_run_until, in_spawn_local), (11, 22));
}

#[test]
fn block_on_in_a_multi_thread_runtimes_block_on_future_works() {
    let (waited, blocked_in_place) = watchdog(|| {
        let rt = multi_thread(1);
        rt.block_on(async {
            nestloop::block_on(async {
                let waited = from_a_tokio_task(40).await + from_nestloop(2).await;
                // tokio's own blocking calls go through block_in_place here,
                // as they would in the block_on future itself.
                let blocked_in_place = tokio::task::block_in_place(|| {
                    tokio::runtime::Handle::current().block_on(async { 7 })
                });
                (waited, blocked_in_place)
            })
        })
    });
    assert_eq!((waited, blocked_in_place), (42, 7));
}

/// Receives `n` messages from a tokio channel: each receive spends one unit
/// of tokio's cooperative budget where one is set.
async fn receive_from_tokio(n: usize) -> usize {
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    for i in 0..n {
        tx.send(i).unwrap();
    }
    drop(tx);
    let mut received = 0;
    while rx.recv().await.is_some() {
        received += 1;
    }
    received
}

#[test]
fn block_on_inside_a_tokio_poll_is_not_held_back_by_tokios_budget() {
    // tokio polls a block_on future or a task with a budget of 128 tokio
    // operations, renewed by its next poll; the nestloop loop runs inside
    // one such poll and must not stop (and spin) when the budget runs out.
    let (in_block_on, in_local_set) = watchdog(|| {
        let rt = multi_thread(1);
        let in_block_on = rt.block_on(async { nestloop::block_on(receive_from_tokio(1000)) });
        let local = tokio::task::LocalSet::new();
        let in_local_set = local.block_on(&rt, async {
            tokio::task::spawn_local(async { nestloop::block_on(receive_from_tokio(1000)) })
                .await
                .unwrap()
        });
        (in_block_on, in_local_set)
    });
    assert_eq!((in_block_on, in_local_set), (1000, 1000));
}

#[test]
fn nestloop_tasks_use_tokio_tcp_through_the_runtime_handle() {
    let reply = watchdog(|| {
        let rt = multi_thread(2);
        let ex = Executor::builder()
            .tokio_handle(rt.handle().clone())
            .build();
        let ex2 = ex.clone();
        ex.block_on(async move {
            let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
            let addr = listener.local_addr().unwrap();
            // A nestloop task serving one connection with tokio I/O.
            let server = ex2.spawn(async move {
                let (mut socket, _) = listener.accept().await.unwrap();
                let mut buf = [0u8; 4];
                socket.read_exact(&mut buf).await.unwrap();
                assert_eq!(&buf, b"ping");
                socket.write_all(b"pong").await.unwrap();
            });
            // The client waits from synchronous code, in a nested loop.
            let ex3 = ex2.clone();
            let client = ex2.spawn(async move {
                ex3.block_on(async move {
                    let mut stream = TcpStream::connect(addr).await.unwrap();
                    stream.write_all(b"ping").await.unwrap();
                    let mut buf = [0u8; 4];
                    stream.read_exact(&mut buf).await.unwrap();
                    String::from_utf8(buf.to_vec()).unwrap()
                })
            });
            let reply = client.await.unwrap();
            server.await.unwrap();
            reply
        })
    });
    assert_eq!(reply, "pong");
}

#[test]
fn with_runtime_gives_one_future_the_tokio_context() {
    let elapsed = watchdog(|| {
        let rt = multi_thread(1);
        let start = std::time::Instant::now();
        nestloop::block_on(nestloop::tokio::with_runtime(rt.handle().clone(), async {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }));
        start.elapsed()
    });
    assert!(elapsed >= Duration::from_millis(20));
}

#[test]
fn tokio_and_nestloop_timers_mix_in_a_nested_call() {
    watchdog(|| {
        let rt = multi_thread(1);
        let ex = Executor::builder()
            .tokio_handle(rt.handle().clone())
            .build();
        let ex2 = ex.clone();
        ex.block_on(async move {
            let ticker = ex2.spawn(async {
                let mut n = 0;
                let mut every = tokio::time::interval(Duration::from_millis(5));
                while n < 5 {
                    every.tick().await;
                    n += 1;
                }
                n
            });
            // A nested call on a nestloop timer while the tokio one ticks.
            let ex3 = ex2.clone();
            ex2.spawn(
                async move { ex3.block_on(nestloop::time::sleep(Duration::from_millis(40))) },
            )
            .await
            .unwrap();
            assert_eq!(ticker.await.unwrap(), 5);
        });
    });
}

// An executor that owns a current_thread runtime and drives it on its own
// thread (Builder::tokio_current_thread).

/// An executor that drives a tokio current_thread runtime of its own.
fn driving_tokio() -> Executor {
    Executor::builder().tokio_current_thread().build()
}

/// Runs `future` nested two loops below the caller's, each level a
/// nestloop task calling a synchronous function that calls `block_on`.
fn two_levels_down<T: 'static>(future: impl std::future::Future<Output = T> + 'static) -> T {
    nestloop::block_on(async move {
        nestloop::spawn(async move { nestloop::block_on(future) })
            .await
            .unwrap()
    })
}

#[test]
fn tokio_tasks_spawned_from_nestloop_tasks_run_to_completion() {
    let (top, nested, depth) = watchdog(|| {
        // Nested loops (fibers off), so the tokio tasks run two loops down.
        let ex = Executor::builder()
            .tokio_current_thread()
            .fibers(false)
            .build();
        let top = ex.block_on(async {
            // Spawned by a nestloop task; the runtime runs it when the loop
            // waits.
            nestloop::spawn(from_a_tokio_task(1)).await.unwrap()
        });
        let (nested, depth) = ex.block_on(async {
            nestloop::spawn(async {
                two_levels_down(async {
                    let handles: Vec<_> = (0..10)
                        .map(|i| {
                            tokio::spawn(async move {
                                tokio::time::sleep(Duration::from_millis(2)).await;
                                i
                            })
                        })
                        .collect();
                    let mut sum = 0;
                    for handle in handles {
                        sum += handle.await.unwrap();
                    }
                    (sum, nestloop::depth())
                })
            })
            .await
            .unwrap()
        });
        (top, nested, depth)
    });
    assert_eq!((top, nested, depth), (1, 45, 3));
}

#[test]
fn a_busy_loop_still_runs_tokio_tasks() {
    let (value, spins) = watchdog(|| {
        let ex = driving_tokio();
        let stop = std::rc::Rc::new(std::cell::Cell::new(false));
        let spins = std::rc::Rc::new(std::cell::Cell::new(0u64));
        let spinner = {
            let (stop, spins) = (stop.clone(), spins.clone());
            ex.spawn(async move {
                while !stop.get() {
                    spins.set(spins.get() + 1);
                    nestloop::yield_now().await;
                }
            })
        };
        // The loop always has a ready task, so it never waits: the tokio
        // task runs only in the turns it gives the runtime.
        let value = ex.block_on(from_a_tokio_task(7));
        stop.set(true);
        ex.block_on(spinner).unwrap();
        (value, spins.get())
    });
    assert_eq!(value, 7);
    assert!(spins > 100, "the busy task ran only {spins} times");
}

#[test]
fn block_on_in_a_task_spawned_with_tokio_spawn_panics_with_advice() {
    let msg = watchdog(|| {
        driving_tokio().block_on(async {
            let err = tokio::spawn(async { nestloop::block_on(async { 1 }) })
                .await
                .unwrap_err();
            common::panic_message(&*err.into_panic())
        })
    });
    assert!(
        msg.starts_with("nestloop: block_on called from a task spawned with tokio::spawn"),
        "{msg}"
    );
    assert!(msg.contains("nestloop::spawn"), "{msg}");
}

#[test]
fn tokio_handle_refuses_a_current_thread_runtime() {
    let rt = current_thread();
    let msg = expect_panic(|| Executor::builder().tokio_handle(rt.handle().clone()));
    assert!(
        msg.starts_with(
            "nestloop: Builder::tokio_handle was given the handle of a tokio current_thread runtime"
        ),
        "{msg}"
    );
    assert!(msg.contains("tokio_current_thread()"), "{msg}");
}

#[test]
fn executor_tokio_handle_is_the_owned_runtime() {
    let ex = driving_tokio();
    let handle = ex.tokio_handle().expect("a handle");
    assert_eq!(
        handle.runtime_flavor(),
        tokio::runtime::RuntimeFlavor::CurrentThread
    );
    // Polls run inside that runtime's context.
    let same = ex.block_on(async move { tokio::runtime::Handle::current().id() == handle.id() });
    assert!(same);
}

#[test]
fn a_nestloop_timer_started_by_a_tokio_task_ends_the_wait() {
    // The loop waits in the runtime with no nestloop timer pending; the
    // tokio task it runs there starts one, which must end that wait.
    let elapsed = watchdog(|| {
        driving_tokio().block_on(async {
            let start = std::time::Instant::now();
            tokio::spawn(async { nestloop::time::sleep(Duration::from_millis(10)).await })
                .await
                .unwrap();
            start.elapsed()
        })
    });
    assert!(elapsed >= Duration::from_millis(10));
    assert!(elapsed < Duration::from_secs(2), "woke after {elapsed:?}");
}

#[test]
fn an_interrupt_from_a_tokio_task_ends_the_wait() {
    let interrupted = watchdog(|| {
        let ex = driving_tokio();
        let interrupt = ex.interrupt_handle();
        let (_keep, never) = tokio::sync::oneshot::channel::<()>();
        ex.try_block_on(async move {
            // Runs while the loop waits in the runtime, on the loop's thread.
            tokio::spawn(async move {
                tokio::time::sleep(Duration::from_millis(5)).await;
                interrupt.interrupt();
            });
            never.await
        })
        .is_err()
    });
    assert!(interrupted, "try_block_on was not interrupted");
}

#[test]
fn nested_executors_with_runtimes_of_their_own_both_get_driven() {
    // The inner loop waits in its own runtime; the outer executor's tokio
    // timer and socket must still make progress.
    let (slept, reply) = watchdog(|| {
        let a = driving_tokio();
        let b = driving_tokio();
        let slept = a.spawn(async {
            tokio::time::sleep(Duration::from_millis(10)).await;
            1
        });
        let b2 = b.clone();
        let slept = a.block_on(async move { b2.block_on(slept).unwrap() });
        // A listener on `a`, a client on `b` nested inside it.
        let reply = a.block_on(async move {
            let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
            let addr = listener.local_addr().unwrap();
            let server = nestloop::spawn(async move {
                let (mut socket, _) = listener.accept().await.unwrap();
                socket.write_all(b"hi").await.unwrap();
            });
            let reply = b.block_on(async move {
                let mut stream = TcpStream::connect(addr).await.unwrap();
                let mut buf = [0; 2];
                stream.read_exact(&mut buf).await.unwrap();
                buf
            });
            server.await.unwrap();
            reply
        });
        (slept, reply)
    });
    assert_eq!((slept, &reply), (1, b"hi"));
}

/// With two executors with runtimes on the thread, a loop waits in one
/// runtime and gives the other a turn about every millisecond. I/O on the
/// one it waits in (here, replies from a peer thread) must still end each
/// wait at once: the turn is not a
/// timer to wait out blind to tokio's I/O (which made each of these round
/// trips take over 1 ms, 200 of them over 200 ms; they take about 0.2 ms,
/// the peer's 0.1 ms delay included).
/// A stall check with a generous bound, not a speed test (benches/http.rs
/// measures).
#[test]
fn io_on_one_of_two_runtimes_is_not_held_to_the_others_turns() {
    const ROUND_TRIPS: u32 = 200;
    // The peer is another thread, so its replies arrive while the loop
    // waits rather than during a turn.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let peer = std::thread::spawn(move || {
        use std::io::{Read, Write};
        let (mut socket, _) = listener.accept().unwrap();
        socket.set_nodelay(true).unwrap();
        let mut buf = [0; 1];
        while socket.read_exact(&mut buf).is_ok() {
            // Late enough to arrive after the loop's turns.
            std::thread::sleep(Duration::from_micros(100));
            socket.write_all(&buf).unwrap();
        }
    });
    let took = watchdog(move || {
        let other = driving_tokio();
        other.block_on(async {}); // now one of the thread's executors
        let ex = driving_tokio();
        ex.block_on(async move {
            let mut client = TcpStream::connect(addr).await.unwrap();
            client.set_nodelay(true).unwrap();
            let start = std::time::Instant::now();
            for _ in 0..ROUND_TRIPS {
                let mut buf = [7; 1];
                client.write_all(&buf).await.unwrap();
                client.read_exact(&mut buf).await.unwrap();
            }
            start.elapsed()
        })
    });
    peer.join().unwrap();
    assert!(
        took < Duration::from_millis(ROUND_TRIPS as u64 / 2),
        "{ROUND_TRIPS} round trips took {took:?}"
    );
}

/// A nestloop task spawned by a tokio task, which runs while the loop
/// waits in the runtime, ends the wait as a wake would (it waited for the
/// next event before, here forever).
#[test]
fn a_task_spawned_by_a_tokio_task_ends_the_loops_wait() {
    let got = watchdog(|| {
        let ex = driving_tokio();
        ex.block_on(async move {
            let (tx, rx) = tokio::sync::oneshot::channel();
            tokio::spawn(async move {
                tokio::time::sleep(Duration::from_millis(5)).await;
                drop(nestloop::spawn(async move { tx.send(7).unwrap() }));
            });
            rx.await.unwrap()
        })
    });
    assert_eq!(got, 7);
}

/// The advice a tokio call in an executor without a runtime gets.
fn assert_tokio_advice(msg: &str) {
    assert!(msg.starts_with("nestloop: a tokio call"), "{msg}");
    assert!(
        msg.contains("Executor::builder().tokio_current_thread()"),
        "{msg}"
    );
    assert!(
        msg.contains("Tokio 1.x runtime"),
        "tokio's words are kept: {msg}"
    );
}

#[test]
fn tokio_io_in_a_plain_executors_block_on_fails_with_advice() {
    watchdog(|| {
        let ex = Executor::new();
        let msg = expect_panic(|| ex.block_on(async { TcpListener::bind("127.0.0.1:0").await }));
        assert_tokio_advice(&msg);
        // Also after the first poll, and with the free block_on.
        let msg = expect_panic(|| {
            nestloop::block_on(async {
                nestloop::yield_now().await;
                tokio::time::sleep(Duration::from_millis(1)).await;
            })
        });
        assert_tokio_advice(&msg);
    });
}

#[test]
fn a_tokio_timer_in_a_plain_executors_task_fails_with_advice_in_its_join_error() {
    watchdog(|| {
        let ex = Executor::new();
        let task = ex.spawn(async { tokio::time::sleep(Duration::from_millis(1)).await });
        let err = ex.block_on(task).unwrap_err();
        assert!(err.is_panic());
        assert_tokio_advice(&common::panic_message(&*err.into_panic()));
    });
}

#[test]
fn another_executors_loop_drives_the_runtime_of_an_executor_without_a_loop() {
    watchdog(|| {
        // R1: the free block_on runs on the default executor; the tokio
        // executor has no loop of its own, yet its task runs and its tokio
        // timer fires (the loop waits in that executor's runtime).
        let ex = Executor::builder().tokio_current_thread().build();
        let task = ex.spawn(async {
            tokio::time::sleep(Duration::from_millis(5)).await;
            "slept on tokio's timer"
        });
        assert_eq!(nestloop::block_on(task).unwrap(), "slept on tokio's timer");
    });
}

/// Helpers called by two tasks, returning in the order their futures
/// finish: the first-opened shorter one first (R12; nested loops return
/// in stack order, the later-opened one first).
/// Each helper reports its finish through `done`, with whether tokio's
/// runtime context was in force when it returned and `nestloop::depth()`.
async fn two_helpers(
    sleep: impl Fn(u64) -> std::pin::Pin<Box<dyn std::future::Future<Output = ()>>> + Clone + 'static,
    wrap: impl Fn(
        std::pin::Pin<Box<dyn std::future::Future<Output = ()>>>,
    ) -> std::pin::Pin<Box<dyn std::future::Future<Output = ()>>>,
) -> Vec<(u64, bool, usize)> {
    let done = std::rc::Rc::new(std::cell::RefCell::new(Vec::new()));
    let tasks: Vec<_> = [10u64, 40]
        .into_iter()
        .map(|ms| {
            let (done, sleep) = (done.clone(), sleep.clone());
            nestloop::spawn(wrap(Box::pin(async move {
                nestloop::block_on(sleep(ms));
                let context = tokio::runtime::Handle::try_current().is_ok();
                done.borrow_mut().push((ms, context, nestloop::depth()));
            })))
        })
        .collect();
    for task in tasks {
        task.await.unwrap();
    }
    done.take()
}

/// With fibers (the default), a helper inside `with_runtime` suspends its
/// task's stack like any other: tokio's context is left while the stack
/// is suspended and entered again when it is resumed, so tokio sees its
/// guards dropped in order ("`EnterGuard` values dropped out of order"
/// otherwise) and the helpers return as their futures finish.
#[test]
fn helpers_inside_with_runtime_return_as_they_finish_with_tokios_context() {
    let rt = multi_thread(1);
    let handle = rt.handle().clone();
    let done = watchdog(move || {
        let ex = Executor::builder().fibers(true).build();
        ex.block_on(async move {
            two_helpers(
                |ms| Box::pin(tokio::time::sleep(Duration::from_millis(ms))),
                move |f| Box::pin(nestloop::tokio::with_runtime(handle.clone(), f)),
            )
            .await
        })
    });
    assert_eq!(done.iter().map(|d| d.0).collect::<Vec<_>>(), [10, 40]);
    assert!(done.iter().all(|d| d.1), "tokio's context lost: {done:?}");
    assert!(done.iter().all(|d| d.2 == 1), "a loop nested: {done:?}");
    drop(rt);
}

/// The same in an executor that drives a current_thread runtime of its
/// own: its tasks' helpers suspend their stacks too, keep tokio's context
/// and timers, and nest no loop (`depth()` stays at the task's own).
#[test]
fn helpers_in_a_tokio_executors_tasks_return_as_they_finish() {
    let done = watchdog(|| {
        let ex = Executor::builder()
            .tokio_current_thread()
            .fibers(true)
            .build();
        ex.block_on(async {
            two_helpers(
                |ms| Box::pin(tokio::time::sleep(Duration::from_millis(ms))),
                |f| f,
            )
            .await
        })
    });
    assert_eq!(done.iter().map(|d| d.0).collect::<Vec<_>>(), [10, 40]);
    assert!(done.iter().all(|d| d.1), "tokio's context lost: {done:?}");
    assert!(done.iter().all(|d| d.2 == 1), "a loop nested: {done:?}");
}

/// Executors with a tokio runtime end tasks suspended in helpers on
/// tokio's timer, with the runtime's context left on their stacks:
/// `shutdown()` resolves the handle as cancelled and runs the task's
/// destructors, and so does the thread's exit.
#[test]
fn shutdown_and_thread_exit_end_tasks_suspended_in_helpers_of_a_tokio_executor() {
    let dropped = common::DropCounter::new();
    let d = dropped.clone();
    let cancelled = watchdog(move || {
        let ex = Executor::builder()
            .tokio_current_thread()
            .fibers(true)
            .build();
        let blocked = |token: common::DropToken| {
            nestloop::spawn(async move {
                let _token = token;
                nestloop::block_on(tokio::time::sleep(Duration::from_secs(10)));
            })
        };
        let handle = ex.block_on(async {
            let handle = blocked(d.token());
            tokio::time::sleep(Duration::from_millis(5)).await;
            Some(handle)
        });
        ex.shutdown();
        let cancelled = nestloop::block_on(handle.unwrap())
            .unwrap_err()
            .is_cancelled();
        // The same at thread exit, with the executor kept by its task.
        let d = d.clone();
        std::thread::spawn(move || {
            let ex = Executor::builder()
                .tokio_current_thread()
                .fibers(true)
                .build();
            let keep = ex.clone();
            ex.block_on(async move {
                nestloop::spawn(async move {
                    let _keep = keep;
                    let _token = d.token();
                    nestloop::block_on(tokio::time::sleep(Duration::from_secs(10)));
                });
                tokio::time::sleep(Duration::from_millis(5)).await;
            });
        })
        .join()
        .unwrap();
        cancelled
    });
    assert!(cancelled);
    assert_eq!(dropped.dropped(), 2);
}
