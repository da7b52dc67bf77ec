//! Feature `glib`: nestloop's loops waiting in a GLib main context, and a
//! GLib main loop running nestloop's tasks and timers (headless: GLib
//! only). Each test runs on its own thread with a context of its own
//! pushed as the thread-default one, as a GTK application's main thread
//! has the global default.
#![cfg(feature = "glib")]

#[path = "../../tests/common/mod.rs"]
mod common;

use std::cell::Cell;
use std::rc::Rc;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use common::{expect_panic, watchdog};
use glib::{ControlFlow, MainContext, MainLoop, Priority};
use nestloop::Executor;

/// Runs `scenario` on a watchdog thread with a fresh GLib context pushed
/// as the thread-default one.
fn with_context<T: Send + 'static>(scenario: impl FnOnce(MainContext) -> T + Send + 'static) -> T {
    watchdog(move || {
        let context = MainContext::new();
        context
            .with_thread_default(|| scenario(context.clone()))
            .expect("push the thread-default context")
    })
}

/// Adds a GLib timeout to `context` that runs `tick` every `ms` until it
/// breaks.
fn every(context: &MainContext, ms: u64, tick: impl FnMut() -> ControlFlow + Send + 'static) {
    glib::timeout_source_new(Duration::from_millis(ms), None, Priority::DEFAULT, tick)
        .attach(Some(context));
}

/// Runs a GLib main loop on `context` for `ms` milliseconds.
fn run_for(context: &MainContext, ms: u64) {
    let main_loop = MainLoop::new(Some(context), false);
    let quit = main_loop.clone();
    let mut quit = Some(quit);
    every(context, ms, move || {
        quit.take().unwrap().quit();
        ControlFlow::Break
    });
    main_loop.run();
}

/// Adds a one-shot idle source to `context`.
fn idle_once(context: &MainContext, f: impl FnOnce() + Send + 'static) {
    let mut f = Some(f);
    glib::idle_source_new(None, Priority::DEFAULT, move || {
        if let Some(f) = f.take() {
            f();
        }
        ControlFlow::Break
    })
    .attach(Some(context));
}

/// Runs `f` once from a GLib dispatch of `context` on this thread (a
/// future of `MainContext::spawn_local`, GLib's own executor: `f` need
/// not be `Send`, as with GTK's signal handlers).
fn local_once(context: &MainContext, f: impl FnOnce() + 'static) {
    context.spawn_local(async move { f() });
}

/// Runs `f` in synchronous code `levels` calls of `ex.block_on` deep: each
/// level below the first is a task whose code waits for the next one's.
fn nested<T: 'static>(ex: Executor, levels: usize, f: impl FnOnce() -> T + 'static) -> T {
    if levels == 1 {
        return ex.block_on(async move { f() });
    }
    let inner = ex.clone();
    ex.block_on(ex.spawn(async move { nested(inner, levels - 1, f) }))
        .unwrap()
}

/// A counter GLib callbacks can bump (they must be `Send`).
#[derive(Clone, Default)]
struct Count(Arc<AtomicUsize>);

impl Count {
    fn bump(&self) {
        self.0.fetch_add(1, Ordering::SeqCst);
    }
    fn get(&self) -> usize {
        self.0.load(Ordering::SeqCst)
    }
}

#[test]
fn glib_sources_keep_firing_while_a_glib_callback_blocks_at_depths_1_to_3() {
    for fibers in [false, true] {
        for levels in 1..=3 {
            let (ticks, idles, depth) = with_context(move |context| {
                let ex = Executor::builder().glib().fibers(fibers).build();
                let main_loop = MainLoop::new(Some(&context), false);
                // A 5 ms tick that also queues an idle source each time.
                let (ticks, idles) = (Count::default(), Count::default());
                every(&context, 5, {
                    let (ticks, idles, context) = (ticks.clone(), idles.clone(), context.clone());
                    move || {
                        ticks.bump();
                        let idles = idles.clone();
                        idle_once(&context, move || idles.bump());
                        ControlFlow::Continue
                    }
                });
                // A GLib callback (the main loop owns the thread) that
                // blocks in nestloop `levels` calls deep for 60 ms.
                let seen = Arc::new(std::sync::Mutex::new(None));
                let (t, i, s, quit) = (
                    ticks.clone(),
                    idles.clone(),
                    seen.clone(),
                    main_loop.clone(),
                );
                let call = move || {
                    let before = (t.get(), i.get());
                    let depth = nested(ex.clone(), levels, move || {
                        ex.block_on(nestloop::time::sleep(Duration::from_millis(60)));
                        nestloop::depth()
                    });
                    *s.lock().unwrap() = Some((t.get() - before.0, i.get() - before.1, depth));
                    quit.quit();
                };
                // A GLib callback of this thread (`idle_add_local` would
                // use the global default context).
                local_once(&context, call);
                main_loop.run();
                let seen = seen.lock().unwrap().take();
                seen.expect("the callback ran")
            });
            // 12 ticks in 60 ms; half is plenty on a loaded machine.
            assert!(ticks >= 6, "fibers {fibers}, depth {levels}: {ticks} ticks");
            assert!(idles >= 5, "fibers {fibers}, depth {levels}: {idles} idles");
            if !fibers {
                assert_eq!(depth, levels, "the call's nesting depth");
            }
        }
    }
}

#[test]
fn tasks_and_timers_run_under_a_running_glib_main_loop() {
    let (sleeps, from_callback, took) = with_context(|context| {
        let ex = Executor::builder().glib().build();
        let main_loop = MainLoop::new(Some(&context), false);
        let sleeps = Rc::new(Cell::new(0));
        let start = Instant::now();
        // Spawned before the main loop runs, with no nestloop loop running.
        let s = sleeps.clone();
        let sleeper = ex.spawn(async move {
            for _ in 0..3 {
                nestloop::time::sleep(Duration::from_millis(10)).await;
                s.set(s.get() + 1);
            }
        });
        // A task spawned by a GLib callback.
        let from_callback = Count::default();
        local_once(&context, {
            let (from_callback, ex) = (from_callback.clone(), ex.clone());
            move || {
                ex.spawn(async move {
                    nestloop::time::sleep(Duration::from_millis(5)).await;
                    from_callback.bump();
                });
            }
        });
        let quit = main_loop.clone();
        ex.spawn(async move {
            sleeper.await.unwrap();
            quit.quit();
        });
        main_loop.run();
        (sleeps.get(), from_callback.get(), start.elapsed())
    });
    assert_eq!((sleeps, from_callback), (3, 1));
    assert!(took >= Duration::from_millis(30), "took {took:?}");
}

/// A GLib callback dispatched while another one waits in `block_on` (from
/// the waiting loop's iteration) nests in it, with fibers too: GLib keeps
/// its dispatches in a per-thread stack that must unwind in order, so a
/// stack with a GLib dispatch in progress is not suspended, and the calls
/// return in GLib's nesting order (as in its own nested main loops), the
/// inner one first, even though the outer one's future is done first.
#[test]
fn a_glib_callback_dispatched_during_a_wait_nests_in_it() {
    let order = with_context(|context| {
        let _ex = Executor::builder().glib().build();
        let order = Arc::new(std::sync::Mutex::new(Vec::new()));
        let main_loop = MainLoop::new(Some(&context), false);
        let o = order.clone();
        idle_once(&context, move || {
            nestloop::block_on(nestloop::time::sleep(Duration::from_millis(20)));
            o.lock().unwrap().push("outer, 20 ms");
        });
        let (o, quit) = (order.clone(), main_loop.clone());
        let mut inner = Some(move || {
            nestloop::block_on(nestloop::time::sleep(Duration::from_millis(40)));
            o.lock().unwrap().push("inner, 40 ms");
        });
        every(&context, 5, move || {
            if let Some(inner) = inner.take() {
                inner();
                return ControlFlow::Continue;
            }
            // The next tick, once the outer callback has returned too.
            quit.quit();
            ControlFlow::Break
        });
        main_loop.run();
        order.lock().unwrap().clone()
    });
    assert_eq!(order, ["inner, 40 ms", "outer, 20 ms"]);
}

/// A task that runs a GLib main loop of its own (as `Dialog::run` did):
/// nestloop's other tasks and timers keep running inside it.
#[test]
fn tasks_run_inside_a_glib_main_loop_nested_in_a_task() {
    let ticks_inside = with_context(|context| {
        let ex = Executor::builder().glib().build();
        ex.block_on(async move {
            let ticks = Rc::new(Cell::new(0));
            let t = ticks.clone();
            let ticker = nestloop::spawn(async move {
                loop {
                    nestloop::time::sleep(Duration::from_millis(2)).await;
                    t.set(t.get() + 1);
                }
            });
            let dialog = nestloop::spawn(async move {
                let before = ticks.get();
                run_for(&context, 40);
                ticks.get() - before
            });
            let ticks_inside = dialog.await.unwrap();
            ticker.abort();
            ticks_inside
        })
    });
    // 20 ticks in 40 ms; a quarter is plenty on a loaded machine.
    assert!(
        ticks_inside >= 5,
        "{ticks_inside} ticks inside the nested main loop"
    );
}

#[test]
fn a_wake_from_another_thread_reaches_a_loop_waiting_in_glib() {
    let (in_block_on, under_main_loop) = with_context(|context| {
        let ex = Executor::builder().glib().build();
        let send_later = |ms| {
            let (tx, rx) = async_channel::bounded(1);
            std::thread::spawn(move || {
                std::thread::sleep(Duration::from_millis(ms));
                tx.send_blocking(ms).unwrap();
            });
            rx
        };
        // A loop waiting in GLib, woken by the other thread.
        let rx = send_later(20);
        let in_block_on = ex.block_on(async move { rx.recv().await.unwrap() });
        // Many wakes in a row, each of which may come just as the loop
        // goes to wait: none is lost.
        let (tx, rx) = async_channel::bounded(1);
        let sender = std::thread::spawn(move || {
            for i in 0..2_000u32 {
                tx.send_blocking(i).unwrap();
            }
        });
        let received = ex.block_on(async move {
            let mut n = 0;
            while rx.recv().await.is_ok() {
                n += 1;
            }
            n
        });
        sender.join().unwrap();
        assert_eq!(received, 2_000);
        // A task under a GLib main loop, woken by the other thread.
        let main_loop = MainLoop::new(Some(&context), false);
        let rx = send_later(20);
        let got = Rc::new(Cell::new(0));
        let (g, quit) = (got.clone(), main_loop.clone());
        ex.spawn(async move {
            g.set(rx.recv().await.unwrap());
            quit.quit();
        });
        main_loop.run();
        (in_block_on, got.get())
    });
    assert_eq!((in_block_on, under_main_loop), (20, 20));
}

#[test]
fn shutdown_with_sources_attached_leaves_glib_running() {
    let (dropped, ticks_after, rebuilt) = with_context(|context| {
        let dropped = common::DropCounter::new();
        let ex = Executor::builder().glib().build();
        // A task asleep on a nestloop timer (armed as a GLib timeout), and
        // one woken but not run yet (an idle source queued).
        ex.spawn(common::hold_forever(dropped.token()));
        let token = dropped.token();
        ex.spawn(async move {
            let _token = token;
            nestloop::time::sleep(Duration::from_secs(10)).await;
        });
        ex.block_on(nestloop::time::sleep(Duration::from_millis(2)));
        ex.spawn(common::hold_forever(dropped.token()));
        ex.shutdown();
        drop(ex);
        // GLib goes on; nestloop's sources find nothing to run.
        let ticks = Count::default();
        every(&context, 2, {
            let ticks = ticks.clone();
            move || {
                ticks.bump();
                ControlFlow::Continue
            }
        });
        run_for(&context, 30);
        // The thread's loops may wait in another context now.
        let other = MainContext::new();
        let rebuilt = Executor::builder()
            .glib_main_context(other)
            .build()
            .block_on(async { "rebuilt" });
        (dropped.dropped(), ticks.get(), rebuilt)
    });
    assert_eq!(dropped, 3);
    assert!(ticks_after >= 5, "{ticks_after} ticks");
    assert_eq!(rebuilt, "rebuilt");
}

#[test]
fn a_context_another_thread_owns_is_a_clear_error() {
    let context = MainContext::new();
    let main_loop = MainLoop::new(Some(&context), false);
    let owner = {
        let main_loop = main_loop.clone();
        std::thread::spawn(move || main_loop.run())
    };
    while !main_loop.is_running() {
        std::thread::yield_now();
    }
    let c = context.clone();
    let message =
        watchdog(move || expect_panic(move || Executor::builder().glib_main_context(c).build()));
    main_loop.quit();
    owner.join().unwrap();
    assert!(message.starts_with("nestloop:"), "{message}");
    assert!(message.contains("owned by another thread"), "{message}");
}

#[test]
fn a_second_context_on_one_thread_is_a_clear_error() {
    let message = with_context(|_| {
        let _ex = Executor::builder().glib().build();
        expect_panic(|| {
            Executor::builder()
                .glib_main_context(MainContext::new())
                .build()
        })
    });
    assert!(message.starts_with("nestloop:"), "{message}");
}

/// R1 with both reactors: while loops wait in GLib, an executor with a
/// tokio runtime of its own still has it driven (it gets a turn every
/// millisecond of a wait), so its task's tokio timer fires, and GLib's
/// sources fire meanwhile.
#[cfg(feature = "tokio")]
#[test]
fn a_tokio_executors_runtime_is_driven_while_loops_wait_in_glib() {
    let (slept, ticks) = with_context(|context| {
        let glib_ex = Executor::builder().glib().build();
        let tokio_ex = Executor::builder().tokio_current_thread().build();
        let ticks = Count::default();
        every(&context, 5, {
            let ticks = ticks.clone();
            move || {
                ticks.bump();
                ControlFlow::Continue
            }
        });
        let task = tokio_ex.spawn(async {
            tokio::time::sleep(Duration::from_millis(30)).await;
            "slept on tokio's timer"
        });
        (glib_ex.block_on(task).unwrap(), ticks.get())
    });
    assert_eq!(slept, "slept on tokio's timer");
    assert!(ticks >= 3, "{ticks} GLib ticks");
}

/// A loop that never runs out of ready tasks still lets GLib dispatch:
/// it gives GLib a turn every 256 polls, so a GLib timeout fires and
/// what it sends ends the `block_on` (it would never end otherwise).
#[test]
fn a_busy_loop_still_gives_glib_its_turns() {
    let got = with_context(|context| {
        let ex = Executor::builder().glib().build();
        let busy = ex.spawn(common::busy());
        let (tx, rx) = async_channel::bounded(1);
        let mut tx = Some(tx);
        every(&context, 5, move || {
            tx.take().unwrap().send_blocking(7).unwrap();
            ControlFlow::Break
        });
        let got = ex.block_on(async move { rx.recv().await.unwrap() });
        busy.abort();
        got
    });
    assert_eq!(got, 7);
}
