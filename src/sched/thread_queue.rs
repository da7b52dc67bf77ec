//! The run queue of a thread ([`ThreadQueue`]): the tasks of every executor
//! of the thread, in wake order, which every loop on the thread runs (R1:
//! one loop per thread, as asyncio has), and the executors with tasks
//! pushed from other threads ([`RemoteReady`]). An executor that has no
//! ready task costs a loop nothing: no loop visits executors, only tasks.

use std::cell::{Cell, RefCell};
use std::rc::Rc;

use super::{Inner, Shared, ThisThread};
use crate::sync::{Arc, AtomicBool, InjectQueue, Ordering, fence};
use crate::task::{QueueMark, RunQueue, TaskRef};

/// The thread-local run queue shared by the executors of one thread (each
/// keeps an `Rc` of it; so does the thread's state).
pub(crate) struct ThreadQueue {
    /// Tasks woken or spawned on this thread, in wake order.
    run: RunQueue,
    /// The executors of this thread with tasks pushed from other threads.
    remote: Arc<RemoteReady>,
    /// The executors of this thread whose `shutdown` is running, innermost
    /// last (a destructor it ran may shut another one down).
    shutdowns: RefCell<Vec<Arc<Shared>>>,
    /// Run first by each executor's shutdown, with the executor's address:
    /// the `context` layer ends the fibers suspended in its tasks (R12).
    on_shutdown: Cell<fn(*const ())>,
}

/// The executors of one thread that have tasks in their injection queues,
/// each listed once (`Shared::inject_listed`) until a loop drains it;
/// pushed from any thread.
pub(crate) struct RemoteReady {
    /// The listed executors.
    executors: InjectQueue<Arc<Shared>>,
    /// The thread's queue is gone: nothing lists itself any more (an entry
    /// would keep its `Shared`, which keeps this list, alive for ever).
    closed: AtomicBool,
}

impl ThreadQueue {
    /// The queue of a thread that has none yet.
    pub(crate) fn new() -> Rc<ThreadQueue> {
        Rc::new(ThreadQueue {
            run: RunQueue::new(),
            shutdowns: RefCell::new(Vec::new()),
            on_shutdown: Cell::new(|_| {}),
            remote: Arc::new(RemoteReady {
                executors: InjectQueue::new(),
                closed: AtomicBool::new(false),
            }),
        })
    }

    /// Where the executors of this thread list themselves when another
    /// thread pushes them a task.
    pub(crate) fn remote(&self) -> &Arc<RemoteReady> {
        &self.remote
    }

    /// Queues a task of an executor of this thread; returns whether the
    /// queue was empty.
    #[inline]
    pub(crate) fn push(&self, task: TaskRef) -> bool {
        let was_empty = self.run.is_empty();
        self.run.push(task);
        was_empty
    }

    /// The next task to run.
    #[inline]
    pub(crate) fn pop(&self) -> Option<TaskRef> {
        self.run.pop()
    }

    /// A mark of the queue's end now: a wake seen later comes after the
    /// tasks queued by then, of which `queued_through(mark, ..)` still wait.
    #[inline]
    pub(crate) fn end_mark(&self) -> QueueMark {
        self.run.end_mark()
    }

    /// How many of the tasks queued by the time `mark` was taken still
    /// wait, counted up to `limit`.
    pub(crate) fn queued_through(&self, mark: QueueMark, limit: usize) -> usize {
        self.run.queued_through(mark, limit)
    }

    /// Whether no task woken or spawned on this thread waits to run.
    #[inline]
    pub(crate) fn is_empty(&self) -> bool {
        self.run.is_empty()
    }

    /// Whether an executor of this thread has tasks pushed from another
    /// thread, not yet moved here.
    #[inline]
    pub(crate) fn has_remote(&self) -> bool {
        !self.remote.executors.is_empty()
    }

    /// Moves the tasks other threads pushed to the executors of this thread
    /// (`here`) into this queue, adopting new ones.
    pub(crate) fn drain_remote(&self, here: ThisThread) {
        if self.remote.executors.is_empty() {
            return; // every loop step asks: keep the common case cheap
        }
        // Bounded: executors listed again meanwhile wait for the next step.
        for _ in 0..self.remote.executors.len() {
            let Some(shared) = self.remote.executors.pop() else {
                break;
            };
            // Unlisted before the drain, with a fence between: a push that
            // still saw it listed made its task visible to this drain (see
            // `RemoteReady::list`).
            shared.inject_listed.store(false, Ordering::SeqCst);
            fence(Ordering::SeqCst);
            // An executor that is gone has cancelled what it was pushed.
            if let Some(executor) = shared.local_executor(here) {
                executor.drain_inject();
            }
        }
    }

    /// Notes that `shared`'s executor is shutting down until the guard
    /// drops.
    /// Sets what each executor's shutdown runs first (see `on_shutdown`).
    pub(crate) fn set_on_shutdown(&self, hook: fn(*const ())) {
        self.on_shutdown.set(hook);
    }

    /// Runs the shutdown hook for the executor at `executor`.
    pub(crate) fn before_shutdown(&self, executor: *const ()) {
        (self.on_shutdown.get())(executor);
    }

    pub(crate) fn begin_shutdown(&self, shared: &Arc<Shared>) -> ShutdownGuard<'_> {
        self.shutdowns.borrow_mut().push(shared.clone());
        ShutdownGuard(self)
    }

    /// The executors of this thread (`here`) shutting down, innermost first.
    pub(crate) fn shutting_down(&self, here: ThisThread) -> Vec<Rc<Inner>> {
        let shutdowns = self.shutdowns.borrow();
        shutdowns
            .iter()
            .rev()
            .filter_map(|shared| shared.local_executor(here))
            .collect()
    }

    /// Whether an executor of this thread is shutting down.
    pub(crate) fn is_shutting_down(&self) -> bool {
        !self.shutdowns.borrow().is_empty()
    }

    /// Keeps only the tasks for which `keep` holds, in order (shutdown drops
    /// the entries of the tasks it finished).
    pub(crate) fn retain(&self, mut keep: impl FnMut(&TaskRef) -> bool) {
        let queued = self.run.take();
        while let Some(task) = queued.pop() {
            if keep(&task) {
                self.run.push(task);
            }
        }
    }
}

/// Ends what `ThreadQueue::begin_shutdown` began.
pub(crate) struct ShutdownGuard<'a>(&'a ThreadQueue);

impl Drop for ShutdownGuard<'_> {
    fn drop(&mut self) {
        let ended = self.0.shutdowns.borrow_mut().pop();
        drop(ended);
    }
}

impl RemoteReady {
    /// Lists `shared` (whose injection queue just got a task) unless it is
    /// listed already; returns whether it listed it. The caller pushed the
    /// task, then fenced (`SeqCst`, see `Shared::push_remote`). Against the
    /// unlisting in `ThreadQueue::drain_remote` (a `SeqCst` store, a fence,
    /// then the drain): either the drain's fence comes after the pusher's,
    /// and the drain sees the task, or before it, and this load sees the
    /// executor unlisted (or listed again since). So the common case, a
    /// stream of pushes to a listed executor, costs a load, not a swap.
    pub(crate) fn list(&self, shared: &Arc<Shared>) -> bool {
        if shared.inject_listed.load(Ordering::SeqCst)
            || shared.inject_listed.swap(true, Ordering::AcqRel)
        {
            return false;
        }
        self.executors.push(shared.clone());
        // Pairs with the fence in `ThreadQueue::drop`: either it sees this
        // entry when it empties the list, or this sees it closed.
        fence(Ordering::SeqCst);
        if self.closed.load(Ordering::SeqCst) {
            self.empty();
        }
        true
    }

    /// Drops every entry (any thread: they are only notices).
    fn empty(&self) {
        while self.executors.pop().is_some() {}
    }
}

impl Drop for ThreadQueue {
    fn drop(&mut self) {
        // The thread is gone: listed executors are dropped (or cancel what
        // they are pushed, see `Shared::push_remote`); break the cycle of
        // their `Arc`s through this list.
        self.remote.closed.store(true, Ordering::SeqCst);
        fence(Ordering::SeqCst);
        self.remote.empty();
    }
}
