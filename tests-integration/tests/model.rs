//! Model-based test: random programs of spawns, nested `block_on`s (from
//! tasks and from `block_on` futures, on two executors), yields, sleeps,
//! timeouts, wakes (own thread and others), aborts (also of tasks on the
//! stack), panics and dropped handles, checked against what the program did:
//!
//! * every task finishes exactly once, with the outcome its run explains
//!   (`Ok` only if its body finished, a panic only if it panicked, cancelled
//!   only if it was aborted);
//! * no poll is reentrant;
//! * no wake is lost: everything finishes before a deadline;
//! * every task future is dropped exactly once;
//! * `depth()` and `task_count()` are right at every checkpoint.
//!
//! `PROPTEST_CASES` sets the number of cases (default 64 here; .ci/run runs
//! 10,000). Shrunk failures are kept in `tests/model.proptest-regressions`.

#[path = "../../tests/common/mod.rs"]
mod common;

use std::cell::{Cell, RefCell};
use std::future::Future;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::pin::Pin;
use std::rc::Rc;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use nestloop::{Executor, JoinHandle, Spawner, depth, yield_now};
use proptest::prelude::*;
use proptest::test_runner::{Config, FileFailurePersistence};

/// One step of a body.
#[derive(Debug, Clone)]
enum Op {
    Yield,
    /// Sleep this many microseconds.
    Sleep(u16),
    /// `block_on` of a body on executor 0 or 1.
    Nest(u8, Vec<Op>),
    /// Spawn a task running a body on executor 0 or 1.
    Spawn(u8, Vec<Op>, Fate),
    /// Spawn a small `Send` task from another thread.
    SpawnRemote(u8),
    /// Wake the last waker of task k (mod the number of tasks).
    Wake(u8),
    /// The same, from another thread.
    WakeFromThread(u8),
    /// Abort task k if its handle is still held by the world.
    Abort(u8),
    /// Run a body under a timeout of this many microseconds.
    Timeout(u16, Vec<Op>),
    /// Spawn a task that runs a body, then nests a `block_on` waiting for a
    /// message; yield so it gets there, then send the message: the nested
    /// call needs this body (an outer task or `block_on` future) to run.
    Handoff(Vec<Op>),
    Panic,
    /// Check `depth()` and `task_count()`.
    Check,
}

/// What a body does with the handle of a task it spawned.
#[derive(Debug, Clone, Copy)]
enum Fate {
    /// `.await` it at once.
    Await,
    /// `block_on` it at once (a nested loop).
    BlockOn,
    /// Drop it (detach).
    Detach,
    /// Abort it at once (maybe before its first poll).
    AbortNow,
    /// Keep it in the world (abortable by `Op::Abort`), await it at the end
    /// of the body.
    Later,
}

fn ops(depth: u32) -> impl Strategy<Value = Vec<Op>> {
    let leaf = prop_oneof![
        4 => Just(Op::Yield),
        2 => (0u16..300).prop_map(Op::Sleep),
        1 => any::<u8>().prop_map(Op::SpawnRemote),
        2 => any::<u8>().prop_map(Op::Wake),
        1 => any::<u8>().prop_map(Op::WakeFromThread),
        2 => any::<u8>().prop_map(Op::Abort),
        1 => Just(Op::Panic),
        2 => Just(Op::Check),
    ];
    let op = leaf.prop_recursive(depth, 64, 5, |inner| {
        let body = prop::collection::vec(inner, 0..6);
        let fate = prop_oneof![
            Just(Fate::Await),
            Just(Fate::BlockOn),
            Just(Fate::Detach),
            Just(Fate::AbortNow),
            Just(Fate::Later),
        ];
        prop_oneof![
            3 => (0u8..2, body.clone()).prop_map(|(e, b)| Op::Nest(e, b)),
            4 => (0u8..2, body.clone(), fate).prop_map(|(e, b, f)| Op::Spawn(e, b, f)),
            1 => (0u16..400, body.clone()).prop_map(|(t, b)| Op::Timeout(t, b)),
            1 => body.prop_map(Op::Handoff),
        ]
    });
    prop::collection::vec(op, 0..6)
}

/// How a task ended, as its handle said.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Outcome {
    Ok,
    Panicked,
    Cancelled,
}

/// What the world knows of one task.
#[derive(Debug, Default)]
struct TaskRecord {
    executor: usize,
    /// Its body ran to the end.
    completed: bool,
    /// A `Panic` op ran in its body (or a nested body it owns).
    panicked: bool,
    /// `abort()` was called on its handle.
    abort_requested: bool,
    /// Times its future was dropped.
    drops: u32,
    /// Being polled right now.
    in_poll: bool,
    /// What its handle resolved to, if someone awaited it.
    outcome: Option<Outcome>,
}

/// Shared state of one program run.
struct World {
    executors: [Executor; 2],
    spawners: [Spawner; 2],
    tasks: RefCell<Vec<TaskRecord>>,
    /// Handles the world holds (fate `Later`), by task id.
    handles: RefCell<Vec<Option<JoinHandle<usize>>>>,
    /// The waker each task was last polled with.
    wakers: RefCell<Vec<Option<Waker>>>,
    /// Threads started by the program, joined at the end.
    threads: RefCell<Vec<std::thread::JoinHandle<()>>>,
    /// Local tasks spawned per executor.
    spawned: [Cell<usize>; 2],
    /// Local task futures dropped per executor.
    dropped: [Cell<usize>; 2],
    /// Remote tasks spawned and dropped, per executor.
    remote_spawned: [Arc<AtomicUsize>; 2],
    remote_dropped: [Arc<AtomicUsize>; 2],
    violations: RefCell<Vec<String>>,
}

impl World {
    fn violation(&self, what: String) {
        self.violations.borrow_mut().push(what);
    }

    fn live(&self, e: usize) -> usize {
        self.spawned[e].get() - self.dropped[e].get()
            + self.remote_spawned[e].load(Ordering::SeqCst)
            - self.remote_dropped[e].load(Ordering::SeqCst)
    }

    fn all_finished(&self) -> bool {
        self.tasks.borrow().iter().all(|t| t.drops > 0)
            && (0..2).all(|e| {
                self.remote_spawned[e].load(Ordering::SeqCst)
                    == self.remote_dropped[e].load(Ordering::SeqCst)
            })
    }

    fn mark_panicked(&self, owner: Option<usize>) {
        if let Some(id) = owner {
            self.tasks.borrow_mut()[id].panicked = true;
        }
    }

    /// Checks a handle's result against the task's record.
    fn record_outcome(&self, id: usize, result: Result<usize, nestloop::JoinError>) {
        let mut tasks = self.tasks.borrow_mut();
        let t = &mut tasks[id];
        let outcome = match &result {
            Ok(v) => {
                if *v != id {
                    self.violation(format!("task {id} returned {v}"));
                }
                Outcome::Ok
            }
            Err(e) if e.is_panic() => Outcome::Panicked,
            Err(_) => Outcome::Cancelled,
        };
        let explained = match outcome {
            Outcome::Ok => t.completed,
            Outcome::Panicked => t.panicked && !t.completed,
            Outcome::Cancelled => t.abort_requested && !t.completed && !t.panicked,
        };
        if !explained {
            let err = result.err().map(|e| e.to_string());
            self.violation(format!(
                "task {id} resolved to {outcome:?} ({err:?}) but its record is {t:?}"
            ));
        }
        if t.drops != 1 {
            self.violation(format!(
                "task {id} resolved with its future dropped {} times",
                t.drops
            ));
        }
        if t.outcome.replace(outcome).is_some() {
            self.violation(format!("task {id} resolved twice"));
        }
    }

    fn check_counts(&self, min_depth: usize, at: &str) {
        if depth() < min_depth {
            self.violation(format!("{at}: depth {} < {min_depth}", depth()));
        }
        for e in 0..2 {
            let count = self.executors[e].task_count();
            if count != self.live(e) {
                self.violation(format!(
                    "{at}: executor {e} task_count {count}, expected {}",
                    self.live(e)
                ));
            }
        }
    }
}

/// A task's future: checks reentrancy, records wakers and drops.
struct TaskFuture {
    id: usize,
    world: Rc<World>,
    body: Pin<Box<dyn Future<Output = ()>>>,
}

impl Future for TaskFuture {
    type Output = usize;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<usize> {
        let id = self.id;
        {
            let mut tasks = self.world.tasks.borrow_mut();
            if tasks[id].in_poll {
                drop(tasks);
                self.world
                    .violation(format!("task {id} polled reentrantly"));
                return Poll::Pending;
            }
            tasks[id].in_poll = true;
        }
        self.world.wakers.borrow_mut()[id] = Some(cx.waker().clone());
        /// Clears `in_poll` on return and unwind.
        struct Leave(Rc<World>, usize);
        impl Drop for Leave {
            fn drop(&mut self) {
                self.0.tasks.borrow_mut()[self.1].in_poll = false;
            }
        }
        let _leave = Leave(self.world.clone(), id);
        match self.body.as_mut().poll(cx) {
            Poll::Ready(()) => {
                self.world.tasks.borrow_mut()[id].completed = true;
                Poll::Ready(id)
            }
            Poll::Pending => Poll::Pending,
        }
    }
}

impl Drop for TaskFuture {
    fn drop(&mut self) {
        let mut tasks = self.world.tasks.borrow_mut();
        let t = &mut tasks[self.id];
        t.drops += 1;
        if t.drops > 1 {
            drop(tasks);
            self.world
                .violation(format!("task {} dropped twice", self.id));
            return;
        }
        let e = t.executor;
        drop(tasks);
        self.world.dropped[e].set(self.world.dropped[e].get() + 1);
    }
}

/// Counts the drop of a remote task's future.
struct RemoteToken(Arc<AtomicUsize>);

impl Drop for RemoteToken {
    fn drop(&mut self) {
        self.0.fetch_add(1, Ordering::SeqCst);
    }
}

fn spawn_task(world: &Rc<World>, e: usize, body: Vec<Op>) -> (usize, JoinHandle<usize>) {
    spawn_task_then(world, e, body, None)
}

/// Spawns a task whose body is followed, when `wait` is given, by a nested
/// `block_on` of that receiver.
fn spawn_task_then(
    world: &Rc<World>,
    e: usize,
    body: Vec<Op>,
    wait: Option<futures::channel::oneshot::Receiver<()>>,
) -> (usize, JoinHandle<usize>) {
    let id = {
        let mut tasks = world.tasks.borrow_mut();
        tasks.push(TaskRecord {
            executor: e,
            ..TaskRecord::default()
        });
        tasks.len() - 1
    };
    world.wakers.borrow_mut().push(None);
    world.handles.borrow_mut().push(None);
    world.spawned[e].set(world.spawned[e].get() + 1);
    let body = run_body(world.clone(), Some(id), body, 2);
    let body: Pin<Box<dyn Future<Output = ()>>> = match wait {
        None => body,
        Some(rx) => Box::pin(async move {
            body.await;
            // A closed channel (the sender panicked) ends the wait too.
            let _ = nestloop::block_on(rx);
        }),
    };
    let future = TaskFuture {
        id,
        world: world.clone(),
        body,
    };
    (id, world.executors[e].spawn(future))
}

/// Runs `ops` in order. `owner` is the task whose poll this runs in (a
/// panic here is that task's), `min_depth` the least depth it can see.
fn run_body(
    world: Rc<World>,
    owner: Option<usize>,
    ops: Vec<Op>,
    min_depth: usize,
) -> Pin<Box<dyn Future<Output = ()>>> {
    Box::pin(async move {
        let mut later = Vec::new();
        for op in ops {
            match op {
                Op::Yield => yield_now().await,
                Op::Sleep(us) => nestloop::time::sleep(Duration::from_micros(us.into())).await,
                Op::Nest(e, body) => {
                    let before = depth();
                    let w = world.clone();
                    let inner = run_body(w.clone(), owner, body, before + 1);
                    world.executors[usize::from(e)].block_on(inner);
                    if depth() != before {
                        world.violation(format!(
                            "depth {} after a nested call made at {before}",
                            depth()
                        ));
                    }
                }
                Op::Spawn(e, body, fate) => {
                    let (id, handle) = spawn_task(&world, usize::from(e), body);
                    match fate {
                        Fate::Await => {
                            let r = handle.await;
                            world.record_outcome(id, r);
                        }
                        Fate::BlockOn => {
                            let r = world.executors[usize::from(e)].block_on(handle);
                            world.record_outcome(id, r);
                        }
                        Fate::Detach => drop(handle),
                        Fate::AbortNow => {
                            world.tasks.borrow_mut()[id].abort_requested = true;
                            handle.abort();
                            let r = handle.await;
                            world.record_outcome(id, r);
                        }
                        Fate::Later => {
                            world.handles.borrow_mut()[id] = Some(handle);
                            later.push(id);
                        }
                    }
                }
                Op::SpawnRemote(k) => {
                    let e = usize::from(k % 2);
                    let spawner = world.spawners[e].clone();
                    let spawned = world.remote_spawned[e].clone();
                    let token = RemoteToken(world.remote_dropped[e].clone());
                    spawned.fetch_add(1, Ordering::SeqCst);
                    // Joined at once, so the spawn is counted before the
                    // next checkpoint.
                    std::thread::spawn(move || {
                        drop(spawner.spawn(async move {
                            let _token = token;
                            yield_now().await;
                        }));
                    })
                    .join()
                    .unwrap();
                }
                Op::Wake(k) | Op::WakeFromThread(k) => {
                    let waker = {
                        let wakers = world.wakers.borrow();
                        if wakers.is_empty() {
                            None
                        } else {
                            wakers[usize::from(k) % wakers.len()].clone()
                        }
                    };
                    if let Some(waker) = waker {
                        if matches!(op, Op::Wake(_)) {
                            waker.wake();
                        } else {
                            world
                                .threads
                                .borrow_mut()
                                .push(std::thread::spawn(move || waker.wake()));
                        }
                    }
                }
                Op::Abort(k) => {
                    let n = world.handles.borrow().len();
                    if n > 0 {
                        let id = usize::from(k) % n;
                        let held = world.handles.borrow().get(id).is_some_and(Option::is_some);
                        if held {
                            world.tasks.borrow_mut()[id].abort_requested = true;
                            // Take the handle out while abort runs: it may
                            // drop the task's future here and now, and that
                            // drop touches the world.
                            let handle = world.handles.borrow_mut()[id].take().unwrap();
                            handle.abort();
                            world.handles.borrow_mut()[id] = Some(handle);
                        }
                    }
                }
                Op::Timeout(us, body) => {
                    let inner = run_body(world.clone(), owner, body, min_depth);
                    let _ = nestloop::time::timeout(Duration::from_micros(us.into()), inner).await;
                }
                Op::Handoff(body) => {
                    let (tx, rx) = futures::channel::oneshot::channel();
                    let (id, handle) = spawn_task_then(&world, 0, body, Some(rx));
                    yield_now().await;
                    let _ = tx.send(());
                    let r = handle.await;
                    world.record_outcome(id, r);
                }
                Op::Panic => {
                    world.mark_panicked(owner);
                    std::panic::panic_any(ModelPanic);
                }
                Op::Check => world.check_counts(min_depth, "checkpoint"),
            }
        }
        for id in later {
            let handle = world.handles.borrow_mut()[id].take();
            if let Some(handle) = handle {
                let r = handle.await;
                world.record_outcome(id, r);
            }
        }
    })
}

/// The payload of a `Panic` op.
struct ModelPanic;

fn run_program(program: Vec<Op>) -> Vec<String> {
    let ex0 = Executor::new();
    let ex1 = Executor::new();
    let world = Rc::new(World {
        spawners: [ex0.spawner(), ex1.spawner()],
        executors: [ex0.clone(), ex1.clone()],
        tasks: RefCell::default(),
        handles: RefCell::default(),
        wakers: RefCell::default(),
        threads: RefCell::default(),
        spawned: Default::default(),
        dropped: Default::default(),
        remote_spawned: Default::default(),
        remote_dropped: Default::default(),
        violations: RefCell::default(),
    });

    // Both executors have a loop for the whole program.
    let w = world.clone();
    let result = catch_unwind(AssertUnwindSafe(|| {
        ex1.block_on(async {
            ex0.block_on(async move {
                let body = run_body(w.clone(), None, program, 2);
                // A panic op in main's own body marks no task.
                let out = futures::FutureExt::catch_unwind(AssertUnwindSafe(body)).await;
                if let Err(payload) = out
                    && payload.downcast_ref::<ModelPanic>().is_none()
                {
                    std::panic::resume_unwind(payload);
                }
            })
        })
    }));
    if let Err(payload) = result {
        let msg = common::panic_message(&*payload);
        world.violation(format!("unexpected panic out of the program: {msg}"));
    }
    if depth() != 0 {
        world.violation(format!("depth {} after the program", depth()));
    }

    // Drive both executors until every task has finished; a lost wake leaves
    // one pending past the deadline.
    let w = world.clone();
    let finished = ex1.block_on(async {
        ex0.block_on(nestloop::time::timeout(
            Duration::from_secs(2),
            async move {
                while !w.all_finished() {
                    nestloop::time::sleep(Duration::from_micros(200)).await;
                }
            },
        ))
    });
    if finished.is_err() {
        let pending: Vec<_> = world
            .tasks
            .borrow()
            .iter()
            .enumerate()
            .filter(|(_, t)| t.drops == 0)
            .map(|(i, t)| format!("{i}: {t:?}"))
            .collect();
        world.violation(format!("tasks never finished (lost wake?): {pending:?}"));
    }
    for t in world.threads.borrow_mut().drain(..) {
        t.join().unwrap();
    }
    world.check_counts(0, "end");
    // Handles the world still holds: their tasks finished; check outcomes.
    let held: Vec<_> = world
        .handles
        .borrow_mut()
        .iter_mut()
        .enumerate()
        .filter_map(|(i, h)| h.take().map(|h| (i, h)))
        .collect();
    for (id, handle) in held {
        let r = ex0.block_on(async { ex1.block_on(handle) });
        world.record_outcome(id, r);
    }
    for (id, t) in world.tasks.borrow().iter().enumerate() {
        if t.drops != 1 {
            world.violation(format!("task {id} future dropped {} times", t.drops));
        }
        if t.in_poll {
            world.violation(format!("task {id} still marked in poll"));
        }
    }
    ex0.shutdown();
    ex1.shutdown();
    if ex0.task_count() + ex1.task_count() != 0 {
        world.violation("tasks left after shutdown".into());
    }
    world.wakers.borrow_mut().clear();
    world.violations.take()
}

/// Keeps the panic hook from printing the (many, expected) `Panic` ops.
fn quiet_model_panics() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let default = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            if info.payload().downcast_ref::<ModelPanic>().is_none() {
                default(info);
            }
        }));
    });
}

fn config() -> Config {
    let cases = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|c| c.parse().ok())
        .unwrap_or(64);
    Config {
        cases,
        failure_persistence: Some(Box::new(FileFailurePersistence::WithSource(
            "proptest-regressions",
        ))),
        ..Config::default()
    }
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn random_programs_keep_every_promise(program in ops(5)) {
        quiet_model_panics();
        let violations = common::watchdog_with(4 << 20, Duration::from_secs(6), move || {
            run_program(program)
        });
        prop_assert!(violations.is_empty(), "{violations:#?}");
    }
}
