//! [`Builder`]: an executor's settings.

use crate::context;
use crate::sched::{Config, Executor};

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
    config: Config,
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
            config: Config::default(),
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
        self.config.max_depth = max_depth;
        self
    }

    /// Whether `block_on` panics, instead of hanging forever, when its future
    /// can provably never be woken: it is pending, no task is ready, no timer
    /// is pending on the thread, every clone of its waker is either gone
    /// or held by the [`JoinHandle`](crate::JoinHandle) of a task that is on the stack (a task
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
        self.config.detect_deadlock = detect;
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
        self.config.tokio = Some(handle);
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
        context::with(|s| s.new_executor(self.config))
    }
}
