//! The public face of an executor: [`Executor`]'s methods, [`Builder`],
//! [`Spawner`] and [`TaskBuilder`]. Thin handles: the executor itself (its queues, its tasks,
//! where a wake goes) is `crate::sched`, and the loop that runs it is
//! `crate::run_loop`.

use std::fmt;
use std::future::Future;
use std::panic::Location;
use std::rc::Rc;

use crate::context;
use crate::run_loop;
use crate::sched::{Executor, InterruptHandle, Interrupted};
use crate::task::JoinHandle;

mod builder;
mod handles;
mod task_builder;

pub use builder::Builder;
pub use handles::Spawner;
pub use task_builder::TaskBuilder;
pub(crate) use task_builder::{current_or_default, spawn_current};

impl fmt::Debug for Executor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Executor")
            .field("id", &self.id())
            .field("task_count", &self.task_count())
            .field("max_depth", &self.inner.max_depth)
            .field("detect_deadlock", &self.inner.detect_deadlock)
            .finish()
    }
}

// A panic anywhere leaves the executor consistent (rule R4), so observing it
// after a caught panic is fine.
impl std::panic::UnwindSafe for Executor {}
impl std::panic::RefUnwindSafe for Executor {}

impl Default for Executor {
    fn default() -> Self {
        Executor::new()
    }
}

impl Executor {
    /// Creates an executor with the default settings (see [`Builder`]).
    ///
    /// # Examples
    ///
    /// ```
    /// let ex = nestloop::Executor::new();
    /// assert_eq!(ex.block_on(async { 7 }), 7);
    /// ```
    pub fn new() -> Executor {
        Builder::new().build()
    }

    /// Returns a [`Builder`] to configure an executor.
    ///
    /// # Examples
    ///
    /// ```
    /// let ex = nestloop::Executor::builder().max_depth(16).build();
    /// assert_eq!(ex.block_on(async { "ok" }), "ok");
    /// ```
    pub fn builder() -> Builder {
        Builder::new()
    }

    /// Runs `future` to completion on this thread and returns its output.
    ///
    /// Reentrant: called while any nestloop loop is running on this thread
    /// (from a task, from another `block_on`'s future, at any depth, on this
    /// executor or another), it runs a nested loop that keeps polling the
    /// ready tasks of every executor of this thread, and the woken futures
    /// of outer `block_on` calls, until `future` completes. Outermost or
    /// nested, it runs the tasks of every executor created on this thread,
    /// not only this one's: one loop per thread, as in asyncio.
    ///
    /// Tasks run in the order they were woken; `future`, when woken on this
    /// thread, goes before the tasks woken after it, and a nested call's
    /// future goes before every task (even after a yield in its first
    /// poll), so the call unwinds as soon as it can. A `future` that wakes itself lets up to 64 tasks run
    /// before its next poll, so neither starves the other (see the crate
    /// docs' Scheduling section). With nothing to do, the thread sleeps
    /// until a wake (from any thread) or the next timer deadline.
    ///
    /// # Panics
    ///
    /// * A panic of `future` comes out of this call, even when a deeper loop
    ///   polled it.
    /// * When nesting deeper than [`Builder::max_depth`], or when the stack
    ///   left would not hold another level.
    /// * When deadlock detection is on (the default) and `future` is pending
    ///   while nothing can ever wake it (see [`Builder::detect_deadlock`]).
    /// * At thread exit (called by a destructor of a task that nestloop shuts
    ///   down then), when `future` can provably never finish (the deadlock
    ///   check runs there whatever [`Builder::detect_deadlock`] says), and
    ///   once nestloop's state for the thread is gone.
    /// * Feature `tokio`: inside a tokio current_thread runtime (see the
    ///   `nestloop::tokio` module), and when `future` calls tokio I/O or
    ///   timers and this executor has no tokio runtime.
    ///
    /// # Hazard
    ///
    /// Other tasks and outer futures run during the call: state the caller
    /// holds borrowed across it (a `RefCell` borrow, a lock) can be touched
    /// by them meanwhile.
    ///
    /// # Cancel safety
    ///
    /// `block_on` is not a future and cannot be cancelled: it returns when
    /// `future` is done (or panicked). Only an interrupt of an enclosing
    /// [`try_block_on`](Executor::try_block_on) unwinds it, dropping `future`
    /// where it stands.
    ///
    /// # Examples
    ///
    /// ```
    /// use nestloop::Executor;
    ///
    /// let ex = Executor::new();
    /// let (tx, rx) = futures::channel::oneshot::channel();
    /// let _detached = ex.spawn(async move { tx.send(5).unwrap() });
    /// // A synchronous helper that waits for async work.
    /// fn wait_for(ex: &Executor, rx: futures::channel::oneshot::Receiver<i32>) -> i32 {
    ///     ex.block_on(rx).unwrap()
    /// }
    /// let ex2 = ex.clone();
    /// assert_eq!(ex.block_on(async move { wait_for(&ex2, rx) * 2 }), 10);
    /// ```
    #[doc(alias = "run_until_complete")]
    #[inline]
    #[track_caller]
    pub fn block_on<F: Future>(&self, future: F) -> F::Output {
        match run_loop::block_on(self, future, false, Location::caller()) {
            Ok(output) => output,
            Err(Interrupted { .. }) => {
                unreachable!("nestloop: internal error: plain block_on interrupted")
            }
        }
    }

    /// Like [`block_on`](Executor::block_on), but interruptible: after an
    /// [`InterruptHandle::interrupt`] of this executor, the innermost running
    /// `try_block_on` returns `Err(Interrupted)` promptly, having dropped its
    /// future. Python's `KeyboardInterrupt`, for Rust hosts: a REPL wires
    /// Ctrl-C to the handle and runs each line in `try_block_on`.
    ///
    /// Plain `block_on` calls (of any executor) nested inside it unwind up to
    /// it (with an [`Interrupted`] payload, through `resume_unwind`, so no
    /// panic message is printed), dropping their futures, and so do the
    /// `try_block_on` calls of other executors nested inside it (the
    /// interrupt is this executor's, not theirs: they do not return); a task whose poll
    /// is unwound this way is cancelled. The interrupt takes effect at the
    /// next step of the innermost loop, so code that never returns to a loop
    /// (a busy computation) is not interrupted until it does. An interrupt
    /// while no `try_block_on` of this executor runs does nothing. A future of
    /// an outer `block_on` that happens to be being polled inside the
    /// interrupted call (rule R3) is cut short too: its own `block_on`
    /// unwinds with the [`Interrupted`] payload once control is back there.
    ///
    /// With fibers (the default, see [`Builder::fibers`]) a task's
    /// `block_on` suspends the task's own stack instead of nesting inside
    /// this call, so such a task is not unwound: it goes on in the
    /// background, as asyncio's tasks do when a notebook cell is
    /// interrupted; [`JoinHandle::abort`](crate::JoinHandle::abort) ends
    /// it.
    ///
    /// # Cancel safety
    ///
    /// An interrupt drops `future` where it stands, like cancelling it at its
    /// current `.await`: what its awaits promise when dropped (see the "Cancel
    /// safety" sections of nestloop's futures and of other crates') is what
    /// survives. A `block_on` itself is not a future and is never cancelled; it
    /// returns when its future is done.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    ///
    /// let ex = nestloop::Executor::new();
    /// let interrupt = ex.interrupt_handle();
    /// std::thread::spawn(move || {
    ///     std::thread::sleep(Duration::from_millis(20));
    ///     interrupt.interrupt(); // e.g. from a Ctrl-C handler
    /// });
    /// let result = ex.try_block_on(async {
    ///     // Sync code deep inside waits on a long sleep...
    ///     nestloop::block_on(nestloop::time::sleep(Duration::from_secs(3600)))
    /// });
    /// assert!(result.is_err()); // ...and is interrupted instead.
    /// ```
    #[track_caller]
    pub fn try_block_on<F: Future>(&self, future: F) -> Result<F::Output, Interrupted> {
        run_loop::block_on(self, future, true, Location::caller())
    }

    /// Runs the loop forever: the main of a server or a host whose work is
    /// all in tasks (`block_on(std::future::pending())`, as in tokio and
    /// async-executor). It serves the tasks of every executor of this
    /// thread, their timers and wakes from other threads, and sleeps while
    /// nothing is ready.
    ///
    /// It never returns normally. Inside a
    /// [`try_block_on`](Executor::try_block_on) an interrupt unwinds it like
    /// any nested `block_on`.
    ///
    /// # Panics
    ///
    /// With deadlock detection on (the default), when nothing on the thread
    /// can ever run again: no task is ready, none can be woken (no waker of
    /// any task is held anywhere: by a socket, a channel, another thread),
    /// and no timer is pending. A server whose listener task is alive never
    /// trips it.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    ///
    /// let ex = nestloop::Executor::new();
    /// let interrupt = ex.interrupt_handle();
    /// // A task that serves requests fed by another thread...
    /// let (tx, rx) = futures::channel::mpsc::unbounded::<u32>();
    /// std::thread::spawn(move || {
    ///     for n in 0..3 {
    ///         std::thread::sleep(Duration::from_millis(5));
    ///         tx.unbounded_send(n).unwrap();
    ///     }
    /// });
    /// ex.spawn(async move {
    ///     use futures::StreamExt;
    ///     let served: Vec<u32> = rx.take(3).collect().await;
    ///     assert_eq!(served, [0, 1, 2]);
    ///     interrupt.interrupt(); // e.g. a shutdown request or Ctrl-C
    /// });
    /// // ...and a main that runs until interrupted.
    /// let ex2 = ex.clone();
    /// assert!(ex.try_block_on(async move { ex2.run_forever() }).is_err());
    /// ```
    #[track_caller]
    pub fn run_forever(&self) -> ! {
        // `block_on` of a future that never completes only ever unwinds.
        loop {
            self.block_on(std::future::pending::<()>());
        }
    }

    /// Returns an [`InterruptHandle`] for this executor's
    /// [`try_block_on`](Executor::try_block_on) calls.
    ///
    /// # Examples
    ///
    /// ```
    /// let ex = nestloop::Executor::new();
    /// let handle = ex.interrupt_handle();
    /// handle.interrupt(); // no try_block_on running: nothing happens
    /// assert_eq!(ex.try_block_on(async { 1 }), Ok(1));
    /// ```
    pub fn interrupt_handle(&self) -> InterruptHandle {
        InterruptHandle::new(self.inner.shared.clone())
    }

    /// Spawns a task onto this executor and returns its [`JoinHandle`].
    ///
    /// The future need not be `Send`. It runs when any loop runs on this
    /// thread ([`block_on`](Executor::block_on) or
    /// [`run_until_stalled`](Executor::run_until_stalled) of any executor,
    /// the free [`block_on`](crate::block_on), at any depth).
    ///
    /// # Examples
    ///
    /// ```
    /// use std::rc::Rc;
    ///
    /// let ex = nestloop::Executor::new();
    /// let shared = Rc::new(41); // not Send: fine on this executor
    /// let handle = ex.spawn(async move { *shared + 1 });
    /// assert_eq!(ex.block_on(handle).unwrap(), 42);
    /// ```
    #[track_caller]
    pub fn spawn<F>(&self, future: F) -> JoinHandle<F::Output>
    where
        F: Future + 'static,
        F::Output: 'static,
    {
        self.inner.spawn(future, Location::caller(), None)
    }

    /// Returns a [`Spawner`]: a `Send + Sync + Clone` handle that other
    /// threads use to spawn `Send` futures onto this executor.
    ///
    /// # Examples
    ///
    /// ```
    /// let ex = nestloop::Executor::new();
    /// let spawner = ex.spawner();
    /// let handle = std::thread::spawn(move || spawner.spawn(async { 6 * 7 }))
    ///     .join()
    ///     .unwrap();
    /// assert_eq!(ex.block_on(handle).unwrap(), 42);
    /// ```
    pub fn spawner(&self) -> Spawner {
        Spawner::new(self.inner.shared.clone())
    }

    /// Polls ready tasks until none is ready, then returns the number of
    /// polls it ran (of tasks, and of woken outer `block_on` futures).
    ///
    /// It is a loop like `block_on`: reentrant, counted by [`depth`](crate::depth),
    /// and it runs the ready tasks of every executor of this thread.
    /// Timers that are due fire; it never waits for one. Tasks that wake
    /// themselves every poll keep it running.
    ///
    /// # Examples
    ///
    /// ```
    /// let ex = nestloop::Executor::new();
    /// let handle = ex.spawn(async { nestloop::yield_now().await });
    /// assert_eq!(ex.run_until_stalled(), 2); // the first poll yields
    /// assert!(handle.is_finished());
    /// assert_eq!(ex.run_until_stalled(), 0);
    /// ```
    #[track_caller]
    pub fn run_until_stalled(&self) -> usize {
        run_loop::run_until_stalled(self, Location::caller())
    }

    /// The number of live tasks: spawned (also through a [`Spawner`]) and
    /// not yet finished, aborted or shut down.
    ///
    /// # Examples
    ///
    /// ```
    /// let ex = nestloop::Executor::new();
    /// let handle = ex.spawn(async {});
    /// assert_eq!(ex.task_count(), 1);
    /// ex.block_on(handle).unwrap();
    /// assert_eq!(ex.task_count(), 0);
    /// ```
    pub fn task_count(&self) -> usize {
        self.inner.task_count()
    }

    /// The handle of the tokio runtime the executor's polls run in: the
    /// one it owns ([`Builder::tokio_current_thread`](crate::Builder::tokio_current_thread))
    /// or the one it was given ([`Builder::tokio_handle`](crate::Builder::tokio_handle));
    /// `None` for neither (feature `tokio`).
    ///
    /// # Examples
    ///
    /// ```
    /// let ex = nestloop::Executor::builder().tokio_current_thread().build();
    /// let handle = ex.tokio_handle().unwrap();
    /// assert_eq!(handle.runtime_flavor(), tokio::runtime::RuntimeFlavor::CurrentThread);
    /// assert!(nestloop::Executor::new().tokio_handle().is_none());
    /// ```
    #[cfg(feature = "tokio")]
    #[cfg_attr(docsrs, doc(cfg(feature = "tokio")))]
    pub fn tokio_handle(&self) -> Option<::tokio::runtime::Handle> {
        self.inner.tokio.clone()
    }

    /// Aborts every task and drops its future now; each [`JoinHandle`]
    /// resolves to a cancelled [`JoinError`](crate::JoinError).
    ///
    /// Tasks are dropped one at a time, newest first (the task spawned last
    /// goes first). Until its turn a task is whole and runs as usual, so a
    /// destructor that runs during the shutdown may `block_on` (or await)
    /// tasks not dropped yet, of this executor or another, under any loop or
    /// with none running (see the crate docs' "Shutdown and thread exit").
    /// A task being polled further down the stack is dropped as soon as its
    /// poll returns. Tasks spawned by destructors during the shutdown are
    /// shut down too. A panic in a destructor is contained. The executor
    /// stays usable: new tasks can be spawned afterwards. Dropping the last
    /// handle of an executor shuts it down the same way.
    ///
    /// # Examples
    ///
    /// ```
    /// let ex = nestloop::Executor::new();
    /// let handle = ex.spawn(std::future::pending::<()>());
    /// ex.shutdown();
    /// assert_eq!(ex.task_count(), 0);
    /// assert!(ex.block_on(handle).unwrap_err().is_cancelled());
    /// ```
    pub fn shutdown(&self) {
        self.inner.shutdown();
    }

    /// The executor that owns the task or `block_on` future being polled on
    /// this thread; else the executor of the innermost loop; else `None`.
    ///
    /// # Examples
    ///
    /// ```
    /// use nestloop::Executor;
    ///
    /// assert!(Executor::current().is_none());
    /// let ex = Executor::new();
    /// let same = ex.block_on(async { Executor::current().unwrap() });
    /// assert!(same.ptr_eq(&ex));
    /// ```
    pub fn current() -> Option<Executor> {
        context::try_with(|s| s.current()).flatten()
    }

    /// The executor's id: unique in the process, never 0. Diagnostics name
    /// executors by it ([`nestloop::frames`](crate::frames),
    /// [`LoopFrame::executor_id`](crate::LoopFrame::executor_id)).
    ///
    /// # Examples
    ///
    /// ```
    /// let a = nestloop::Executor::new();
    /// let b = nestloop::Executor::new();
    /// assert_ne!(a.id(), b.id());
    /// assert_eq!(a.id(), a.clone().id());
    /// ```
    pub fn id(&self) -> u64 {
        self.inner.id
    }

    /// Whether two handles refer to the same executor.
    ///
    /// # Examples
    ///
    /// ```
    /// let a = nestloop::Executor::new();
    /// assert!(a.ptr_eq(&a.clone()));
    /// assert!(!a.ptr_eq(&nestloop::Executor::new()));
    /// ```
    pub fn ptr_eq(&self, other: &Executor) -> bool {
        Rc::ptr_eq(&self.inner, &other.inner)
    }
}
