//! The executor, its run queues and its task storage.
//!
//! An executor has a thread-local side ([`Inner`], behind the `Rc` of
//! [`Executor`]) and a thread-safe side ([`Shared`], behind an `Arc` that
//! [`Spawner`]s and handles hold, and that tasks reach through counted holds,
//! see `raw::SharedHold`):
//!
//! * wakes made on the executor's own thread go to `Inner::queue`, a queue
//!   linked through the tasks (no atomics, no buffer; see `raw::RunQueue`);
//! * wakes and spawns from other threads go to `Shared::inject`, a lock-free
//!   queue, and unpark the thread; loops move them to the local queue.
//!
//! Every live task is in `Inner::tasks` (a list linked through the tasks,
//! see `raw::TaskList`), so `shutdown` and drop can find and drop every
//! future.

use std::fmt;
use std::future::Future;
use std::rc::Rc;
use std::sync::Arc;
use std::task::Waker;

use crate::frames;
use crate::join::JoinHandle;
use crate::park::ThreadSignal;
use crate::raw::{HoldReserve, RunQueue, SharedHold, TaskList, TaskRef};
use crate::run_loop;
use crate::sync::{AtomicBool, AtomicUsize, InjectQueue, Ordering, fence};
use crate::task;

/// A handle to a single-threaded executor whose [`block_on`](Executor::block_on)
/// is reentrant.
///
/// Cheap to clone (an `Rc` inside); `!Send` and `!Sync`: an executor and its
/// tasks live on the thread that created it. Use [`Executor::spawner`] to
/// spawn onto it from other threads.
///
/// Dropping the last handle drops every task's future. Tasks often hold a
/// clone of their executor, which keeps it alive: call
/// [`shutdown`](Executor::shutdown) to drop them all regardless. Executors
/// still alive when their thread exits are shut down then.
///
/// # Examples
///
/// ```
/// use nestloop::Executor;
///
/// let ex = Executor::new();
/// let task = ex.spawn(async { 1 + 2 });
/// let inner = ex.clone();
/// let result = ex.block_on(async move {
///     // Synchronous code inside an async block may call block_on again:
///     // the nested loop keeps running this executor's tasks.
///     inner.block_on(task).unwrap()
/// });
/// assert_eq!(result, 3);
/// ```
///
/// An executor stays on its thread:
///
/// ```compile_fail
/// fn assert_send<T: Send>(_: T) {}
/// assert_send(nestloop::Executor::new());
/// ```
#[derive(Clone)]
pub struct Executor {
    /// The thread-local side.
    pub(crate) inner: Rc<Inner>,
}

/// The thread-local side of an executor.
pub(crate) struct Inner {
    /// The thread-safe side.
    pub(crate) shared: Arc<Shared>,
    /// Tasks woken or spawned on this thread, in wake order.
    queue: RunQueue,
    /// Every live task, so shutdown can reach them all.
    tasks: TaskList,
    /// Nesting depth at which `block_on` refuses to nest further
    /// (`usize::MAX`: no count, the stack is the bound).
    pub(crate) max_depth: usize,
    /// Whether a `block_on` that can never finish panics (R9).
    pub(crate) detect_deadlock: bool,
    /// How many loop frames of this executor are on its thread's stack.
    pub(crate) loops: std::cell::Cell<usize>,
    /// The tokio runtime whose context polls enter.
    #[cfg(feature = "tokio")]
    tokio: Option<::tokio::runtime::Handle>,
}

/// The part of an executor that other threads reach.
pub(crate) struct Shared {
    /// Wakes and spawns from other threads.
    inject: InjectQueue<TaskRef>,
    /// False once the executor is dropped: pushes then cancel the task.
    alive: AtomicBool,
    /// Unparks the executor's thread.
    pub(crate) signal: Arc<ThreadSignal>,
    /// Tasks spawned through a `Spawner` and not yet moved into `tasks`.
    unadopted: AtomicUsize,
    /// Bumped by each `InterruptHandle::interrupt`.
    interrupt_epoch: AtomicUsize,
    /// The executor, its reserve and its tasks' holds (see
    /// `raw::SharedHold`).
    pub(crate) holders: AtomicUsize,
    /// Holds taken for tasks and not yet given to one.
    pub(crate) reserve: HoldReserve,
}

impl fmt::Debug for Executor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Executor")
            .field("task_count", &self.task_count())
            .field("max_depth", &self.inner.max_depth)
            .field("detect_deadlock", &self.inner.detect_deadlock)
            .finish()
    }
}

impl fmt::Debug for Inner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Inner").finish_non_exhaustive()
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
    /// ready tasks of every executor with a loop on this thread, and the
    /// woken futures of outer `block_on` calls, until `future` completes.
    ///
    /// Tasks run in the order they were woken; `future`, when woken on this
    /// thread, goes before the tasks woken after it, and a nested call's
    /// future goes on right after its first poll, so the call unwinds as
    /// soon as it can. A `future` that wakes itself lets up to 64 tasks run
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
    ///   down then), when `future` waits for a task: no task runs any more.
    /// * Feature `tokio`: inside a tokio current_thread runtime (see
    ///   [`crate::tokio`]).
    ///
    /// # Hazard
    ///
    /// Other tasks and outer futures run during the call: state the caller
    /// holds borrowed across it (a `RefCell` borrow, a lock) can be touched
    /// by them meanwhile.
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
    pub fn block_on<F: Future>(&self, future: F) -> F::Output {
        match run_loop::block_on(self, future, false) {
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
    /// panic message is printed), dropping their futures; a task whose poll
    /// is unwound this way is cancelled. The interrupt takes effect at the
    /// next step of the innermost loop, so code that never returns to a loop
    /// (a busy computation) is not interrupted until it does. An interrupt
    /// while no `try_block_on` of this executor runs does nothing. A future of
    /// an outer `block_on` that happens to be being polled inside the
    /// interrupted call (rule R3) is cut short too: its own `block_on`
    /// unwinds with the [`Interrupted`] payload once control is back there.
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
    pub fn try_block_on<F: Future>(&self, future: F) -> Result<F::Output, Interrupted> {
        run_loop::block_on(self, future, true)
    }

    /// Runs the loop forever: the main of a server or a host whose work is
    /// all in tasks (`block_on(std::future::pending())`, as in tokio and
    /// async-executor). It serves the tasks of this executor, of every
    /// executor with a loop on this thread and of the thread's default
    /// executor, their timers and wakes from other threads, and sleeps while
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
    pub fn run_forever(&self) -> ! {
        match self.block_on(std::future::pending::<std::convert::Infallible>()) {}
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
        InterruptHandle {
            shared: self.inner.shared.clone(),
        }
    }

    /// Spawns a task onto this executor and returns its [`JoinHandle`].
    ///
    /// The future need not be `Send`. It runs when a loop drives this
    /// executor ([`block_on`](Executor::block_on) or
    /// [`run_until_stalled`](Executor::run_until_stalled), at any depth).
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
    pub fn spawn<F>(&self, future: F) -> JoinHandle<F::Output>
    where
        F: Future + 'static,
        F::Output: 'static,
    {
        let (task, listed, handle) = task::new_local(future, SharedHold::local(&self.inner));
        self.inner.tasks.push(listed);
        self.inner.queue.push(task);
        JoinHandle::new(handle)
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
        Spawner {
            shared: self.inner.shared.clone(),
        }
    }

    /// Polls ready tasks until none is ready, then returns the number of
    /// polls it ran (of tasks, and of woken outer `block_on` futures).
    ///
    /// It is a loop like `block_on`: reentrant, counted by [`depth`](crate::depth),
    /// and it drives the queues of every executor with a loop on this thread.
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
    pub fn run_until_stalled(&self) -> usize {
        run_loop::run_until_stalled(self)
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
        self.inner.tasks.len() + self.inner.shared.unadopted.load(Ordering::Acquire)
    }

    /// Aborts every task and drops its future now; each [`JoinHandle`]
    /// resolves to a cancelled [`JoinError`](crate::JoinError).
    ///
    /// A task being polled further down the stack is dropped as soon as its
    /// poll returns. Tasks spawned by destructors during the shutdown are shut
    /// down too. A panic in a destructor is contained. The executor stays
    /// usable: new tasks can be spawned afterwards.
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
        frames::try_with(|s| s.current()).flatten()
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

/// Keeps a runtime context entered while an executor's task or future is
/// polled (feature `tokio`); nothing otherwise.
#[cfg(feature = "tokio")]
pub(crate) type PollContext<'a> = Option<::tokio::runtime::EnterGuard<'a>>;
#[cfg(not(feature = "tokio"))]
pub(crate) type PollContext<'a> = std::marker::PhantomData<&'a ()>;

impl Inner {
    /// Enters what a poll of this executor's tasks and futures needs.
    #[inline]
    pub(crate) fn poll_context(&self) -> PollContext<'_> {
        #[cfg(feature = "tokio")]
        return self.tokio.as_ref().map(|h| h.enter());
        #[cfg(not(feature = "tokio"))]
        std::marker::PhantomData
    }

    /// Pushes a task woken on this thread.
    #[inline]
    pub(crate) fn push_local(&self, task: TaskRef) {
        self.queue.push(task);
    }

    /// The next task to run, if any.
    #[inline]
    pub(crate) fn pop(&self) -> Option<TaskRef> {
        self.queue.pop()
    }

    /// Whether a task is waiting to run (locally or from another thread).
    pub(crate) fn has_ready(&self) -> bool {
        self.has_local_ready() || self.has_remote_ready()
    }

    /// How many tasks woken or spawned on this thread wait to run, counted
    /// up to `limit`.
    pub(crate) fn local_ready_up_to(&self, limit: usize) -> usize {
        self.queue.len_up_to(limit)
    }

    /// Whether a task woken or spawned on this thread waits to run.
    pub(crate) fn has_local_ready(&self) -> bool {
        !self.queue.is_empty()
    }

    /// Whether a task woken or spawned from another thread waits to be moved
    /// to the local queue.
    pub(crate) fn has_remote_ready(&self) -> bool {
        !self.shared.inject.is_empty()
    }

    /// Moves tasks pushed by other threads to the local queue, adopting new
    /// ones into the task list. Bounded, so a thread that keeps pushing cannot
    /// keep a loop here.
    pub(crate) fn drain_inject(&self) {
        if self.shared.inject.is_empty() {
            return; // every loop step asks: keep the common case cheap
        }
        let mut budget = self.shared.inject.len();
        while budget > 0 {
            let Some(task) = self.shared.inject.pop() else {
                break;
            };
            budget -= 1;
            if !task.header().is_adopted() {
                if task.is_finished() {
                    self.shared.unadopted.fetch_sub(1, Ordering::AcqRel);
                    continue;
                }
                self.tasks.push(task.clone());
                self.shared.unadopted.fetch_sub(1, Ordering::AcqRel);
            }
            self.queue.push(task);
        }
    }

    /// How many tasks on the stack hold `waker` as their awaiter's waker.
    pub(crate) fn stuck_awaiters(&self, waker: &Waker) -> usize {
        let mut stuck = 0;
        self.tasks
            .for_each(|t| stuck += usize::from(task::stuck_awaiter_is(t, waker)));
        stuck
    }

    /// How many tasks, running or not, hold `waker` as their awaiter's
    /// waker.
    pub(crate) fn awaiters_with(&self, waker: &Waker) -> usize {
        let mut found = 0;
        self.tasks
            .for_each(|t| found += usize::from(task::awaiter_is(t, waker)));
        found
    }

    /// Whether a task of this executor may still be woken from outside it
    /// (see `Header::may_be_woken`): then a loop waiting for it serves
    /// tasks that are alive, not a deadlock (R9).
    pub(crate) fn has_wakeable_task(&self) -> bool {
        self.tasks.any(|t| t.header().may_be_woken())
    }

    /// Forgets a finished task; the reference is dropped by the caller after
    /// every borrow is released.
    pub(crate) fn remove(&self, task: &TaskRef) -> Option<TaskRef> {
        self.tasks.remove(task)
    }

    /// See [`Executor::shutdown`].
    pub(crate) fn shutdown(&self) {
        loop {
            self.drain_inject();
            let tasks = self.tasks.snapshot();
            let mut dropped_any = false;
            for task in tasks {
                dropped_any |= task.shut_down(self);
            }
            if !dropped_any && self.shared.inject.is_empty() {
                break;
            }
        }
        // What is still queued is finished (shut down above), except what
        // was spawned meanwhile: only that goes back. Dropping a finished
        // entry may free its task and drop its awaiter's waker: user code,
        // whose wakes and spawns land in `self.queue` while the old entries
        // are sorted apart.
        let queued = self.queue.take();
        while let Some(task) = queued.pop() {
            if !task.is_finished() {
                self.queue.push(task);
            }
        }
    }
}

impl Drop for Inner {
    fn drop(&mut self) {
        self.shared.alive.store(false, Ordering::SeqCst);
        fence(Ordering::SeqCst);
        self.shutdown();
        self.shared.drain_dead();
        let shared = Arc::as_ptr(&self.shared);
        frames::try_with(|s| s.unregister(shared));
        SharedHold::release_executor(self);
    }
}

impl Shared {
    /// The number of interrupts so far.
    pub(crate) fn interrupt_epoch(&self) -> usize {
        self.interrupt_epoch.load(Ordering::SeqCst)
    }

    /// See [`InterruptHandle::interrupt`].
    pub(crate) fn interrupt(&self) {
        self.interrupt_epoch.fetch_add(1, Ordering::SeqCst);
        self.signal.interrupt();
    }

    /// Queues a woken task locally when this is the executor's thread (and
    /// the executor still registered there); else gives it back for
    /// `push_remote`.
    #[inline]
    pub(crate) fn push_local_here(&self, task: TaskRef) -> Result<(), TaskRef> {
        if self.signal.key() != crate::park::thread_key() {
            return Err(task);
        }
        match frames::try_with(|s| s.executor_for(self)).flatten() {
            Some(inner) => {
                inner.push_local(task);
                Ok(())
            }
            None => Err(task),
        }
    }

    /// Pushes on the injection queue and unparks the executor's thread; if
    /// the executor is gone (or goes meanwhile), cancels what is queued.
    pub(crate) fn push_remote(&self, task: TaskRef) {
        self.inject.push(task);
        // Pairs with the fence in `Inner::drop`: either it sees our task in
        // its final drain, or we see `alive == false` here.
        fence(Ordering::SeqCst);
        if self.alive.load(Ordering::SeqCst) {
            self.signal.unpark();
        } else {
            self.drain_dead();
        }
    }

    /// Cancels everything on the injection queue of a dropped executor.
    fn drain_dead(&self) {
        while let Some(task) = self.inject.pop() {
            if !task.header().is_adopted() && task.cancel_orphan() {
                self.unadopted.fetch_sub(1, Ordering::AcqRel);
            }
        }
    }
}

/// Interrupts the innermost running [`Executor::try_block_on`] of an
/// executor, from any thread (a Ctrl-C handler, a watchdog, a UI button).
/// `Send + Sync + Clone`.
///
/// # Examples
///
/// ```
/// let ex = nestloop::Executor::new();
/// let interrupt = ex.interrupt_handle();
/// let result = ex.try_block_on(async move {
///     interrupt.interrupt();
///     // The loop notices at its next step.
///     std::future::pending::<()>().await
/// });
/// assert_eq!(result, Err(nestloop::Interrupted::new()));
/// ```
#[derive(Clone)]
pub struct InterruptHandle {
    /// The executor's thread-safe side.
    shared: Arc<Shared>,
}

impl InterruptHandle {
    /// Makes the innermost running `try_block_on` of the executor return
    /// `Err(Interrupted)`; does nothing when none runs.
    ///
    /// # Examples
    ///
    /// ```
    /// let ex = nestloop::Executor::new();
    /// let interrupt = ex.interrupt_handle();
    /// let outer = ex.try_block_on(async {
    ///     let inner = ex.try_block_on(async {
    ///         interrupt.interrupt();
    ///         nestloop::yield_now().await;
    ///     });
    ///     assert!(inner.is_err()); // the innermost one is interrupted
    ///     "the outer call goes on"
    /// });
    /// assert_eq!(outer, Ok("the outer call goes on"));
    /// ```
    pub fn interrupt(&self) {
        self.shared.interrupt();
    }
}

impl fmt::Debug for InterruptHandle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("InterruptHandle").finish_non_exhaustive()
    }
}

/// The error of an interrupted [`Executor::try_block_on`], and the panic
/// payload that unwinds the plain `block_on` calls nested inside it.
///
/// # Examples
///
/// ```
/// let err = nestloop::Interrupted::new();
/// assert_eq!(err.to_string(), "interrupted");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Interrupted {
    /// Room for details later without breaking users.
    _private: (),
}

impl Interrupted {
    /// The value `try_block_on` returns when interrupted (for comparisons in
    /// tests).
    ///
    /// # Examples
    ///
    /// ```
    /// let ex = nestloop::Executor::new();
    /// let interrupt = ex.interrupt_handle();
    /// let result = ex.try_block_on(async move {
    ///     interrupt.interrupt();
    ///     nestloop::yield_now().await;
    /// });
    /// assert_eq!(result, Err(nestloop::Interrupted::new()));
    /// ```
    pub const fn new() -> Self {
        Interrupted { _private: () }
    }
}

impl Default for Interrupted {
    fn default() -> Self {
        Interrupted::new()
    }
}

impl fmt::Display for Interrupted {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("interrupted")
    }
}

impl std::error::Error for Interrupted {}

/// Configures an [`Executor`].
///
/// # Examples
///
/// ```
/// let ex = nestloop::Executor::builder()
///     .max_depth(64)
///     .detect_deadlock(true)
///     .build();
/// assert_eq!(ex.block_on(async { 1 }), 1);
/// ```
#[derive(Debug, Clone)]
pub struct Builder {
    /// See [`Builder::max_depth`].
    max_depth: usize,
    /// See [`Builder::detect_deadlock`].
    detect_deadlock: bool,
    /// See [`Builder::tokio_handle`].
    #[cfg(feature = "tokio")]
    tokio: Option<::tokio::runtime::Handle>,
}

impl Default for Builder {
    fn default() -> Self {
        Builder::new()
    }
}

impl Builder {
    /// The default settings.
    ///
    /// # Examples
    ///
    /// ```
    /// let ex = nestloop::Builder::new().build();
    /// assert_eq!(ex.block_on(async { 2 }), 2);
    /// ```
    pub fn new() -> Builder {
        Builder {
            max_depth: usize::MAX,
            detect_deadlock: true,
            #[cfg(feature = "tokio")]
            tokio: None,
        }
    }

    /// An optional count on top of the stack check: the deepest nesting
    /// `block_on` and `run_until_stalled` of this executor accept. A call
    /// that would make [`depth`](crate::depth) exceed it panics (with a
    /// `nestloop: nesting depth limit reached` message) instead of running.
    /// By default there is no count.
    ///
    /// The default bound is the stack (rule R10): a nested call panics with a
    /// `nestloop: not enough stack` message when the stack left on the
    /// thread would not hold another level plus a reserve of 128 KiB for
    /// unwinding and reporting. What one more level needs is measured from
    /// the stack the previous level used, so user code with big frames is
    /// accounted for. The check works on any thread, in debug and release
    /// builds. One level (a task calling a nested `block_on`) takes about
    /// 4.5 KiB of stack in a debug build and 0.8 KiB in release; a plain
    /// `block_on` nested in a `block_on` future about 1.9 KiB and 0.2 KiB. So
    /// a 2 MiB thread holds about 400 levels through tasks in a debug build
    /// (nest-asyncio reaches about 140 with Python's default recursion
    /// limit), and an 8 MiB main thread about 1,700. Where the stack left
    /// cannot be read (under Miri, say), a count of 128 applies instead.
    ///
    /// # Examples
    ///
    /// ```
    /// let ex = nestloop::Executor::builder().max_depth(1).build();
    /// let inner = ex.clone();
    /// let nested = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
    ///     ex.block_on(async move { inner.block_on(async {}) })
    /// }));
    /// assert!(nested.is_err()); // depth 2 > max_depth 1
    /// ```
    pub fn max_depth(mut self, max_depth: usize) -> Builder {
        self.max_depth = max_depth;
        self
    }

    /// Whether `block_on` panics, instead of hanging forever, when its future
    /// can provably never be woken: it is pending, no task is ready, no timer
    /// is pending on the thread, every clone of its waker is either gone
    /// or held by the [`JoinHandle`] of a task that is on the stack (a task
    /// that called this nested `block_on` and can only resume after it
    /// returns), and no task can be woken any more (no waker of any task
    /// is held anywhere). On by default. The panic message starts with
    /// `nestloop: deadlock` and names the nesting depth.
    ///
    /// A task that can still be woken (its waker held by a socket, a channel
    /// fed by another thread, any other thread) keeps a pending `block_on`
    /// serving: `block_on(std::future::pending())` while such a task lives is
    /// the run-forever idiom of a server's main (see
    /// [`Executor::run_forever`]), never a deadlock.
    ///
    /// It cannot see a deadlock where the waker is held by something else
    /// that will never run: inside another waker (a combinator's), in a
    /// channel whose sender nobody will use, or in a task of an executor that
    /// has no loop running. Such a call waits.
    ///
    /// # Examples
    ///
    /// ```
    /// let ex = nestloop::Executor::new();
    /// let hang = std::panic::catch_unwind(|| ex.block_on(std::future::pending::<()>()));
    /// assert!(hang.is_err()); // panics with "nestloop: deadlock ..."
    /// ```
    pub fn detect_deadlock(mut self, detect: bool) -> Builder {
        self.detect_deadlock = detect;
        self
    }

    /// Polls every task and `block_on` future of the executor inside the
    /// context of this tokio runtime, so they can use `tokio::net`,
    /// `tokio::time` and `tokio::spawn` (feature `tokio`). Use a
    /// multi-thread runtime: its worker threads drive the I/O and timers.
    ///
    /// # Examples
    ///
    /// ```
    /// let rt = tokio::runtime::Runtime::new().unwrap();
    /// let ex = nestloop::Executor::builder().tokio_handle(rt.handle().clone()).build();
    /// let task = ex.spawn(async { tokio::task::spawn(async { 6 * 7 }).await.unwrap() });
    /// assert_eq!(ex.block_on(task).unwrap(), 42);
    /// ```
    #[cfg(feature = "tokio")]
    pub fn tokio_handle(mut self, handle: ::tokio::runtime::Handle) -> Builder {
        self.tokio = Some(handle);
        self
    }

    /// Creates the executor on the current thread.
    ///
    /// # Examples
    ///
    /// ```
    /// let ex = nestloop::Builder::new().detect_deadlock(false).build();
    /// assert_eq!(ex.task_count(), 0);
    /// ```
    pub fn build(self) -> Executor {
        let signal = frames::with(|s| s.signal().clone());
        let shared = Arc::new(Shared {
            inject: InjectQueue::new(),
            alive: AtomicBool::new(true),
            signal,
            unadopted: AtomicUsize::new(0),
            interrupt_epoch: AtomicUsize::new(0),
            holders: AtomicUsize::new(1),
            reserve: HoldReserve::new(),
        });
        SharedHold::first(&shared);
        let inner = Rc::new(Inner {
            shared: shared.clone(),
            queue: RunQueue::new(),
            tasks: TaskList::new(),
            max_depth: self.max_depth,
            detect_deadlock: self.detect_deadlock,
            loops: std::cell::Cell::new(0),
            #[cfg(feature = "tokio")]
            tokio: self.tokio,
        });
        frames::with(|s| s.register(&inner));
        Executor { inner }
    }
}

/// Spawns `Send` futures onto an [`Executor`] from any thread.
///
/// `Send + Sync + Clone`. The task runs on the executor's thread. If the
/// executor is dropped before the task starts (or already was), the task's
/// future is dropped and its [`JoinHandle`] resolves to a cancelled
/// [`JoinError`](crate::JoinError): no handle ever hangs on a dead executor.
///
/// # Examples
///
/// ```
/// let ex = nestloop::Executor::new();
/// let spawner = ex.spawner();
/// let worker = std::thread::spawn(move || {
///     let handle = spawner.spawn(async { "from the executor's thread" });
///     handle
/// });
/// let handle = worker.join().unwrap();
/// assert_eq!(ex.block_on(handle).unwrap(), "from the executor's thread");
/// ```
#[derive(Clone)]
pub struct Spawner {
    /// The executor's thread-safe side.
    shared: Arc<Shared>,
}

impl fmt::Debug for Spawner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Spawner")
            .field("executor_alive", &self.shared.alive.load(Ordering::Relaxed))
            .finish()
    }
}

impl Spawner {
    /// Spawns a `Send` future onto the executor; callable from any thread.
    ///
    /// # Examples
    ///
    /// ```
    /// let ex = nestloop::Executor::new();
    /// let spawner = ex.spawner();
    /// drop(ex);
    /// // The executor is gone: the handle resolves to cancelled.
    /// let handle = spawner.spawn(async { 1 });
    /// let result = nestloop::block_on(handle);
    /// assert!(result.unwrap_err().is_cancelled());
    /// ```
    pub fn spawn<F>(&self, future: F) -> JoinHandle<F::Output>
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        let (task, handle) = task::new_remote(future, SharedHold::remote(&self.shared));
        self.shared.unadopted.fetch_add(1, Ordering::AcqRel);
        self.shared.push_remote(task);
        JoinHandle::new(handle)
    }
}
