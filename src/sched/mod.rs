//! The scheduler: an executor's run queue, its task list and where a wake
//! goes.
//!
//! An executor has a thread-local side ([`Inner`], behind the `Rc` of
//! [`Executor`]) and a thread-safe side ([`Shared`], behind an `Arc` that
//! `Spawner`s and handles hold, and that tasks reach through counted holds,
//! see `hold.rs`):
//!
//! * wakes made on the executor's own thread go to `Inner::queue`, a queue
//!   linked through the tasks (no atomics, no buffer; see
//!   `task::RunQueue`), found without a search through `Shared::local`
//!   (`local.rs`);
//! * wakes and spawns from other threads go to `Shared::inject`, a lock-free
//!   queue, and unpark the thread (`park/`); loops move them to the local
//!   queue.
//!
//! Every live task is in `Inner::tasks` (a list linked through the tasks,
//! see `task::TaskList`), so `shutdown` and drop can find and drop every
//! future.
//!
//! This module and `task` call each other, the crate's one import cycle: a
//! task's wake must know where to queue (`Shared`), and the executor runs
//! its tasks (`TaskRef::poll`). Tokio's `task` module has the same recursion
//! behind its `Schedule` trait; here it has a single implementation, so the
//! cycle is declared rather than abstracted.
//!
//! Here: the types. Beside it: `core.rs`, the thread-local side's
//! operations; `polled.rs`, the scope every poll runs in (what is being
//! polled, for `Executor::current` and diagnostics); `names.rs`, the names
//! of named tasks; `shared.rs`, the thread-safe side's;
//! `interrupt.rs`, the interrupt epoch, [`InterruptHandle`] and
//! [`Interrupted`]; `hold.rs`, `local.rs` and `polled.rs`, the unsafe parts. The public
//! methods of [`Executor`] are in `executor/mod.rs`.

use std::fmt;
use std::rc::Rc;

use crate::park::ThreadSignal;
use crate::sync::{Arc, AtomicBool, AtomicUsize, InjectQueue};
use crate::task::{TaskList, TaskRef};
use crate::thread_context::Here;

mod core;
mod hold;
mod interrupt;
mod local;
mod names;
mod polled;
mod shared;
mod thread_queue;

#[cfg(all(test, not(nestloop_loom)))]
pub(crate) use hold::HOLD_BATCH;
pub(crate) use hold::{SharedHold, ThisThread};
pub use interrupt::{InterruptHandle, Interrupted};
pub(crate) use polled::{
    PollTarget, owner, poll_target, target_aborted, target_referenced_elsewhere,
};
pub(crate) use thread_queue::{RemoteReady, ThreadQueue};

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
    /// Its thread-local side; its thread-safe side is `inner.shared`.
    pub(crate) inner: Rc<Inner>,
}

/// The thread-local side of an executor: what only its thread touches.
pub(crate) struct Inner {
    /// What other threads reach: wakes, spawns, interrupts, tasks' holds.
    pub(crate) shared: Arc<Shared>,
    /// This executor's id, unique in the process (diagnostics).
    pub(crate) id: u64,
    /// The names of its named tasks.
    pub(crate) names: names::TaskNames,
    /// The run queue of its thread, which it shares with the thread's
    /// other executors (`thread_queue.rs`).
    thread: Rc<ThreadQueue>,
    /// Every live task, so shutdown can reach them all.
    tasks: TaskList,
    /// Nesting depth at which `block_on` refuses to nest further
    /// (`usize::MAX`: no count, the stack is the bound).
    pub(crate) max_depth: usize,
    /// Whether a `block_on` that can never finish panics (R9).
    pub(crate) detect_deadlock: bool,
    /// The stack size of the fibers its loops run on and its tasks'
    /// blocked calls suspend (R12), in bytes; 0: no fibers, calls nest.
    pub(crate) fiber_stack_size: usize,
    /// Its thread's context: polls reach the poll record through it.
    pub(crate) here: Here,
    /// The tokio runtime whose context polls enter.
    #[cfg(feature = "tokio")]
    pub(crate) tokio: Option<::tokio::runtime::Handle>,
    /// The current_thread runtime this executor owns, driven by the loops
    /// of its thread while they wait (`Builder::tokio_current_thread`).
    #[cfg(feature = "tokio")]
    pub(crate) tokio_runtime: Option<::tokio::runtime::Runtime>,
    /// The GLib main context its thread's loops wait in (`Builder::glib`),
    /// shared by the thread's executors that have one.
    #[cfg(feature = "glib")]
    pub(crate) glib: Option<Rc<crate::reactor::glib::GlibContext>>,
}

/// The part of an executor that other threads reach.
pub(crate) struct Shared {
    /// Wakes and spawns from other threads.
    pub(crate) inject: InjectQueue<TaskRef>,
    /// False once the executor is dropped: pushes then cancel the task.
    pub(crate) alive: AtomicBool,
    /// Unparks the executor's thread.
    pub(crate) signal: Arc<ThreadSignal>,
    /// Tasks spawned through a `Spawner` and not yet moved into `tasks`.
    pub(crate) unadopted: AtomicUsize,
    /// Bumped by each `InterruptHandle::interrupt`.
    interrupt_epoch: AtomicUsize,
    /// How many `InterruptHandle`s of the executor exist: while one does, a
    /// `try_block_on` of it has a way out (R9).
    interrupt_handles: AtomicUsize,
    /// The counts behind the tasks' holds on this part (see `SharedHold`).
    pub(crate) holds: hold::Holds,
    /// The thread-local side, for wakes on its thread (see `local.rs`).
    local: local::LocalSide,
    /// Where it lists itself when another thread pushes it a task: its
    /// thread's list (see `RemoteReady`).
    remote: Arc<RemoteReady>,
    /// Whether it is in `remote`'s list.
    inject_listed: AtomicBool,
}

/// What a `Builder` sets (see its methods).
#[derive(Debug, Clone)]
pub(crate) struct Config {
    /// See `Inner::max_depth`.
    pub(crate) max_depth: usize,
    /// See `Inner::detect_deadlock`.
    pub(crate) detect_deadlock: bool,
    /// Whether its loops run on fibers (R12).
    pub(crate) fibers: bool,
    /// Their stack size, in bytes.
    pub(crate) fiber_stack_size: usize,
    /// See `Inner::tokio`.
    #[cfg(feature = "tokio")]
    pub(crate) tokio: Option<::tokio::runtime::Handle>,
    /// Build a current_thread runtime for `Inner::tokio_runtime`.
    #[cfg(feature = "tokio")]
    pub(crate) tokio_current_thread: bool,
    /// The GLib main context the thread's loops wait in
    /// (`Builder::glib`), and what runs nestloop's work from GLib.
    #[cfg(feature = "glib")]
    pub(crate) glib: Option<(::glib::MainContext, fn())>,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            max_depth: usize::MAX,
            detect_deadlock: true,
            fibers: fibers_by_default(),
            fiber_stack_size: crate::fiber::DEFAULT_STACK_SIZE,
            #[cfg(feature = "tokio")]
            tokio: None,
            #[cfg(feature = "tokio")]
            tokio_current_thread: false,
            #[cfg(feature = "glib")]
            glib: None,
        }
    }
}

/// Whether executors get fibers (R12) unless their `Builder` says: what
/// the environment variable `NESTLOOP_FIBERS` says (`1` or `0`, read once
/// per process), on without it (where stacks can be switched at all). The
/// thread's default executor follows it too.
fn fibers_by_default() -> bool {
    static FIBERS: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *FIBERS.get_or_init(|| match std::env::var("NESTLOOP_FIBERS").as_deref() {
        Ok("1") | Err(_) => true,
        Ok("0") => false,
        Ok(other) => {
            panic!("nestloop: NESTLOOP_FIBERS is {other:?}; set it to 1 (fibers on) or 0 (off)")
        }
    })
}

impl Inner {
    /// An executor of the thread whose signal is `signal` (the calling one).
    pub(crate) fn new(
        config: Config,
        signal: Arc<ThreadSignal>,
        thread: Rc<ThreadQueue>,
        #[cfg(feature = "glib")] glib: Option<Rc<crate::reactor::glib::GlibContext>>,
    ) -> Rc<Inner> {
        let shared = Arc::new(Shared {
            inject: InjectQueue::new(),
            alive: AtomicBool::new(true),
            signal,
            unadopted: AtomicUsize::new(0),
            interrupt_epoch: AtomicUsize::new(0),
            interrupt_handles: AtomicUsize::new(0),
            holds: hold::Holds::new(),
            local: local::LocalSide::new(),
            remote: thread.remote().clone(),
            inject_listed: AtomicBool::new(false),
        });
        SharedHold::first(&shared);
        #[cfg(feature = "tokio")]
        let (tokio, tokio_runtime) = match config.tokio_current_thread {
            false => (config.tokio, None),
            true => {
                let rt = ::tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .unwrap_or_else(|e| {
                        panic!("nestloop: could not build a tokio current_thread runtime: {e}")
                    });
                (Some(rt.handle().clone()), Some(rt))
            }
        };
        // Fibers where stacks can be switched.
        let fiber_stack_size = if config.fibers && crate::fiber::SUPPORTED {
            config.fiber_stack_size
        } else {
            0
        };
        let inner = Rc::new(Inner {
            shared,
            id: crate::thread_context::next_executor_id(),
            names: names::TaskNames::default(),
            thread,
            tasks: TaskList::new(),
            max_depth: config.max_depth,
            detect_deadlock: config.detect_deadlock,
            fiber_stack_size,
            here: Here::get(),
            #[cfg(feature = "tokio")]
            tokio,
            #[cfg(feature = "tokio")]
            tokio_runtime,
            #[cfg(feature = "glib")]
            glib,
        });
        inner.link_local();
        inner
    }
}

impl Drop for Executor {
    #[inline]
    fn drop(&mut self) {
        if Rc::strong_count(&self.inner) == 1 {
            self.inner.last_handle_dropped();
        }
    }
}

impl Inner {
    /// The last handle is going: the tasks are shut down while the
    /// executor is still whole, so their destructors may wait for its
    /// tasks not dropped yet, as with `shutdown` (R5). `Inner::drop` is
    /// left with nothing to do, or with what those destructors spawned.
    #[cold]
    #[inline(never)]
    fn last_handle_dropped(&self) {
        if self.task_count() != 0 {
            self.shutdown();
        }
    }
}

impl fmt::Debug for Inner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Inner").finish_non_exhaustive()
    }
}
