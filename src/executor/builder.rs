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
    /// builds. Where the stack left cannot be read (under Miri, say), a count
    /// of 128 applies instead.
    ///
    /// What a level takes is what the caller's code keeps on the stack
    /// between its task's poll and the nested call, plus the loop's own
    /// frames, measured on x86_64 Linux:
    ///
    /// | caller | debug | release |
    /// |---|---|---|
    /// | a plain `block_on` nested in a `block_on` future | 1.9 KiB | 0.2 KiB |
    /// | a task calling a helper that nests a `block_on` | 4.5 KiB | 0.8 KiB |
    /// | an async-net connection handler calling a sync helper that waits 20-50 ms (`examples/hosts/examples/stack_per_level.rs`) | 5.5 KiB | 1.3 KiB |
    /// | the same, feature `async-io` | 6.8 KiB | 1.9 KiB |
    ///
    /// Handlers with large locals or deep synchronous call chains take more
    /// (10-12 KiB has been seen). So a thread holds about (stack - 128 KiB)
    /// / (per level) levels: a 2 MiB thread about 350 of the handler above
    /// in a debug build and 1,450 in release, an 8 MiB main thread about
    /// 1,450 and 6,200; a 12 KiB level, 160 and 670. (nest-asyncio reaches
    /// about 140 with Python's default recursion limit.)
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
    /// is pending on the thread, no task can be woken any more (no waker of
    /// any task is held anywhere), every clone of its waker is either gone
    /// or held by the [`JoinHandle`](crate::JoinHandle) of a task (which
    /// then can never finish: it is on the stack, having called this nested
    /// `block_on`, or nothing can wake it), and no live
    /// [`InterruptHandle`](crate::InterruptHandle) can end an enclosing
    /// [`try_block_on`](Executor::try_block_on) (a REPL's Ctrl-C handler
    /// holds one: the line then waits for Ctrl-C, as a Python cell waits for
    /// a `KeyboardInterrupt`). On by default. The panic message starts with
    /// `nestloop: deadlock` and names the nesting depth. At thread exit the
    /// check runs whatever this says (see the crate docs' "Shutdown and
    /// thread exit").
    ///
    /// A task that can still be woken (its waker held by a socket, a channel
    /// fed by another thread, any other thread) keeps a pending `block_on`
    /// serving: `block_on(std::future::pending())` while such a task lives is
    /// the run-forever idiom of a server's main (see
    /// [`Executor::run_forever`]), never a deadlock.
    ///
    /// It cannot see a deadlock where the waker is held by something else
    /// that will never run: inside another waker (a combinator's), in a
    /// channel whose sender nobody will use. Such a call waits.
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

    /// Whether a `block_on` called inside a task suspends that task's stack
    /// instead of nesting a loop (R12, the model of gevent's greenlets rather
    /// than nest-asyncio's nested loops): the executor's loops run on
    /// stacks of their own ("fibers"), a call whose future is pending
    /// suspends the fiber it runs on, the thread's loop goes on on another,
    /// and the call returns as soon as its own future is done, whatever
    /// other calls are waiting. Calls no longer return in stack order, and
    /// the number of calls waiting at once does not deepen any stack.
    ///
    /// On by default; `fibers(false)` gives the nested loops of
    /// nest-asyncio's model (calls return in stack order), and the
    /// environment variable `NESTLOOP_FIBERS=0` makes that the default for
    /// every executor whose builder does not say, the thread's default
    /// executor included (`NESTLOOP_FIBERS=1`: on; read once per process).
    /// A task's code then runs on a fiber's stack
    /// ([`fiber_stack_size`](Builder::fiber_stack_size), 2 MiB by default)
    /// rather than on the stack of the thread that calls `block_on`.
    ///
    /// Costs, measured in `benches/` (release, x86_64): nothing is paid
    /// until a call waits (the workloads with no waiting call run within
    /// noise of fibers off); a call that waits and is resumed costs about
    /// 1.2 times a nested loop's (388 vs 323 ns for a helper waiting for a
    /// sibling task); a waiting call holds the pages its fiber touched,
    /// about 5 KiB for a shallow helper. Stacks are switched with
    /// `corosensei`; a task never leaves its thread.
    ///
    /// What stays:
    ///
    /// * **Borrows across the call.** Other tasks run while a call waits,
    ///   so state the caller holds borrowed across `block_on` (a `RefCell`
    ///   borrow, a lock, a thread-local's borrow) can be touched meanwhile.
    /// * **Code that checks which stack it runs on.** nestloop's own state
    ///   (the task and executor being polled, task-locals, the task's
    ///   tracing span, [`frames`](crate::frames)) goes with each fiber;
    ///   other libraries' thread-locals are the thread's. Foreign code that
    ///   records its stack's bounds (some language runtimes) may object to
    ///   running on a fiber.
    /// * **tokio's runtime context entered across the call by your code.**
    ///   tokio requires `Handle::enter()` guards to be dropped in the order
    ///   they were made on the thread, and panics otherwise. The context
    ///   nestloop enters (for an executor with a tokio runtime, and inside
    ///   `nestloop::tokio::with_runtime`, feature `tokio`) follows its
    ///   stack: it is left while the stack is suspended and entered again
    ///   when it is resumed. A guard your own code holds across a
    ///   `block_on` that suspends is not: use `with_runtime`, or enter the
    ///   context inside the helper's future.
    /// * **A timeout cannot cut synchronous code short**, with fibers too:
    ///   it has no await point for the timer to win at (`abort()` can).
    ///
    /// Calls nest a loop as before where stacks cannot be switched
    /// (targets other than x86_64 and AArch64, Miri, loom); for the first
    /// poll of a call made on the thread's own stack, such as a REPL
    /// cell's (its loop and the tasks run on fibers); for `try_block_on`
    /// and `run_until_stalled` called inside a task; and in a destructor
    /// that runs during a panic (a stack is never switched while
    /// unwinding).
    ///
    /// Code that overflows a fiber's stack (plain recursion; recursion
    /// through `block_on` ends in R10's clean panic first) hits its guard
    /// page, and on Unix the process aborts with a `nestloop:` message
    /// naming [`fiber_stack_size`](Builder::fiber_stack_size) instead of a
    /// bare SIGSEGV.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    ///
    /// let ex = nestloop::Executor::builder().fibers(true).build();
    /// let order = std::rc::Rc::new(std::cell::RefCell::new(Vec::new()));
    /// let helper = |name: &'static str, ms: u64, order: std::rc::Rc<std::cell::RefCell<Vec<_>>>| {
    ///     // Synchronous code that waits: with fibers, it returns when its
    ///     // own sleep is done, not after the calls made after it.
    ///     nestloop::block_on(nestloop::time::sleep(Duration::from_millis(ms)));
    ///     order.borrow_mut().push(name);
    /// };
    /// ex.block_on(async {
    ///     let (a, b) = (order.clone(), order.clone());
    ///     // The fast helper starts first. Nested loops would return in
    ///     // stack order: the slow one, opened above it, first.
    ///     let fast = nestloop::spawn(async move { helper("fast", 5, a) });
    ///     let slow = nestloop::spawn(async move { helper("slow", 50, b) });
    ///     fast.await.unwrap();
    ///     slow.await.unwrap();
    /// });
    /// # if cfg!(any(target_arch = "x86_64", target_arch = "aarch64")) {
    /// assert_eq!(*order.borrow(), ["fast", "slow"]);
    /// # }
    /// ```
    pub fn fibers(mut self, on: bool) -> Builder {
        self.config.fibers = on;
        self
    }

    /// The stack size of each fiber (see [`fibers`](Builder::fibers)), in
    /// bytes; 2 MiB by default, what a task has on a thread of Rust's
    /// default size. Stacks are mapped with a guard page below them and
    /// committed as they are touched, so a generous size costs address
    /// space, not memory: a waiting call holds the pages its stack has
    /// touched. R10's depth check bounds recursion through `block_on` on a
    /// fiber by this size.
    ///
    /// # Panics
    ///
    /// Below 256 KiB (R10 keeps 128 KiB of a stack free for unwinding).
    pub fn fiber_stack_size(mut self, bytes: usize) -> Builder {
        assert!(
            bytes >= crate::fiber::MIN_STACK_SIZE,
            "nestloop: fiber_stack_size({bytes}) is below the minimum of {} bytes",
            crate::fiber::MIN_STACK_SIZE
        );
        self.config.fiber_stack_size = bytes;
        self
    }

    /// Polls every task and `block_on` future of the executor inside the
    /// context of this tokio runtime, so they can use `tokio::net`,
    /// `tokio::time` and `tokio::spawn` (feature `tokio`). The runtime must
    /// be a multi-thread one: its worker threads drive the I/O and timers.
    /// To have I/O driven on the loop's own thread, with no tokio threads,
    /// use [`tokio_current_thread`](Builder::tokio_current_thread).
    ///
    /// # Panics
    ///
    /// If `handle` is a current_thread runtime's: only that runtime's own
    /// `Runtime::block_on` drives its I/O and timers, so `tokio::net` and
    /// `tokio::time` in the executor's tasks would wait forever.
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
    #[cfg_attr(docsrs, doc(cfg(feature = "tokio")))]
    pub fn tokio_handle(mut self, handle: ::tokio::runtime::Handle) -> Builder {
        if handle.runtime_flavor() == ::tokio::runtime::RuntimeFlavor::CurrentThread {
            panic!(
                "nestloop: Builder::tokio_handle was given the handle of a tokio current_thread \
                 runtime, whose I/O and timers only that runtime's own block_on drives: \
                 tokio::net and tokio::time would wait forever in the executor's tasks. Use \
                 Builder::tokio_current_thread() (the executor then owns a current_thread runtime \
                 and drives it on its own thread), or the handle of a multi_thread runtime"
            );
        }
        self.config.tokio = Some(handle);
        self.config.tokio_current_thread = false;
        self
    }

    /// Gives the executor a tokio current_thread runtime of its own, which
    /// the loops of its thread drive while they wait (feature `tokio`):
    /// `tokio::net`, `tokio::time`, `tokio::spawn`, and crates built on
    /// them (hyper, reqwest, tonic), then work in the executor's tasks and
    /// in nested `block_on` calls at any depth, on this one thread, with no
    /// tokio worker threads.
    ///
    /// * Tasks and `block_on` futures are polled inside the runtime's
    ///   context (`Handle::enter`). A loop with nothing ready waits in the
    ///   runtime's `block_on`, so tokio's I/O driver, timers and tasks run
    ///   then; a loop busy with ready tasks gives the runtime a turn, without
    ///   waiting, every 256 polls. While the executor is active, a nested
    ///   loop of any other executor on the thread drives it too. With two
    ///   such executors active at once (one nested in the other), a wait
    ///   blocks in the innermost one's runtime and gives the other a turn
    ///   every millisecond.
    /// * tokio's own blocking calls (`blocking_recv`, `Handle::block_on`)
    ///   made in the executor's tasks wait forever: nothing drives the
    ///   runtime while they block the thread (in a plain current_thread
    ///   runtime they panic). Use `nestloop::block_on` there instead.
    /// * nestloop's own timers keep their precision: tokio's resolution is
    ///   1 ms and its timers fire up to 2 ms late, so a wait hands tokio a
    ///   deadline 2 ms early and waits out the rest with
    ///   `std::thread::park_timeout` (I/O events arriving in those last 2 ms
    ///   wait until the timer fires).
    /// * The runtime is built with `enable_all` and dropped with the
    ///   executor's last handle; [`Executor::tokio_handle`] gives its handle.
    ///
    /// # Panics
    ///
    /// `build` panics if tokio cannot build the runtime. A task spawned
    /// with `tokio::spawn` runs inside the runtime's `block_on`; a
    /// `block_on` called from it panics with a `nestloop:` message, as the
    /// runtime cannot be driven from inside itself. Spawn such work with
    /// [`Executor::spawn`] instead.
    ///
    /// # Examples
    ///
    /// ```
    /// use tokio::io::{AsyncReadExt, AsyncWriteExt};
    /// use tokio::net::{TcpListener, TcpStream};
    ///
    /// let ex = nestloop::Executor::builder().tokio_current_thread().build();
    /// let reply = ex.block_on(async {
    ///     let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    ///     let addr = listener.local_addr().unwrap();
    ///     // A tokio task serves one connection.
    ///     tokio::spawn(async move {
    ///         let (mut socket, _) = listener.accept().await.unwrap();
    ///         let mut buf = [0; 4];
    ///         socket.read_exact(&mut buf).await.unwrap();
    ///         socket.write_all(&buf).await.unwrap();
    ///     });
    ///     // Synchronous code waits for the client, in a nested loop.
    ///     nestloop::block_on(async {
    ///         let mut stream = TcpStream::connect(addr).await.unwrap();
    ///         stream.write_all(b"ping").await.unwrap();
    ///         let mut buf = [0; 4];
    ///         stream.read_exact(&mut buf).await.unwrap();
    ///         buf
    ///     })
    /// });
    /// assert_eq!(&reply, b"ping");
    /// ```
    #[cfg(feature = "tokio")]
    #[cfg_attr(docsrs, doc(cfg(feature = "tokio")))]
    pub fn tokio_current_thread(mut self) -> Builder {
        self.config.tokio = None;
        self.config.tokio_current_thread = true;
        self
    }

    /// Makes the loops of the calling thread wait in the thread's GLib main
    /// context, and a GLib main loop run nestloop's tasks and timers
    /// (feature `glib`): a GTK signal handler can `nestloop::block_on` with
    /// the window still drawing and responding. The context is the
    /// thread-default one (`MainContext::ref_thread_default()`: the
    /// global default on the main thread); see
    /// [`glib_main_context`](Builder::glib_main_context) for the details.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    ///
    /// let ex = nestloop::Executor::builder().glib().build();
    /// // A GLib timeout fires while `block_on` waits.
    /// let fired = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    /// let f = fired.clone();
    /// glib::timeout_add_once(Duration::from_millis(5), move || {
    ///     f.store(true, std::sync::atomic::Ordering::SeqCst);
    /// });
    /// ex.block_on(nestloop::time::sleep(Duration::from_millis(20)));
    /// assert!(fired.load(std::sync::atomic::Ordering::SeqCst));
    /// ```
    #[cfg(feature = "glib")]
    #[cfg_attr(docsrs, doc(cfg(feature = "glib")))]
    pub fn glib(self) -> Builder {
        self.glib_main_context(::glib::MainContext::ref_thread_default())
    }

    /// Makes the loops of the calling thread wait in GLib main context
    /// `context`, and its main loop run nestloop's tasks and timers
    /// (feature `glib`).
    ///
    /// * **nestloop waits in GLib.** A loop with nothing ready iterates
    ///   the context instead of parking the thread, at every depth, so
    ///   GLib's timeouts, idle handlers, I/O watches and (with GTK) window
    ///   events are dispatched while any `block_on` waits; a busy loop
    ///   lets GLib dispatch what is ready every 256 polls. The loop
    ///   acquires the context for the wait (recursively where the thread
    ///   owns it already, as inside a running `MainLoop`).
    /// * **GLib runs nestloop.** While no nestloop loop runs (a
    ///   `glib::MainLoop` or `gtk::Application` owns the thread), a wake of
    ///   a task queues an idle source in the context, and the next nestloop
    ///   timer is armed as a timeout source; when GLib dispatches either,
    ///   it runs the thread's ready tasks and due timers. They have GLib's
    ///   default priority (`Priority::DEFAULT`), as futures spawned with
    ///   `MainContext::spawn_local` do: with input events, above redraws.
    /// * **Nesting, both ways.** A GLib callback dispatched during a wait
    ///   may itself call `block_on` (its loop iterates the context again;
    ///   GLib does not dispatch a source inside its own callback), and a
    ///   task may run a nested GLib main loop (nestloop's sources run the
    ///   thread's work from inside it). GLib keeps its dispatches in a
    ///   per-thread stack that must unwind in order, so a `block_on` in a
    ///   GLib callback nests a loop even with fibers: such calls return in
    ///   GLib's nesting order, as in its own nested main loops (tasks
    ///   still suspend in their own calls).
    /// * **Not inside GLib's futures.** glib's executor
    ///   (`MainContext::spawn_local`, `glib::spawn_future_local`) refuses to
    ///   poll one of its futures inside another (`EnterError`, which aborts
    ///   in a GLib callback): do not call `block_on` inside such a future
    ///   while other GLib futures may be ready; spawn the work as a
    ///   nestloop task, or call `block_on` from a plain signal handler.
    /// * Wakes from other threads reach a loop waiting in the context.
    ///   GLib's timeouts count whole milliseconds: nestloop timers fire up
    ///   to 1 ms late while a loop waits in GLib. async-io's reactor, with
    ///   feature `async-io`, is then driven by its helper thread; tokio
    ///   runtimes of executors built with
    ///   [`tokio_current_thread`](Builder::tokio_current_thread) get a
    ///   turn every millisecond of a wait.
    ///
    /// # Panics
    ///
    /// `build` panics if another thread owns `context` (runs a main loop on
    /// it, or acquired it), and if an executor of this thread built with
    /// another context is alive (the loops of a thread wait in one
    /// context). A wait panics if another thread owns the context by then:
    /// build the executor on the thread that runs the context's main loop.
    ///
    /// # Examples
    ///
    /// ```
    /// let context = glib::MainContext::new();
    /// let ex = nestloop::Executor::builder()
    ///     .glib_main_context(context.clone())
    ///     .build();
    /// let task = ex.spawn(async { 6 * 7 });
    /// // A GLib main loop on that context runs the task.
    /// let main_loop = glib::MainLoop::new(Some(&context), false);
    /// let quit = main_loop.clone();
    /// ex.spawn(async move {
    ///     assert_eq!(task.await.unwrap(), 42);
    ///     quit.quit();
    /// });
    /// main_loop.run();
    /// ```
    #[cfg(feature = "glib")]
    #[cfg_attr(docsrs, doc(cfg(feature = "glib")))]
    pub fn glib_main_context(mut self, context: ::glib::MainContext) -> Builder {
        self.config.glib = Some((context, crate::run_loop::drive_from_glib));
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
