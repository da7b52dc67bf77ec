//! The executors of a thread: its run queue, which every loop drives (R1),
//! every executor created on the thread, the thread's default executor,
//! and their shutdown at thread exit.

use std::rc::{Rc, Weak};

use super::ThreadState;
use crate::sched::{self, Config, Executor, Inner, ThreadQueue};

impl ThreadState {
    /// The thread's run queue, which every executor of the thread shares
    /// and every loop on the thread runs (R1).
    #[inline]
    pub(crate) fn queue(&self) -> &ThreadQueue {
        &self.queue
    }

    /// `Executor::current()`.
    pub(crate) fn current(&self) -> Option<Executor> {
        self.materialize();
        if let Some(inner) = sched::owner(self.here) {
            return Some(Executor { inner });
        }
        self.frames().last().map(|f| f.executor.clone())
    }

    /// The live executors of this thread that own a tokio current_thread
    /// runtime (`Builder::tokio_current_thread`), whose reactors the loops
    /// drive while they wait.
    #[cfg(feature = "tokio")]
    pub(crate) fn runtime_executors(&self) -> Vec<Rc<Inner>> {
        let mut runtimes = self.runtimes.borrow_mut();
        runtimes.retain(|r| r.strong_count() > 0);
        runtimes.iter().filter_map(Weak::upgrade).collect()
    }

    /// This thread's default executor, created on first use.
    pub(crate) fn default_executor(&self) -> Executor {
        self.default_executor
            .borrow_mut()
            .get_or_insert_with(|| self.new_executor(Config::default()))
            .clone()
    }

    /// Whether the thread is exiting (see `exit`).
    pub(crate) fn is_exiting(&self) -> bool {
        self.exiting.get()
    }

    /// Thread exit: shuts down the default executor and any executor kept
    /// alive by a cycle (a task holding a clone of its executor), so no
    /// future outlives its thread. From here on loops run no tasks: a task
    /// spawned by a destructor now lands on an executor being shut down, and
    /// its handle resolves to cancelled; a `block_on` runs only what needs
    /// no task (its future, timers, wakes from other threads), and reports
    /// it if it waits for a task (see `run_loop::deadlock::check_exiting`).
    pub(super) fn exit(&self) {
        self.exiting.set(true);
        // The default executor is registered like any other.
        for inner in self.registered() {
            inner.shutdown();
        }
    }

    /// Every live executor created on this thread.
    pub(crate) fn registered(&self) -> Vec<Rc<Inner>> {
        let registry = self.registry.borrow();
        registry.iter().filter_map(Weak::upgrade).collect()
    }

    /// Creates an executor of this thread and records it.
    pub(crate) fn new_executor(&self, config: Config) -> Executor {
        let inner = Inner::new(config, self.signal().clone(), self.queue.clone());
        let mut registry = self.registry.borrow_mut();
        registry.retain(|r| r.strong_count() > 0);
        registry.push(Rc::downgrade(&inner));
        #[cfg(feature = "tokio")]
        if inner.tokio_runtime.is_some() {
            self.runtimes.borrow_mut().push(Rc::downgrade(&inner));
        }
        Executor { inner }
    }
}
