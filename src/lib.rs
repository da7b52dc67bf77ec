//! A single-threaded async executor whose `block_on` is reentrant.
//!
//! Synchronous code running inside an async task can call [`block_on`] and
//! it just works: the nested call keeps driving every loop already running on
//! this thread (their tasks, timers and woken futures) until its own future is
//! done. It is the Rust counterpart of Python's `nest_asyncio`.
//!
//! ```
//! use std::time::Duration;
//!
//! // A synchronous helper, e.g. a scripting-engine callback or a sync trait
//! // method, that needs an async result.
//! fn lookup(key: &str) -> String {
//!     let key = key.to_owned();
//!     // Waits on a task of the loop that is already running below us.
//!     let task = nestloop::spawn(async move {
//!         nestloop::time::sleep(Duration::from_millis(1)).await;
//!         key.to_uppercase()
//!     });
//!     nestloop::block_on(task).unwrap()
//! }
//!
//! let answer = nestloop::block_on(async {
//!     // Async code calls the sync helper, which nests a block_on.
//!     lookup("hello")
//! });
//! assert_eq!(answer, "HELLO");
//! ```
//!
//! Elsewhere the same program fails: tokio panics with "Cannot start a
//! runtime from within a runtime", `futures::executor::block_on` panics with
//! "cannot execute `LocalPool` executor from within another executor"
//! inside one of its own loops, and `pollster`, `futures-lite` and
//! `futures::executor::block_on` inside any other executor (nestloop's
//! included) deadlock, because the task the inner call waits for belongs to
//! a loop that no longer runs. Inside nestloop, nest with
//! `nestloop::block_on`.
//!
//! # The model
//!
//! Every `block_on` (and [`Executor::run_until_stalled`]) call is a *loop*
//! and pushes a *frame* on a per-thread stack; [`depth`] counts them. While a
//! loop runs, it polls:
//!
//! * its own future, when woken;
//! * the ready tasks of **every executor created on this thread**, in the
//!   order they were woken (one run queue per thread);
//! * the woken futures of outer `block_on` calls, unless they are on the
//!   stack (they made the nested call);
//! * the thread's due timers.
//!
//! It returns as soon as its own future is done. A task or future that is on
//! the stack is never polled again until its poll returns; wakes it gets
//! meanwhile are kept and honoured afterwards. Panics go to their owner: a
//! task's panic to its [`JoinHandle`], a `block_on` future's panic out of
//! that `block_on`, even when a deeper loop polled it.
//!
//! There is one loop per thread, as asyncio has: the loops on a thread
//! share one run queue, into which every executor created on the thread
//! (the thread's default executor, where [`spawn`] puts tasks outside any
//! loop, and every [`Executor::new`]) queues its woken tasks. So a task
//! completes in whichever `block_on` runs next, of any executor, at any
//! depth; an executor with no ready task costs the loops nothing.

//! # Scheduling
//!
//! Tasks run in the order they were woken (FIFO, as asyncio runs its ready
//! queue). A loop's own `block_on` future takes its place in that order
//! (asyncio's `run` wraps the main coroutine in a task of the same ready
//! queue), with one exception for nested calls:
//!
//! * **A woken `block_on` future gets its turn promptly.** Woken on its
//!   thread (by a task, a timer, a channel), it is polled before any task
//!   woken after it: the loop ends its batch of tasks for it. What the poll
//!   that woke it queued counts as woken after it, the polled task itself
//!   included when it comes back from a yield: a REPL cell that shares a
//!   channel with a consumer task, and is woken when the consumer passes a
//!   wake on, runs before the consumer takes its place in the channel's
//!   queue of receivers again.
//! * **A nested call goes first, and unwinds as soon as it can.** A nested
//!   `block_on`'s future, once woken, is polled before any other task, and
//!   one that woke itself in its first poll (a `yield_now`) is polled again
//!   before any task. So a REPL cell nested in a task gets the channel items it is
//!   woken for before a consumer task can take them, and when many tasks
//!   each call a helper that nests one `block_on` whose future is ready
//!   soon (after a yield, a wake by a ready task), each takes one level in
//!   turn: depth does not grow with the number of such tasks (nest-asyncio
//!   fails such programs with a `RecursionError`). See "Depth" below for
//!   helpers that wait longer.
//! * **Fairness is bounded both ways.** A future that wakes itself again
//!   (`yield_now`) waits behind the tasks queued at that moment, up to 64,
//!   so it cannot starve them; and tasks cannot starve a woken future: at
//!   most 64 task polls pass between its wake and its poll. A wake from
//!   another thread is polled after the current batch (so a stream from
//!   there is taken in batches). tokio's current_thread runtime polls its
//!   `block_on` future between batches of 61 tasks in the same way.
//!
//! # Running forever
//!
//! A server's or host's main whose work is all in tasks runs the loop with
//! [`Executor::run_forever`] (or `block_on(std::future::pending())`, as in
//! tokio and async-executor): it serves the thread's tasks and sleeps while
//! nothing is ready. While any task can still be woken (a waker of it is
//! held by a socket, a channel, another thread) this is never taken for a
//! deadlock; when nothing on the thread can ever run again, the deadlock
//! check reports it instead of sleeping forever. Run it inside
//! [`Executor::try_block_on`] to stop it with an interrupt.
//!
//! # Rules
//!
//! The behaviour nestloop guarantees, numbered as the code's comments and
//! the tests cite them:
//!
//! * **R1 Nesting, one loop per thread.** `block_on` while a loop runs on
//!   the thread runs a nested loop until its own future is done; then it
//!   returns at once. Every loop on a thread, outermost or nested, of any
//!   executor, drives every executor created on that thread (its tasks,
//!   timers and wakes), so a task of an executor that has no loop of its
//!   own runs under whatever loop the thread is in. `run_until_stalled` is
//!   a loop too.
//! * **R2 No reentrant poll.** A task or future on the stack is never polled
//!   again before its poll returns; wakes it gets meanwhile are kept.
//! * **R3 Outer futures progress.** A woken future of an outer `block_on`
//!   that is not on the stack is polled by the nested loop; its output waits
//!   for its own `block_on`.
//! * **R4 Panics go to their owner:** a task's to its [`JoinHandle`], a
//!   `block_on` future's out of that `block_on`.
//! * **R5 Cancellation.** `abort()`, `shutdown()` and dropping the executor
//!   drop futures promptly; every handle resolves, none hangs.
//! * **R6 Several executors.** A nested loop of executor B drives executor
//!   A's tasks too.
//! * **R7 Other threads.** Wakers are `Send + Sync`; a wake from another
//!   thread wakes a parked loop at any depth; [`Spawner`] spawns from any
//!   thread.
//! * **R8 Timers** belong to the thread: every loop fires the due ones, and
//!   an idle loop sleeps until the next deadline or a wake.
//! * **R9 Deadlock detection.** A pending `block_on` with nothing on the
//!   thread able to run again (no task ready or wakeable, no timer, no live
//!   waker of the future but in the `JoinHandle` of a task that can never
//!   finish, no live `InterruptHandle` of an enclosing `try_block_on`)
//!   panics instead of hanging; a loop with live tasks serves them.
//! * **R10 Depth limit.** The stack left bounds nesting, with a clean
//!   `nestloop:` panic; [`Builder::max_depth`] adds an optional count.
//! * **R11 Scheduling and fairness.** Wake order, with a woken `block_on`
//!   future before the tasks woken after it and a nested one first; bounded
//!   both ways (see Scheduling above).
//!
//! # What a nested call cannot do
//!
//! Where a call nests a loop on its caller's stack: with fibers off, and
//! where the next section says calls still nest (fibers, the default,
//! lift the first, second and fourth points for calls inside tasks).
//!
//! * **Unwinding is in stack order.** A nested `block_on` whose future is
//!   done returns only when every loop opened above it has returned. An
//!   outer `block_on` whose future completes during a nested call returns
//!   once control is back in it.
//! * **A task suspended further down the stack cannot finish.** If task A
//!   calls `block_on(f)` and `f` waits for A's own result (or for something
//!   only A would do after `block_on` returns), nothing can complete it
//!   (nest-asyncio issue #66). The deadlock check (on by default,
//!   [`Builder::detect_deadlock`]) reports what it can prove with a
//!   `nestloop:` panic instead of hanging: `f` is pending, nothing is ready,
//!   no timer is pending, and every clone of `f`'s waker is either gone or
//!   sits in the [`JoinHandle`] of a task that is on the stack (so
//!   `block_on(handle_of_a)` inside A is caught), and no other task can be
//!   woken. A waker hidden inside another waker (a combinator's, a
//!   channel's whose sender A holds) looks alive to it, and so does any
//!   task whose waker is held somewhere; the call then waits.
//! * **Borrows across the call are visible to others.** Other tasks and outer
//!   futures run during a nested call, so state the synchronous caller holds
//!   borrowed across `block_on` (a `RefCell` borrow, a lock) can be touched
//!   meanwhile, and a second `borrow_mut` there panics.
//! * **Depth grows with the calls waiting at once.** [`depth`] is the
//!   number of `block_on` and `run_until_stalled` calls in progress on the
//!   thread. A nested call whose future is ready at its first poll returns
//!   at once; one whose future must wait holds its level until it returns,
//!   and it returns only after every call opened above it (see the first
//!   point). So every helper that starts while others wait adds a level:
//!   200 connections whose handlers each wait 20-50 ms in a helper reach
//!   depth 201.
//! * **Depth is bounded by the stack.** Nesting deeper than the thread's
//!   stack holds panics cleanly instead of overflowing the stack. A level
//!   takes 1-7 KiB in a debug build and 0.2-2 KiB in release in the
//!   handlers measured (10-12 KiB in larger ones): a 2 MiB thread holds a
//!   few hundred waiting helpers in a debug build. [`Builder::max_depth`]
//!   has the table, and adds an optional count.
//!
//! # Fibers: calls that return when their own future is done
//!
//! With fibers ([`Builder::fibers`], on by default on x86_64 and AArch64;
//! the environment variable `NESTLOOP_FIBERS=0` turns them off for every
//! executor whose builder does not say, the thread's default executor
//! included), the model is gevent's rather than nest-asyncio's. The executor's loops run
//! on stacks of their own ("fibers"). A `block_on` inside a task whose
//! future is pending suspends the fiber it runs on, with the task's poll
//! in it, and the thread's loop goes on on another fiber; when the
//! future is woken, a loop switches back, the call polls it there, and it
//! returns as soon as it is done. For calls inside tasks three limits
//! above go: calls return when their own future is done, not in stack
//! order (a 5 ms helper opened before an 80 ms one returns first); a call
//! waiting for a task itself blocked in a call completes (nest-asyncio
//! #66); and waiting calls do not deepen any stack (10,000 wait at once on
//! a 2 MiB thread; [`depth`] stays where the task runs).
//!
//! A waiting call costs about 5 KiB of memory and 1.2 times a nested
//! loop's time; nothing is paid until a call waits. The stack size, the
//! hazards that stay and where calls still nest are in
//! [`Builder::fibers`]. `abort()`, shutdown and thread exit end a call
//! blocked in a fiber at once by unwinding its stack; the deadlock check
//! covers waiting calls; recursion through `block_on` on a fiber ends in
//! the same clean `nestloop:` panic as on the thread.
//!
//! # Blocking work
//!
//! A task that makes a blocking call (a file read, a DNS lookup with
//! `to_socket_addrs`, a compression, a synchronous library with no async
//! API) blocks its thread, and with it every loop on the thread: all tasks,
//! timers and nesting levels wait. Run such work on a thread pool with the
//! [`blocking`](https://docs.rs/blocking) crate (smol's, as tokio has
//! `spawn_blocking`): `blocking::unblock(|| ...)` returns a future the task
//! awaits; the pool's thread wakes the loop through the task's waker (wakers
//! are `Send + Sync`) when the work is done, so the loop runs other tasks
//! meanwhile and sleeps while there are none. `blocking::Unblock` wraps a
//! `std::fs::File` or stdin as an async reader or writer.
//!
//! ```rust,ignore
//! // `ignore`: nestloop does not depend on `blocking`; add `blocking = "1"`
//! // to your Cargo.toml.
//! nestloop::block_on(async {
//!     let ticker = nestloop::spawn(async { /* keeps running meanwhile */ });
//!     let text = blocking::unblock(|| std::fs::read_to_string("Cargo.toml")).await?;
//!     ticker.await.unwrap();
//!     Ok::<_, std::io::Error>(text.len())
//! })
//! ```
//!
//! The same mechanism with a plain thread and a channel, tested here:
//!
//! ```
//! let sum = nestloop::block_on(async {
//!     let (tx, rx) = futures::channel::oneshot::channel();
//!     std::thread::spawn(move || tx.send((1..=100_u64).sum::<u64>()));
//!     rx.await.unwrap() // the other thread's send wakes this loop
//! });
//! assert_eq!(sum, 5050);
//! ```
//!
//! `unblock` or a nested `block_on`? They solve opposite problems. A nested
//! `block_on` lets *synchronous* code wait for *async* work while the
//! thread's loops keep running; it does not help with a call that blocks
//! the thread itself, which stops everything whatever the depth. `unblock`
//! moves a *blocking* call off the thread so async code can await it.
//! Synchronous code (a callback, a `Drop`) that has blocking work to do and
//! wants the tasks to keep running can combine them:
//! `nestloop::block_on(blocking::unblock(work))`. With feature `tokio` and a
//! runtime's context (`Builder::tokio_handle`,
//! `Builder::tokio_current_thread`), `tokio::task::spawn_blocking` works
//! the same way.
//!
//! # Task-local storage
//!
//! [`task_local!`] declares keys as tokio's `task_local!` does: a value set
//! with `KEY.scope(value, future)` is seen by that future's code
//! ([`LocalKey::with`](task_local::LocalKey::with), `get`, `try_with`), and
//! by nothing else. nestloop's keys stay correct across nesting: when a
//! task's synchronous code calls a nested `block_on`, the tasks that nested
//! loop polls meanwhile do not see the task's value (they see their own),
//! and the task sees it again when `block_on` returns. The `block_on`
//! future itself is the task's code: it sees the task's value on every
//! poll, also when a deeper nested loop polls it (rule R3). Spawned tasks do
//! not inherit values, as in tokio.
//!
//! ```
//! nestloop::task_local! { static USER: &'static str; }
//!
//! nestloop::block_on(async {
//!     let other = nestloop::spawn(async { USER.try_with(|u| *u).is_err() });
//!     USER.scope("ann", async {
//!         // A nested loop runs `other` here: it does not see "ann".
//!         assert!(nestloop::block_on(other).unwrap());
//!         assert_eq!(nestloop::block_on(async { USER.get() }), "ann");
//!     })
//!     .await;
//! });
//! ```
//!
//! What nestloop cannot switch across nesting is state other code keeps in
//! plain thread-locals for the length of a poll or a call: a task polled by
//! a nested loop sees it as the caller left it. That includes tokio's
//! `task_local!` (a tokio scope entered by task A is visible to every task
//! A's nested loop polls), `tracing`'s current span without feature
//! `tracing` (a span that task A has entered, by `Instrument` or
//! `Span::enter`, is where the tasks of A's nested loop record, unless they
//! are instrumented themselves; with the feature each task has a span of
//! its own, see below), `tracing::dispatcher::with_default`, and
//! `std::thread_local!` values of your own. Use nestloop's `task_local!`
//! for per-task context in code that nests.
//!
//! # Tracing
//!
//! With feature `tracing`, every task runs in a span of its own, entered on
//! each poll (and around the drop of its future): level INFO, target
//! `nestloop::task`, name `task`, with the fields `task.id` (its
//! [`TaskId`]), `task.name` (when [`TaskBuilder::name`] gave one) and
//! `loc.file`, `loc.line`, `loc.col` (where it was spawned), as tokio names
//! the fields of its task spans. The span has no parent, as tokio's do, so
//! an event is recorded in the span of the task that emitted it even when a
//! nested loop polls that task inside another task's poll, with the
//! caller's spans still entered below it. A filter such as
//! `nestloop::task=off` turns the spans off (and with them that
//! attribution).
//!
//! nestloop's own events have target `nestloop`: at DEBUG, "nested loop
//! entered" and "nested loop left" (fields `depth`, `called_at`,
//! `unwinding`), and the deadlock and depth-limit reports, recorded just
//! before their panic with the same text; at TRACE, "loop waits" each time
//! a loop finds nothing ready and sleeps. A nested `block_on` whose future
//! is ready at its first poll runs no loop and records nothing.
//!
//! ```
//! # #[cfg(feature = "tracing")] {
//! let handle = nestloop::TaskBuilder::new().name("fetch").spawn(async {
//!     // Recorded in span `task{task.id=.. task.name="fetch" loc.file=..}`.
//!     tracing::info!("fetching");
//! });
//! nestloop::block_on(handle).unwrap();
//! # }
//! ```
//!
//! # Diagnostics
//!
//! [`frames`] takes a snapshot of the loops on the thread, outermost first:
//! for each depth, the executor ([`Executor::id`]), the call that runs the
//! loop and where it was made (every spawn and loop entry point is
//! `#[track_caller]`), and what the loop is polling: a task (its
//! [`TaskId`], its name if [`TaskBuilder::name`] gave one, where it was
//! spawned) or a `block_on` future (where that call was made). Its
//! `Display` is the dump that the deadlock and depth-limit panics print. It
//! costs the polls one word of bookkeeping; a task carries its id and spawn
//! location (two words), and a name only when it has one.
//!
//! # Interrupts
//!
//! [`Executor::try_block_on`] is the interruptible form of `block_on`: an
//! [`InterruptHandle::interrupt`] (from any thread, e.g. a Ctrl-C handler)
//! makes the innermost running `try_block_on` of that executor return
//! `Err(Interrupted)`, unwinding the plain `block_on` calls nested inside it
//! without panic messages. It is Python's `KeyboardInterrupt` for a REPL.
//!
//! # Hosts
//!
//! * **REPLs and notebook kernels**: run each line in `try_block_on`, wire
//!   Ctrl-C to an [`InterruptHandle`], read input on a helper thread so tasks
//!   run while the prompt waits (`examples/hosts/examples/repl.rs`).
//! * **Scripting engines** (Rhai, Lua, Python) with synchronous callbacks:
//!   the callbacks `block_on` async work; run the script in a task
//!   (`examples/hosts/examples/scripting.rs`).
//! * **Sync traits and `Drop` impls** that need async work: implement them
//!   with `block_on` (`examples/sync_bridge.rs`).
//! * **tokio**: with the `tokio` feature, see the `tokio` module.
//! * **GTK and GLib hosts**: with the `glib` feature, see `Builder::glib`.
//!
//! # I/O on the loop's thread
//!
//! With feature `async-io`, a `block_on` loop that has to wait does so
//! inside `async_io::block_on`, on async-io's reactor, so the loop's thread
//! processes the events of async-net, async-process, async-fs and
//! `async_io::Timer` itself, at every depth, instead of async-io's helper
//! thread. With feature `tokio`, an executor built with
//! `Builder::tokio_current_thread` owns a tokio current_thread runtime
//! that its thread's loops drive while they wait, so `tokio::net`,
//! `tokio::time` and `tokio::spawn` work on one thread with no tokio
//! threads. A loop busy with ready tasks gives the reactor a turn every 256
//! polls. async-io has one reactor per process: threads that each run loops
//! with I/O share it (as smol threads do), and async-io's helper thread takes
//! it over while no loop waits on it. `docs/HOSTS.md`'s "I/O on the loop's
//! thread" has the table of setups.
//!
//! # Threads
//!
//! An [`Executor`] and its tasks live on one thread; tasks need not be
//! `Send`. Wakers are `Send + Sync`: a wake from another thread unparks the
//! loop at any depth. A [`Spawner`] spawns `Send` futures from any thread.
//! When the only work a `block_on` loop has was made ready from another
//! thread less than 2 µs after the loop went idle (a stream of
//! items: a channel, a queue), the loop yields its thread for 3 µs before
//! polling, so the items are taken in batches and the other thread rarely
//! pays for a wake. A later wake, such as a reply from a thread that had to
//! wake up itself, is polled at once, and so is any wake from the loop's
//! own thread.
//!
//! The free functions [`block_on`] and [`spawn`] use [`Executor::current`],
//! or outside any loop a per-thread default executor that every loop on the
//! thread drives.
//!
//! # Several copies in one process
//!
//! A process can hold several copies of nestloop: each cell of an evcxr
//! (Rust Jupyter) notebook is a shared object that links its own copies of
//! its dependencies, and so is each plugin built as a `cdylib`. Copies of
//! the same build (same version, features, compiler and dependencies, as
//! cargo hashes them) share one state per thread: a task that one copy
//! spawns runs under another copy's loop, its timers fire there, and its
//! handle can be awaited there, so a background task spawned in one
//! notebook cell keeps running while a later cell blocks, and a later cell
//! can await it (asyncio users get the same from `create_task` in one cell
//! and `await` in the next). The copies find each other through an
//! environment variable of the process (`NESTLOOP_HUB_<hash of the
//! build>`, set once, at the first nestloop call; its value names the
//! process, so child processes ignore an inherited one).
//!
//! Copies of different builds never share state: each runs only its own
//! tasks and timers. A loop of one that is about to wait while the other
//! has ready tasks or pending timers on the thread panics with a
//! `nestloop:` message that says so, instead of leaving that work
//! stranded: depend on one nestloop build across the process.
//!
//! Limits: a copy must stay loaded while the process runs (evcxr never
//! unloads a cell; a plugin host should not `dlclose` one), the copies must
//! use the default global allocator, and two copies making their very first
//! nestloop call at the same instant on two threads may each keep a state
//! of their own (plugins and cells load one after another).
//!
//! # Shutdown and thread exit
//!
//! [`Executor::shutdown`], and dropping the last handle of an executor,
//! drop its tasks one at a time, newest first (the task spawned last goes
//! first). The executor stays whole meanwhile: a destructor that runs then
//! may `block_on` (or spawn and await) tasks not dropped yet, of this
//! executor or any other of the thread, and they run, under any loop or
//! with none running. A `Drop` that hands its buffer to an older writer
//! task and waits for the acknowledgement works; one whose writer was
//! spawned after it finds the writer gone (its channel closed, its handle
//! cancelled), and does not hang.
//!
//! When a thread exits, nestloop shuts down every executor of the thread
//! still alive (its default executor, and any executor kept alive by its
//! own tasks), the newest first, each as `shutdown` does, so no future
//! outlives its thread; tasks spawned meanwhile are shut down too. (An
//! executor held in a local variable of the thread's main function is
//! dropped, and shut down, when that function returns, before this: a
//! destructor that runs at exit finds its tasks gone.) The loops keep
//! running the tasks not dropped yet, so destructors may wait
//! for them, for timers and for other threads. A wait that can provably
//! never finish (the deadlock check, which always runs at thread exit)
//! panics with a `nestloop: this thread is exiting` message instead of
//! hanging the thread and whoever joins it: nestloop contains the panic
//! where it drops the future, so its message reaches stderr through the
//! panic hook and the thread ends (its `join` returns `Ok`: a destructor
//! at exit cannot make the thread's result an error). A destructor that
//! runs after nestloop's own per-thread state is gone (one of a
//! thread-local of yours that the thread destroys later) gets a
//! `nestloop: this thread is exiting and its nestloop state is gone` panic
//! from `block_on` and `spawn`. Work that must finish belongs before the
//! thread's main function returns (tokio issue 3043 is the same situation
//! in tokio).
#![cfg_attr(docsrs, feature(doc_cfg))]
#![deny(unsafe_code)]
#![warn(
    missing_docs,
    missing_debug_implementations,
    rust_2018_idioms,
    clippy::undocumented_unsafe_blocks
)]

mod context;
mod executor;
mod fiber;
mod join_set;
mod park;
#[cfg(any(feature = "async-io", feature = "tokio", feature = "glib"))]
mod reactor;
mod run_loop;
mod sched;
mod sync;
mod task;
pub mod task_local;
mod thread_context;
pub mod time;
#[cfg(feature = "tokio")]
#[cfg_attr(docsrs, doc(cfg(feature = "tokio")))]
pub mod tokio;
mod yield_now;

use std::future::Future;

pub use context::{Frames, LoopFrame, LoopKind, Polling, depth, frames};
pub use executor::{Builder, Spawner, TaskBuilder};
pub use join_set::JoinSet;
pub use sched::{Executor, InterruptHandle, Interrupted};
pub use task::{AbortHandle, JoinError, JoinHandle, TaskId};
pub use yield_now::{YieldNow, yield_now};

/// Runs an `async fn main` on nestloop: the function becomes a plain `fn`
/// whose body is [`block_on`] of the original body, on this thread's
/// default executor. The counterpart of `#[tokio::main]` (with no runtime to
/// configure: nestloop's loop is the thread itself).
///
/// The function may return any type, `Result` included (`?` works as in any
/// `async fn`); it cannot take arguments or be generic. The attribute takes
/// no arguments: for an executor built with [`Builder`], write the `main`
/// by hand (`fn main() { executor.block_on(async { ... }) }`).
///
/// # Examples
///
/// ```
/// #[nestloop::main]
/// async fn main() -> Result<(), std::num::ParseIntError> {
///     let n: u32 = "42".parse()?;
///     // Sync code below can nest: block_on is reentrant.
///     assert_eq!(nestloop::block_on(async { n + 1 }), 43);
///     Ok(())
/// }
/// ```
///
/// # Errors
///
/// Compile errors starting with `nestloop:` when it is put on a function
/// that is not `async`, takes arguments or is generic, or when given
/// arguments:
///
/// ```compile_fail
/// #[nestloop::main] // nestloop: #[nestloop::main] goes on an `async fn`: add `async` before `fn`
/// fn main() {}
/// ```
///
/// ```compile_fail
/// #[nestloop::main(flavor = "current_thread")] // nestloop: #[nestloop::main] takes no arguments; remove them
/// async fn main() {}
/// ```
#[cfg(feature = "macros")]
#[cfg_attr(docsrs, doc(cfg(feature = "macros")))]
pub use nestloop_macros::main;

/// Runs an `async fn` test on nestloop: a `#[test]` whose body is
/// [`block_on`] of the function's body. The counterpart of
/// `#[tokio::test]`. Each test runs on its own thread (the test harness's),
/// so it gets a fresh default executor.
///
/// As for [`main`]: any return type a `#[test]` accepts, no arguments, not
/// generic, no attribute arguments.
///
/// # Examples
///
/// ```
/// #[nestloop::test]
/// async fn sleeps_in_order() {
///     let slow = nestloop::spawn(async {
///         nestloop::time::sleep(std::time::Duration::from_millis(20)).await;
///         2
///     });
///     assert_eq!(slow.await.unwrap(), 2);
/// }
/// ```
#[cfg(feature = "macros")]
#[cfg_attr(docsrs, doc(cfg(feature = "macros")))]
pub use nestloop_macros::test;

/// Runs `future` to completion on the current executor: the one that owns
/// the task or `block_on` future being polled, else the innermost loop's,
/// else this thread's default executor. Reentrant: see
/// [`Executor::block_on`].
///
/// # Examples
///
/// ```
/// let n = nestloop::block_on(async {
///     let inner = nestloop::block_on(async { 20 }); // nested: fine
///     inner + 1
/// });
/// assert_eq!(n, 21);
/// ```
#[doc(alias = "run_until_complete")]
#[track_caller]
pub fn block_on<F: Future>(future: F) -> F::Output {
    executor::current_or_default().block_on(future)
}

/// Spawns a task on the current executor (see [`block_on`] for which one).
///
/// # Examples
///
/// ```
/// let handle = nestloop::spawn(async { 2 + 2 });
/// assert_eq!(nestloop::block_on(handle).unwrap(), 4);
/// ```
#[track_caller]
pub fn spawn<F>(future: F) -> JoinHandle<F::Output>
where
    F: Future + 'static,
    F::Output: 'static,
{
    executor::spawn_current(future, std::panic::Location::caller(), None)
}

/// The README's examples, run as doctests.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;
