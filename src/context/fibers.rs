//! The thread's fibers (R12): each runs a loop, and becomes the suspended
//! stack of a blocked `block_on` call when one on it waits. They are kept
//! here by id while they are not running, with their stack state (frames,
//! poll record, task-local mark), which [`ThreadState::resume_fiber`]
//! makes the running one for as long as the fiber runs: the one place
//! where the thread changes stacks.

use std::cell::RefCell;
use std::panic::{AssertUnwindSafe, catch_unwind, resume_unwind};
use std::rc::Rc;

use slab::Slab;

use super::stack::SuspendedStack;
use super::{BlockOnState, ThreadState};
use crate::fiber::{Fiber, Outcome, Resume, StackPool};
use crate::sched::Interrupted;
use crate::sync::Arc;

/// What a fiber's loop comes to (see `run_loop::drive`).
pub(crate) type LoopResult = Result<usize, Interrupted>;

/// A fiber that is not running, and its stack state.
struct Parked {
    fiber: Fiber<LoopResult>,
    stack: SuspendedStack,
    /// The future of the call suspended in it (see `fiber_waits_for`).
    waits: Option<Rc<BlockOnState>>,
    /// When it last suspended (a count of suspensions on the thread).
    since: u64,
}

/// The thread's fibers and their stacks; part of `ThreadState`.
#[derive(Default)]
pub(crate) struct Fibers {
    /// By id; `None` while the fiber runs (its resumer holds it).
    slots: RefCell<Slab<Option<Parked>>>,
    /// Stacks for the next fibers.
    pool: StackPool,
    /// The future the running fiber is about to suspend for (see
    /// `fiber_waits_for`).
    suspending_for: RefCell<Option<Rc<BlockOnState>>>,
    /// Suspensions so far (see `Parked::since`).
    suspensions: std::cell::Cell<u64>,
    /// The state of the stacks that resumed the running fiber, first the
    /// thread's own: kept here while it runs, so checks that look at the
    /// whole thread (R9's "an interrupt may still come") see their frames.
    pub(super) below: RefCell<Vec<SuspendedStack>>,
}

impl std::fmt::Debug for Fibers {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Fibers")
            .field("fibers", &self.slots.borrow().len())
            .finish_non_exhaustive()
    }
}

impl ThreadState {
    /// A new fiber that runs `body` on a stack of `stack_size` bytes when
    /// first resumed, below the loops running now (its `depth()` starts
    /// there). Returns its id.
    pub(crate) fn new_fiber(
        &self,
        stack_size: usize,
        body: impl FnOnce(Resume) -> LoopResult + 'static,
    ) -> usize {
        let fiber = Fiber::new(&self.fibers.pool, stack_size, body);
        let mut stack = SuspendedStack::new();
        stack.info.base = self.depth();
        stack.info.limit = fiber.stack_limit();
        let mut slots = self.fibers.slots.borrow_mut();
        let id = slots.insert(None);
        stack.info.fiber = Some(id);
        slots[id] = Some(Parked {
            fiber,
            stack,
            waits: None,
            since: 0,
        });
        id
    }

    /// Notes that the running fiber suspends until `state`'s future is
    /// woken (for R9's look at the suspended fibers).
    pub(crate) fn fiber_waits_for(&self, state: Rc<BlockOnState>) {
        *self.fibers.suspending_for.borrow_mut() = Some(state);
    }

    /// R9 with suspended fibers: whether none of them can ever be resumed
    /// again, given that no task of the thread can be woken and no timer
    /// is pending. One is stuck when its future is not woken, every clone
    /// of that future's waker sits in the `JoinHandle` of a task (counted by
    /// `awaited`), and its task is referenced by nothing else (no waker, no
    /// `AbortHandle`). Anything else may resume it: not stuck.
    pub(crate) fn suspended_fibers_stuck(&self, awaited: impl Fn(&BlockOnState) -> usize) -> bool {
        let slots = self.fibers.slots.borrow();
        slots.iter().all(|(_, slot)| {
            let Some(parked) = slot else {
                return true; // running: not suspended
            };
            let Some(state) = &parked.waits else {
                return false;
            };
            let clones = Arc::strong_count(&state.wake) - 2;
            !state.wake.is_woken()
                && parked.stack.task_referenced_elsewhere() == Some(false)
                && clones == awaited(state)
        })
    }

    /// Runs fiber `id` with its stack state until it suspends itself again
    /// (it stays here) or finishes (its stack goes back to the pool).
    /// `None` when it is not here: running now (further down), or gone. A
    /// panic that ends the fiber unwinds out of this call.
    pub(crate) fn resume_fiber(&self, id: usize, input: Resume) -> Option<Outcome<LoopResult>> {
        let Parked {
            mut fiber,
            mut stack,
            ..
        } = self.fibers.slots.borrow_mut().get_mut(id)?.take()?;
        #[cfg(debug_assertions)]
        let resumer = crate::thread_context::with(|cx| cx.stack.fiber.get());
        // A fiber runs inside some call of the thread's own stack, which may
        // use the outermost call's state without a clone (its first poll):
        // held here, so no call on the fiber takes it too
        // (`outermost_state`).
        let _in_use = self
            .fibers
            .below
            .borrow()
            .is_empty()
            .then(|| Rc::clone(&self.outermost_state));
        self.switch_stack(&mut stack);
        #[cfg(feature = "glib")]
        crate::thread_context::note_glib_base();
        self.fibers.below.borrow_mut().push(stack);
        let outcome = catch_unwind(AssertUnwindSafe(|| fiber.resume(input)));
        let popped = self.fibers.below.borrow_mut().pop();
        let mut stack =
            popped.expect("nestloop: internal error: a resumer's stack state went missing");
        self.switch_stack(&mut stack);
        // Back on the resumer's stack, with its state: nothing of the
        // fiber's (which may be suspended now) is left in the thread's.
        #[cfg(debug_assertions)]
        debug_assert!(
            crate::thread_context::with(|cx| cx.stack.fiber.get()) == resumer
                && self.current_fiber() != Some(id),
            "nestloop: internal error: the thread's state points into a suspended fiber"
        );
        let mut slots = self.fibers.slots.borrow_mut();
        match outcome {
            Ok(Outcome::Suspended(why)) => {
                let waits = self.fibers.suspending_for.borrow_mut().take();
                let since = self.fibers.suspensions.get() + 1;
                self.fibers.suspensions.set(since);
                slots[id] = Some(Parked {
                    fiber,
                    stack,
                    waits,
                    since,
                });
                Some(Outcome::Suspended(why))
            }
            Ok(finished) => {
                slots.remove(id);
                drop(slots);
                fiber.recycle(&self.fibers.pool);
                Some(finished)
            }
            Err(payload) => {
                slots.remove(id);
                drop(slots);
                drop(fiber); // finished by the panic
                resume_unwind(payload)
            }
        }
    }

    /// Tells the call suspended last of those waiting in fibers that it can
    /// never finish (R9, after `suspended_fibers_stuck`): it panics, and
    /// the panic goes to its task. Returns whether there was one.
    pub(crate) fn report_newest_stuck_fiber(&self) -> bool {
        let newest = {
            let slots = self.fibers.slots.borrow();
            slots
                .iter()
                .filter_map(|(id, slot)| Some((slot.as_ref()?.since, id)))
                .max()
                .map(|(_, id)| id)
        };
        newest.is_some_and(|id| self.resume_fiber(id, Resume::Deadlock).is_some())
    }

    /// Runs `f` with every frame of the thread's loops the running code is
    /// nested in, outermost first: on a fiber, those of the stacks that
    /// resumed it (`below`), then its own.
    pub(super) fn with_all_frames<R>(
        &self,
        f: impl FnOnce(&mut dyn Iterator<Item = &super::Frame>) -> R,
    ) -> R {
        let below = self.fibers.below.borrow();
        let own = self.frames();
        f(&mut below
            .iter()
            .flat_map(|stack| stack.frames.iter())
            .chain(own.iter()))
    }

    /// How many fibers are suspended (blocked calls, R12).
    pub(crate) fn suspended_fibers(&self) -> usize {
        let slots = self.fibers.slots.borrow();
        slots.iter().filter(|(_, slot)| slot.is_some()).count()
    }

    /// The ids of the suspended fibers whose stack state `picked` picks.
    fn suspended_fibers_where(&self, picked: &impl Fn(&SuspendedStack) -> bool) -> Vec<usize> {
        let slots = self.fibers.slots.borrow();
        slots
            .iter()
            .filter(|(_, slot)| slot.as_ref().is_some_and(|p| picked(&p.stack)))
            .map(|(id, _)| id)
            .collect()
    }

    /// Ends the suspended fibers whose blocked call is in a poll of a task
    /// that was aborted (R5), as `cancel_fibers` does.
    pub(crate) fn cancel_aborted_fibers(&self) {
        self.cancel_fibers_where(SuspendedStack::task_aborted);
    }

    /// Ends every suspended fiber that `owned` picks (by the address of
    /// the executor whose poll it holds) by unwinding its stack: the task
    /// whose poll is on it is cancelled and its destructors run (R5). A
    /// fiber whose code catches the unwind and waits again is unwound
    /// again, a few times, then left (it ends with the thread). Nothing
    /// while the thread panics: a stack is never switched during an
    /// unwind.
    pub(crate) fn cancel_fibers(&self, owned: impl Fn(*const ()) -> bool) {
        self.cancel_fibers_where(|stack| owned(stack.polled_owner()));
    }

    /// `cancel_fibers` for the fibers whose stack state `picked` picks.
    fn cancel_fibers_where(&self, picked: impl Fn(&SuspendedStack) -> bool) {
        if std::thread::panicking() {
            return;
        }
        for _ in 0..CANCEL_TRIES {
            let ids = self.suspended_fibers_where(&picked);
            if ids.is_empty() {
                return;
            }
            for id in ids {
                let _ = self.resume_fiber(id, Resume::Cancel);
            }
        }
    }
}

/// How many times `cancel_fibers` unwinds a fiber that keeps waiting.
const CANCEL_TRIES: usize = 3;

/// `sched`'s hook for an executor's shutdown (see
/// `ThreadQueue::set_on_shutdown`): ends the suspended fibers of the
/// executor at `owner` first, so its tasks blocked in them are cancelled
/// with the others.
pub(super) fn cancel_fibers_of(owner: *const ()) {
    super::slot::try_with_made(|ts| ts.cancel_fibers(|o| o == owner));
}
