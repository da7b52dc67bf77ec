//! The executors of a thread: those a loop drives (the active ones and the
//! thread's default executor, R1), every executor created on the thread,
//! and their shutdown at thread exit.

use std::rc::{Rc, Weak};

use super::ThreadState;
use crate::sched::{self, Config, Executor, Inner};

impl ThreadState {
    /// The executors every loop on this thread drives: those that have a
    /// loop on this thread, and the thread's default executor (R1: it
    /// belongs to the thread, as asyncio has one loop per thread).
    /// None while the thread exits: their tasks are being shut down.
    #[inline]
    pub(crate) fn active_executors(&self) -> Rc<[Executor]> {
        self.materialize();
        let snapshot = self
            .active_snapshot
            .take()
            .unwrap_or_else(|| self.snapshot_active());
        self.active_snapshot.set(Some(snapshot.clone()));
        snapshot
    }

    /// See `active_executors`.
    #[cold]
    fn snapshot_active(&self) -> Rc<[Executor]> {
        if self.exiting.get() {
            return Rc::new([]);
        }
        let active = self.active.borrow();
        let default = self.default_executor.borrow();
        let default = default
            .as_ref()
            .filter(|d| !active.iter().any(|e| e.ptr_eq(d)));
        active.iter().chain(default).cloned().collect()
    }

    /// `Executor::current()`.
    pub(crate) fn current(&self) -> Option<Executor> {
        self.materialize();
        let owner = sched::owner(self.here);
        if !owner.is_null() {
            // The owner of what is being polled has a frame, or is the
            // default executor (only those executors' tasks and futures are
            // polled).
            let is_owner = |e: &&Executor| std::ptr::eq(Rc::as_ptr(&e.inner), owner);
            let found = self.active.borrow().iter().find(is_owner).cloned();
            if found.is_some() {
                return found;
            }
            let default = self
                .default_executor
                .borrow()
                .as_ref()
                .filter(is_owner)
                .cloned();
            if default.is_some() {
                return default;
            }
        }
        self.frames().last().map(|f| f.executor.clone())
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
        let stale = self.active_snapshot.take();
        drop(stale);
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
        let inner = Inner::new(config, self.signal().clone());
        let mut registry = self.registry.borrow_mut();
        registry.retain(|r| r.strong_count() > 0);
        registry.push(Rc::downgrade(&inner));
        Executor { inner }
    }
}
