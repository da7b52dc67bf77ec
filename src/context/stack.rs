//! What belongs to the stack that runs now, and the switch between stacks.
//!
//! A stack is the thread's own, or (R12) a task's stack of its own,
//! suspended while a `block_on` in it waits. Its state comes in two
//! halves: the `thread_context` layer's `StackContext` (what is being
//! polled, the running poll's task-local mark) and this layer's
//! [`StackState`] (its loops' frames and its deferred frame). Both hold
//! the running stack's values in place, where every poll reaches them
//! without a pointer to chase; a suspended stack keeps its values in a
//! [`SuspendedStack`], and [`ThreadState::switch_stack`] exchanges them
//! in one call, the only place that does.
//!
//! The rest of `ThreadState` is the thread's, whichever stack runs: the
//! run queue, timers, executors, the `block_on` futures' table (`BlockOnTable`,
//! whose entries name their own slots), the state cache.

use std::cell::{Cell, RefCell};

use super::deferred::DeferredFrame;
use super::{Frame, ThreadState};
use crate::task_local;
use crate::thread_context::{self, SavedStackContext};

/// This layer's half of the running stack's state (see the module docs).
pub(super) struct StackState {
    /// The active loops on this stack, outermost first. Read through
    /// `ThreadState::frames()` and `frames_mut()`, which push a deferred
    /// frame first.
    pub(super) frames: RefCell<Vec<Frame>>,
    /// The frame of the innermost plain `block_on` while its first poll
    /// runs, not pushed yet (see `deferred.rs`).
    pub(super) deferred: DeferredFrame,
    /// Which stack this is (see `StackInfo`).
    pub(super) info: Cell<StackInfo>,
}

/// What a stack is, beyond its frames: kept in the running stack's
/// `StackState` and in a suspended stack's `SuspendedStack` alike.
#[derive(Debug, Clone, Copy, Default)]
pub(super) struct StackInfo {
    /// The loops below this stack: 0 on the thread's own stack; on a fiber,
    /// the depth of the loop that made it. `depth()` adds its own frames.
    pub(super) base: usize,
    /// The lowest address this stack may use, for R10 (0: the thread's
    /// own, whose bounds `stacker` knows).
    pub(super) limit: usize,
    /// This fiber's id in the thread's fiber table (`None`: the thread's
    /// own stack).
    pub(super) fiber: Option<usize>,
    /// The loop on this fiber has handed the thread's loop on to another
    /// fiber: a call on it was blocked, and whoever resumes it runs a loop
    /// already. Its loop ends after its current step.
    pub(super) handed_off: bool,
}

impl StackState {
    /// A stack with no loop on it.
    pub(super) fn new() -> Self {
        StackState {
            frames: RefCell::new(Vec::new()),
            deferred: DeferredFrame::new(),
            info: Cell::new(StackInfo::default()),
        }
    }
}

/// The state of a stack that is not running: a new one (no loops, nothing
/// polled), or a suspended one's, kept until it runs again.
#[derive(Debug)]
pub(crate) struct SuspendedStack {
    /// Its `StackContext` values.
    context: SavedStackContext,
    /// Its frames (see `StackState::frames`). A deferred frame is always
    /// pushed before a switch, so a suspended stack has none.
    pub(super) frames: Vec<Frame>,
    /// Which stack it is.
    pub(super) info: StackInfo,
}

impl SuspendedStack {
    /// The executor whose poll was running when the stack was suspended
    /// (its `Inner`'s address; null when none was).
    pub(crate) fn polled_owner(&self) -> *const () {
        self.context.polled_owner()
    }

    /// Whether its suspended poll is a task's referenced beyond its list,
    /// its `JoinHandle` and that poll (`None`: not a task's poll).
    pub(crate) fn task_referenced_elsewhere(&self) -> Option<bool> {
        crate::sched::target_referenced_elsewhere(self.context.polled_target())
    }

    /// Whether its suspended poll is a task's whose abort was requested.
    pub(crate) fn task_aborted(&self) -> bool {
        crate::sched::target_aborted(self.context.polled_target())
    }
}

impl SuspendedStack {
    /// The state of a stack that has run nothing yet.
    pub(crate) fn new() -> Self {
        SuspendedStack {
            context: SavedStackContext::new(task_local::new_mark()),
            frames: Vec::new(),
            info: StackInfo::default(),
        }
    }

    /// How many loops run on the stack (its own frames).
    #[cfg(test)]
    pub(crate) fn depth(&self) -> usize {
        self.frames.len()
    }
}

impl Default for SuspendedStack {
    fn default() -> Self {
        SuspendedStack::new()
    }
}

impl ThreadState {
    /// The lowest address the running stack may use, when it is a fiber
    /// (R10 reads the thread's own bounds from `stacker`).
    pub(crate) fn fiber_stack_limit(&self) -> Option<usize> {
        Some(self.stack.info.get().limit).filter(|&limit| limit != 0)
    }

    /// The running fiber's id (`None` on the thread's own stack).
    pub(crate) fn current_fiber(&self) -> Option<usize> {
        self.stack.info.get().fiber
    }

    /// Notes that the loop on the running fiber hands the thread's loop on
    /// to another fiber (see `StackState::handed_off`).
    pub(crate) fn hand_off_loop(&self) {
        let info = self.stack.info.get();
        self.stack.info.set(StackInfo {
            handed_off: true,
            ..info
        });
    }

    /// Whether the loop on the running fiber has handed the thread's loop
    /// on (see `StackState::handed_off`).
    #[inline]
    pub(crate) fn loop_handed_off(&self) -> bool {
        self.stack.info.get().handed_off
    }

    /// Makes `stack` the running stack's state, and leaves the state of the
    /// stack that was running in `stack`: called by a stack switch just
    /// before it changes stacks, with the state of the stack it goes to.
    /// Pushes a deferred frame first, so none crosses stacks.
    pub(crate) fn switch_stack(&self, stack: &mut SuspendedStack) {
        self.push_deferred();
        // The deferred frame lends a pointer into the running stack: it
        // never crosses to another.
        debug_assert!(!self.stack.deferred.is_pending());
        let running = &self.stack;
        std::mem::swap(&mut *running.frames.borrow_mut(), &mut stack.frames);
        stack.info = running.info.replace(stack.info);
        thread_context::with(|cx| cx.stack.switch(&mut stack.context));
    }
}

#[cfg(test)]
mod tests {
    use super::SuspendedStack;
    use crate::sched::PollTarget;
    use crate::thread_context::Here;

    crate::task_local! {
        static NAME: &'static str;
    }

    /// A switch to a new stack leaves no trace of the running one (no
    /// frames, nothing polled, no task-local), and a switch back restores
    /// it all: what a stack switch (R12) relies on.
    #[test]
    fn a_switch_exchanges_the_running_stacks_frames_poll_record_and_task_local_mark() {
        // On the thread's own stack (a fiber would show the frames below
        // it in `frames()`).
        let ex = crate::Executor::builder().fibers(false).build();
        ex.block_on(NAME.scope("caller", async {
            let running = |depth| {
                assert_eq!(crate::depth(), depth);
                assert_eq!(crate::frames().len(), depth);
            };
            // Polled by its loop, not inline: the poll record is set.
            crate::yield_now().await;
            running(1);
            assert_eq!(NAME.get(), "caller");
            assert!(crate::sched::owner(Here::get()).is_some());
            assert!(matches!(crate::sched::poll_target(), PollTarget::Root(_)));

            let mut other = SuspendedStack::new();
            super::super::with(|ts| ts.switch_stack(&mut other));
            running(0);
            assert!(crate::sched::owner(Here::get()).is_none());
            assert_eq!(crate::sched::poll_target(), PollTarget::Nothing);
            assert!(NAME.try_with(|_| ()).is_err());
            // Scopes entered on the new stack stay there.
            assert_eq!(NAME.sync_scope("other", || NAME.get()), "other");
            assert!(NAME.try_with(|_| ()).is_err());

            super::super::with(|ts| ts.switch_stack(&mut other));
            assert_eq!(other.depth(), 0);
            running(1);
            assert_eq!(NAME.get(), "caller");
            assert!(crate::sched::owner(Here::get()).is_some());
            assert!(matches!(crate::sched::poll_target(), PollTarget::Root(_)));
        }));
    }
}
