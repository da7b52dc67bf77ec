//! `task_local!`: a value belongs to the task (or `block_on` future) that
//! entered its scope, also across nested loops, which poll other tasks
//! while that task's poll is on the stack.

mod common;

use std::cell::{Cell, RefCell};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::rc::Rc;
use std::time::Duration;

use common::{expect_panic, watchdog};
use nestloop::time::sleep;
use nestloop::{block_on, depth, spawn, yield_now};

nestloop::task_local! {
    static NAME: &'static str;
    static LEVEL: u32;
}

/// The current task's name, or "-" outside any scope.
fn name() -> &'static str {
    NAME.try_with(|n| *n).unwrap_or("-")
}

#[test]
fn a_task_polled_by_a_nested_loop_does_not_see_the_caller_s_value() {
    watchdog(|| {
        let seen = Rc::new(RefCell::new(Vec::new()));
        let log = seen.clone();
        common::nesting().block_on(async move {
            let a = spawn(NAME.scope("a", {
                let log = log.clone();
                async move {
                    let b = spawn({
                        let log = log.clone();
                        async move {
                            // Polled by a's nested loop, before and after
                            // entering a scope of its own.
                            log.borrow_mut().push(("b outside", name(), depth()));
                            NAME.scope("b", async {
                                log.borrow_mut().push(("b", name(), depth()))
                            })
                            .await;
                        }
                    });
                    // Synchronous code in task a runs a nested loop.
                    block_on(b).unwrap();
                    log.borrow_mut().push(("a after", name(), depth()));
                }
            }));
            a.await.unwrap();
        });
        assert_eq!(
            *seen.borrow(),
            [("b outside", "-", 2), ("b", "b", 2), ("a after", "a", 1)]
        );
    });
}

#[test]
fn a_block_on_future_sees_its_caller_s_value_on_every_poll() {
    watchdog(|| {
        block_on(async {
            NAME.scope("a", async {
                // Ready at once (polled inline), and polled again by its own
                // loop after a timer.
                assert_eq!(block_on(async { name() }), "a");
                let later = block_on(async {
                    sleep(Duration::from_millis(1)).await;
                    yield_now().await;
                    (name(), depth())
                });
                assert_eq!(later, ("a", 2));
            })
            .await;
        });
        // Outside any task: the caller's synchronous scope.
        NAME.sync_scope("main", || {
            assert_eq!(block_on(async { name() }), "main");
            assert_eq!(
                block_on(async {
                    yield_now().await;
                    name()
                }),
                "main"
            );
        });
    });
}

#[test]
fn a_block_on_future_polled_by_a_deeper_loop_still_sees_its_caller_s_value() {
    watchdog(|| {
        // Task a (scope "a") calls block_on(f); its loop polls task b
        // (scope "b"), which calls block_on(g); g wakes f, so g's loop, one
        // level up, polls f (rule R3). f is a's code: it sees "a".
        let polled_at = Rc::new(Cell::new((0, "")));
        let f_done = Rc::new(Cell::new(false));
        let (p, done) = (polled_at.clone(), f_done.clone());
        common::nesting().block_on(async move {
            let a = spawn(NAME.scope("a", async move {
                let (tx, rx) = futures::channel::oneshot::channel::<()>();
                let done2 = done.clone();
                let b = spawn(NAME.scope("b", async move {
                    block_on(async move {
                        tx.send(()).unwrap();
                        while !done2.get() {
                            yield_now().await;
                        }
                        assert_eq!(name(), "b");
                    });
                    assert_eq!(name(), "b");
                }));
                block_on(async move {
                    rx.await.unwrap();
                    p.set((depth(), name()));
                    done.set(true);
                });
                assert_eq!(name(), "a");
                b.await.unwrap();
            }));
            a.await.unwrap();
        });
        assert!(f_done.get());
        assert_eq!(
            polled_at.get(),
            (3, "a"),
            "f was polled by b's loop, as a's code"
        );
    });
}

#[test]
fn values_survive_three_nested_loops() {
    watchdog(|| {
        // a at depth 1 nests a loop that polls b, which nests a loop that
        // polls c: three task polls on the stack at once.
        let max_depth = Rc::new(Cell::new(0));
        let m = max_depth.clone();
        common::nesting().block_on(async move {
            let m2 = m.clone();
            let a = spawn(LEVEL.scope(1, async move {
                let m3 = m2.clone();
                let b = spawn(LEVEL.scope(2, async move {
                    let c = spawn(LEVEL.scope(3, async move {
                        m3.set(depth());
                        assert_eq!(LEVEL.get(), 3);
                    }));
                    let inner = block_on(async {
                        yield_now().await;
                        LEVEL.get()
                    });
                    assert_eq!(inner, 2);
                    block_on(c).unwrap();
                    assert_eq!(LEVEL.get(), 2);
                }));
                block_on(b).unwrap();
                assert_eq!(LEVEL.get(), 1);
            }));
            a.await.unwrap();
            assert!(LEVEL.try_with(|_| ()).is_err());
        });
        assert_eq!(max_depth.get(), 3);
    });
}

#[test]
fn unwinding_out_of_a_scope_restores_the_outer_value() {
    watchdog(|| {
        block_on(LEVEL.scope(1, async {
            let unwound = catch_unwind(AssertUnwindSafe(|| {
                block_on(LEVEL.scope(2, async {
                    assert_eq!(LEVEL.get(), 2);
                    panic!("inner");
                }))
            }));
            assert!(unwound.is_err());
            assert_eq!(LEVEL.get(), 1);
            // A task that panics inside its scope.
            let err = spawn(LEVEL.scope(3, async { panic!("task") }))
                .await
                .unwrap_err();
            assert!(err.is_panic());
            assert_eq!(LEVEL.get(), 1);
            let unwound = catch_unwind(|| LEVEL.sync_scope(4, || panic!("sync")));
            assert!(unwound.is_err());
            assert_eq!(LEVEL.get(), 1);
        }));
        assert!(LEVEL.try_with(|_| ()).is_err());
    });
}

#[test]
fn with_outside_a_scope_panics_with_advice() {
    watchdog(|| {
        let msg = expect_panic(|| LEVEL.with(|l| *l));
        assert!(
            msg.starts_with("nestloop: task-local value of type `u32`"),
            "{msg}"
        );
        assert!(msg.contains("scope"), "{msg}");
        // Spawned tasks do not inherit their spawner's value (as in tokio).
        let inherited = block_on(LEVEL.scope(1, async {
            spawn(async { LEVEL.try_with(|l| *l) }).await.unwrap()
        }));
        assert!(inherited.is_err());
    });
}

#[test]
fn with_lends_the_value_while_nested_loops_enter_scopes_of_the_same_key() {
    watchdog(|| {
        block_on(LEVEL.scope(1, async {
            let other = spawn(LEVEL.scope(2, async {
                yield_now().await;
                LEVEL.get()
            }));
            LEVEL.with(|level| {
                // Inside `with`: a nested loop runs a task entering a scope
                // of the same key, and a block_on future reads it.
                assert_eq!(block_on(other).unwrap(), 2);
                assert_eq!(block_on(async { LEVEL.get() }), 1);
                assert_eq!(*level, 1);
            });
        }));
    });
}

#[test]
fn an_aborted_task_is_dropped_with_its_own_value_not_the_aborter_s() {
    struct Probe(Rc<Cell<Option<u32>>>);
    impl Drop for Probe {
        fn drop(&mut self) {
            self.0.set(Some(LEVEL.try_with(|l| *l).unwrap_or(0)));
        }
    }
    watchdog(|| {
        let scoped = Rc::new(Cell::new(None));
        let bare = Rc::new(Cell::new(None));
        let (s, b) = (Probe(scoped.clone()), Probe(bare.clone()));
        block_on(LEVEL.scope(1, async move {
            let in_scope = spawn(LEVEL.scope(2, async move {
                let _probe = s;
                std::future::pending::<()>().await
            }));
            let no_scope = spawn(async move {
                let _probe = b;
                std::future::pending::<()>().await
            });
            yield_now().await;
            in_scope.abort();
            no_scope.abort();
        }));
        assert_eq!(scoped.get(), Some(2), "dropped inside its scope");
        assert_eq!(bare.get(), Some(0), "the aborter's value is not visible");
    });
}

#[test]
fn scopes_work_in_other_executors() {
    let seen = futures::executor::block_on(NAME.scope("x", async {
        yield_now().await;
        name()
    }));
    assert_eq!(seen, "x");
}

#[test]
fn a_scope_is_send_when_its_value_is_send_and_sync() {
    fn assert_send<T: Send>(_: &T) {}
    nestloop::task_local! { static SHARED: std::sync::Mutex<u32>; }
    let scoped = SHARED.scope(std::sync::Mutex::new(1), async {
        SHARED.with(|m| *m.lock().unwrap())
    });
    assert_send(&scoped);
    let ex = nestloop::Executor::new();
    assert_eq!(ex.block_on(ex.spawner().spawn(scoped)).unwrap(), 1);
}
