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

// The stack switch of R12 (the fiber layer) is what calls `switch_stack`;
// until it lands, only the tests here do.
#![cfg_attr(not(test), allow(dead_code))]

use std::cell::RefCell;

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
}

impl StackState {
    /// A stack with no loop on it.
    pub(super) fn new() -> Self {
        StackState {
            frames: RefCell::new(Vec::new()),
            deferred: DeferredFrame::new(),
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
    frames: Vec<Frame>,
}

impl SuspendedStack {
    /// The state of a stack that has run nothing yet.
    pub(crate) fn new() -> Self {
        SuspendedStack {
            context: SavedStackContext::new(task_local::new_mark()),
            frames: Vec::new(),
        }
    }

    /// How many loops run on the stack.
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
    /// Makes `stack` the running stack's state, and leaves the state of the
    /// stack that was running in `stack`: called by a stack switch just
    /// before it changes stacks, with the state of the stack it goes to.
    /// Pushes a deferred frame first, so none crosses stacks.
    pub(crate) fn switch_stack(&self, stack: &mut SuspendedStack) {
        self.push_deferred();
        std::mem::swap(&mut *self.stack.frames.borrow_mut(), &mut stack.frames);
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
        crate::block_on(NAME.scope("caller", async {
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
