//! Diagnostics: `nestloop::frames()` names, for each depth, the executor,
//! the call that runs the loop and what it is polling; the deadlock and
//! depth-limit panics print the same dump; tasks have unique ids and
//! optional names.

mod common;

use std::cell::RefCell;
use std::collections::HashSet;
use std::future::pending;
use std::rc::Rc;

use common::{expect_panic, watchdog};
use nestloop::{Executor, Frames, LoopKind, Polling, TaskBuilder, TaskId};

/// `file:line:` of a line of this file, as a `Location` displays it
/// (followed by the column).
fn at(line: u32) -> String {
    format!("{}:{line}:", file!())
}

/// Whether `location` is on `line` of this file.
fn is_at(location: &std::panic::Location<'_>, line: u32) -> bool {
    location.file() == file!() && location.line() == line
}

/// The task a frame polls: its id, name and spawn line.
fn polled_task(frames: &Frames, index: usize) -> (TaskId, Option<String>, u32) {
    match frames[index].polling() {
        Polling::Task {
            id,
            name,
            spawned_at,
            ..
        } => (*id, name.clone(), spawned_at.line()),
        other => panic!("frame {index} polls {other:?}, not a task:\n{frames}"),
    }
}

/// The line of the `block_on` whose future a frame polls.
fn polled_block_on(frames: &Frames, index: usize) -> u32 {
    match frames[index].polling() {
        Polling::BlockOn { called_at, .. } => called_at.line(),
        other => panic!("frame {index} polls {other:?}, not a block_on future:\n{frames}"),
    }
}

#[test]
fn outside_any_loop_the_snapshot_is_empty() {
    let frames = nestloop::frames();
    assert!(frames.is_empty());
    assert_eq!(frames.iter().count(), 0);
    assert!(frames.to_string().starts_with("nestloop: "), "{frames}");
}

#[test]
fn the_snapshot_names_each_depth_with_its_task_or_future() {
    watchdog(|| {
        let seen: Rc<RefCell<Vec<Frames>>> = Rc::default();
        let ex = common::nesting();
        let (ex2, seen2) = (ex.clone(), seen.clone());
        let outer_line = line!() + 1;
        let (ids, lines) = ex.block_on(async move {
            seen2.borrow_mut().push(nestloop::frames()); // depth 1, its own future
            let (ex3, seen3) = (ex2.clone(), seen2.clone());
            let task_line = line!() + 1;
            let task = TaskBuilder::new().name("outer task").spawn_on(
                async move {
                    seen3.borrow_mut().push(nestloop::frames()); // depth 1, the task
                    let seen4 = seen3.clone();
                    let nested_line = line!() + 1;
                    let inner_line = ex3.block_on(async move {
                        seen4.borrow_mut().push(nestloop::frames()); // depth 2
                        let seen5 = seen4.clone();
                        let inner_task_line = line!() + 1;
                        let inner = nestloop::spawn(async move {
                            seen5.borrow_mut().push(nestloop::frames()); // depth 3
                        });
                        let innermost_line = line!() + 1;
                        nestloop::block_on(inner).unwrap();
                        (inner_task_line, innermost_line)
                    });
                    (nested_line, inner_line)
                },
                &ex2,
            );
            let id = task.id();
            let lines = task.await.unwrap();
            (id, (task_line, lines))
        });
        let (task_id, (task_line, (nested_line, (inner_task_line, innermost_line)))) = (ids, lines);
        let seen = seen.borrow();
        assert_eq!(seen.len(), 4);
        for frames in seen.iter() {
            for frame in frames {
                assert_eq!(frame.executor_id(), ex.id());
                assert_eq!(frame.kind(), LoopKind::BlockOn);
            }
        }

        // Depth 1, the outermost block_on's own future.
        let frames = &seen[0];
        assert_eq!(frames.len(), 1, "{frames}");
        assert!(is_at(frames[0].location(), outer_line), "{frames}");
        assert_eq!(polled_block_on(frames, 0), outer_line);

        // Depth 1, polling the named task.
        let frames = &seen[1];
        assert_eq!(frames.len(), 1, "{frames}");
        let (id, name, line) = polled_task(frames, 0);
        assert_eq!(
            (id, name.as_deref(), line),
            (task_id, Some("outer task"), task_line)
        );

        // Depth 2: the task's nested block_on polls its own future.
        let frames = &seen[2];
        assert_eq!(frames.len(), 2, "{frames}");
        assert_eq!(polled_task(frames, 0).0, task_id);
        assert!(is_at(frames[1].location(), nested_line), "{frames}");
        assert_eq!(polled_block_on(frames, 1), nested_line);

        // Depth 3: the innermost loop polls the inner task.
        let frames = &seen[3];
        assert_eq!(frames.len(), 3, "{frames}");
        assert_eq!(polled_task(frames, 0).0, task_id);
        assert_eq!(polled_block_on(frames, 1), nested_line);
        assert!(is_at(frames[2].location(), innermost_line), "{frames}");
        let (inner_id, name, line) = polled_task(frames, 2);
        assert_ne!(inner_id, task_id);
        assert_eq!((name, line), (None, inner_task_line));

        // The dump says the same.
        let dump = frames.to_string();
        let lines: Vec<&str> = dump.lines().collect();
        assert_eq!(lines.len(), 4, "{dump}");
        assert!(lines[1].contains("depth 1: executor"), "{dump}");
        assert!(
            lines[1].contains(&format!("task {task_id} \"outer task\"")),
            "{dump}"
        );
        assert!(lines[1].contains(&at(task_line)), "{dump}");
        assert!(
            lines[2].contains(&format!("block_on at {}", at(nested_line))),
            "{dump}"
        );
        assert!(
            lines[3].contains(&format!("block_on at {}", at(innermost_line))),
            "{dump}"
        );
        assert!(
            lines[3].contains(&format!(
                "task {inner_id} spawned at {}",
                at(inner_task_line)
            )),
            "{dump}"
        );
    });
}

#[test]
fn other_loops_are_named_by_their_call() {
    watchdog(|| {
        let ex = Executor::new();
        let ex2 = ex.clone();
        let (try_line, stalled_line, frames) = ex
            .try_block_on(async move {
                let try_line = line!() - 1;
                let frames = Rc::new(RefCell::new(None));
                let frames2 = frames.clone();
                let _task = ex2.spawn(async move {
                    *frames2.borrow_mut() = Some(nestloop::frames());
                });
                let stalled_line = line!() + 1;
                ex2.run_until_stalled();
                let frames = frames.borrow_mut().take().unwrap();
                (try_line, stalled_line, frames)
            })
            .unwrap();
        assert_eq!(frames.len(), 2, "{frames}");
        assert_eq!(frames[0].kind(), LoopKind::TryBlockOn);
        assert!(is_at(frames[0].location(), try_line), "{frames}");
        assert_eq!(frames[1].kind(), LoopKind::RunUntilStalled);
        assert!(is_at(frames[1].location(), stalled_line), "{frames}");
        assert!(
            frames.to_string().contains("run_until_stalled at"),
            "{frames}"
        );
    });
}

#[test]
fn the_deadlock_panic_lists_the_frames() {
    watchdog(|| {
        let ex = common::nesting();
        let ex2 = ex.clone();
        let (task_line, deadlock_line, msg) = ex.block_on(async move {
            let deadlock_line = Rc::new(std::cell::Cell::new(0));
            let line = deadlock_line.clone();
            let task_line = line!() + 1;
            let err = TaskBuilder::new().name("stuck").spawn_on(
                async move {
                    nestloop::block_on(async move {
                        line.set(line!() + 1);
                        nestloop::block_on(pending::<()>())
                    })
                },
                &ex2,
            );
            let payload = err.await.unwrap_err().into_panic();
            let msg = common::panic_message(&*payload);
            (task_line, deadlock_line.get(), msg)
        });
        assert!(
            msg.contains("nestloop: deadlock in block_on at nesting depth 3"),
            "{msg}"
        );
        assert!(msg.contains("nestloop frames, outermost first:"), "{msg}");
        assert!(
            msg.contains(&format!("\"stuck\" spawned at {}", at(task_line))),
            "{msg}"
        );
        let last = msg.lines().last().unwrap();
        assert!(last.contains("depth 3: executor"), "{msg}");
        assert!(
            last.contains(&format!("block_on at {}", at(deadlock_line))),
            "{msg}"
        );
        assert!(last.ends_with("waiting"), "{msg}");
    });
}

#[test]
fn the_depth_limit_panic_lists_the_frames() {
    watchdog(|| {
        let ex = Executor::builder().max_depth(2).build();
        let ex2 = ex.clone();
        let msg = expect_panic(move || {
            ex.block_on(async move {
                let ex3 = ex2.clone();
                ex2.block_on(async move { ex3.block_on(async {}) })
            })
        });
        assert!(
            msg.starts_with("nestloop: nesting depth limit reached"),
            "{msg}"
        );
        assert!(msg.contains("depth 1: executor"), "{msg}");
        assert!(msg.contains("depth 2: executor"), "{msg}");
        assert!(!msg.contains("depth 3"), "{msg}");
    });
}

#[test]
fn task_ids_are_unique_and_survive_the_result() {
    watchdog(|| {
        let n = if cfg!(miri) { 20 } else { 1000 };
        let ex = Executor::new();
        let handles: Vec<_> = (0..n).map(|_| ex.spawn(async {})).collect();
        let spawner = ex.spawner();
        let remote =
            std::thread::spawn(move || (0..n).map(|_| spawner.spawn(async {})).collect::<Vec<_>>())
                .join()
                .unwrap();
        let mut ids = HashSet::new();
        for handle in handles.iter().chain(&remote) {
            assert_ne!(handle.id().as_u64(), 0);
            assert!(ids.insert(handle.id()), "a repeated id {}", handle.id());
            assert_eq!(handle.abort_handle().id(), handle.id());
        }
        for mut handle in handles.into_iter().chain(remote) {
            let id = handle.id();
            ex.block_on(&mut handle).unwrap();
            assert_eq!(handle.id(), id);
        }
    });
}

#[test]
fn a_named_task_shows_its_name_and_an_unnamed_one_none() {
    watchdog(|| {
        let ex = Executor::new();
        let name = |task: nestloop::JoinHandle<Frames>| match ex.block_on(task).unwrap()[0]
            .polling()
            .clone()
        {
            Polling::Task { name, .. } => name,
            other => panic!("{other:?}"),
        };
        let named = TaskBuilder::new()
            .name("alpha")
            .spawn_on(async { nestloop::frames() }, &ex);
        assert_eq!(name(named).as_deref(), Some("alpha"));
        let unnamed = ex.spawn(async { nestloop::frames() });
        assert_eq!(name(unnamed), None);
        // A name does not outlive its task: a later task never shows it.
        let free = ex.block_on(async {
            TaskBuilder::new()
                .name("beta")
                .spawn(async { nestloop::frames() })
                .await
        });
        let dump = free.unwrap().to_string();
        assert!(dump.contains("\"beta\""), "{dump}");
    });
}

#[test]
fn a_task_spawned_into_a_join_set_records_where_the_set_spawned_it() {
    let (frames, spawn_line) = watchdog(block_on_frames_of_set_task);
    assert_eq!(frames.len(), 1, "{frames}");
    let (_, name, line) = polled_task(&frames, 0);
    assert_eq!((name, line), (None, spawn_line), "{frames}");
}

/// The frames a task of a `JoinSet` sees, and the line of its spawn.
fn block_on_frames_of_set_task() -> (Frames, u32) {
    nestloop::block_on(async {
        let mut set = nestloop::JoinSet::new();
        let spawn_line = line!() + 1;
        set.spawn(async { nestloop::frames() });
        let frames = set.join_next().await.unwrap().unwrap();
        (frames, spawn_line)
    })
}
