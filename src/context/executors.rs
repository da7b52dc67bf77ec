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

    /// Whether a live executor of this thread owns a tokio runtime (a wait
    /// with feature `async-io` then waits in tokio's reactor instead).
    #[cfg(all(feature = "tokio", feature = "async-io"))]
    pub(crate) fn has_runtime_executors(&self) -> bool {
        self.runtimes.borrow().iter().any(|r| r.strong_count() > 0)
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

    /// Thread exit: shuts down every executor of the thread (the default
    /// executor and any executor kept alive by a cycle, such as a task
    /// holding a clone of its executor), so no future outlives its thread.
    /// The newest executor goes first, and each drops its tasks newest
    /// first (see `Executor::shutdown`); the loops keep running the tasks
    /// not dropped yet, so a destructor may `block_on` them (and timers,
    /// and work of other threads). A task spawned meanwhile is shut down
    /// too. A `block_on` that can provably never finish panics instead of
    /// hanging the thread's exit (`run_loop::deadlock::check_deadlock`).
    pub(super) fn exit(&self) {
        self.exiting.set(true);
        // Calls blocked in suspended fibers first (R12): their tasks are
        // cancelled, their stacks unwound.
        self.cancel_fibers(|_| true);
        let mut left = usize::MAX;
        loop {
            let executors = self.registered();
            for inner in executors.iter().rev() {
                inner.shutdown();
            }
            let now: usize = executors.iter().map(|e| e.task_count()).sum();
            // Again for tasks spawned meanwhile (on an executor shut down
            // already), while that makes progress.
            if now == 0 || now >= left {
                break;
            }
            left = now;
        }
    }

    /// The GLib main context this thread's loops wait in, if a live
    /// executor of the thread has one (`Builder::glib`).
    #[cfg(feature = "glib")]
    pub(crate) fn glib_context(&self) -> Option<Rc<crate::reactor::glib::GlibContext>> {
        self.glib.borrow().upgrade()
    }

    /// The thread's GLib context for a new executor built with `context`:
    /// the one the thread's loops wait in already, or a new one. Panics if
    /// the thread's loops wait in another context (they can wait in one).
    #[cfg(feature = "glib")]
    fn glib_context_for(
        &self,
        context: ::glib::MainContext,
        drive: fn(),
    ) -> Rc<crate::reactor::glib::GlibContext> {
        if let Some(glib) = self.glib_context() {
            assert!(
                glib.is(&context),
                "nestloop: Builder::glib: this thread's loops wait in another GLib main context                  already (an executor built with Builder::glib earlier, still alive): a loop can                  wait in one context, so every executor of a thread uses the same one"
            );
            return glib;
        }
        let glib = Rc::new(crate::reactor::glib::GlibContext::new(
            context,
            self.signal().clone(),
            drive,
        ));
        *self.glib.borrow_mut() = Rc::downgrade(&glib);
        glib
    }

    /// Every live executor created on this thread.
    pub(crate) fn registered(&self) -> Vec<Rc<Inner>> {
        let registry = self.registry.borrow();
        registry.iter().filter_map(Weak::upgrade).collect()
    }

    /// Creates an executor of this thread and records it.
    pub(crate) fn new_executor(&self, config: Config) -> Executor {
        #[cfg(feature = "glib")]
        let glib = config
            .glib
            .clone()
            .map(|(context, drive)| self.glib_context_for(context, drive));
        let inner = Inner::new(
            config,
            self.signal().clone(),
            self.queue.clone(),
            #[cfg(feature = "glib")]
            glib,
        );
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
