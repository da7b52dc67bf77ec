#![allow(unsafe_code)]
//! What is being polled on this thread right now, and by which executor:
//! the thread-local record that every poll of a task or `block_on` future
//! sets for its duration ([`PollScope`]). `Executor::current` reads the
//! owner; diagnostics read the target ([`poll_target`]).
//!
//! The target is one word, so a poll pays one more store and restore than
//! the owner alone: a task's header pointer (low bit 0), or the `&'static`
//! location of a `block_on` call (low bit 1; both are 8-aligned), or null.
//!
//! The record belongs to the stack that runs now: it lives in the thread's
//! context (`StackContext::polled_owner` and `polled_target`), which only
//! this file reads or writes, and a stack switch exchanges it with the
//! suspended stack's (`context/stack.rs`).
//!
//! Invariant: a task pointer in the record's target points at a live task,
//! and the record's owner is null or the `Inner` of an `Rc<Inner>` whose
//! strong count stays above zero while it is recorded: the scopes are made
//! from an `&Inner` borrowed out of an `Rc` that the caller keeps for the
//! scope's life (a loop holds the `Rc` of the executor whose task it
//! polls; `block_on` holds its `Executor`).
//! Only `Inner::enter_poll_task` stores one, from a `&'a Header` whose
//! borrow the `PollScope<'a>` it returns holds, and the scope's guard puts
//! the previous value back when it drops. Scopes are locals of the calls
//! that poll (never leaked, never dropped out of order), so they end in the
//! reverse order they began, on their thread: a value put back belongs to a
//! scope still alive further down the stack. Upheld here: the record's
//! fields are touched only by this file, and the guards and their fields
//! are private to it.

use std::cell::Cell;
use std::marker::PhantomData;
use std::panic::Location;
use std::ptr::NonNull;
use std::rc::Rc;

use super::Inner;
use crate::task::Origin;
use crate::task::cell::Header;
use crate::thread_context::{self, Here, ThreadContext};

/// The record: the executor owning the task or `block_on` future being
/// polled (null outside any poll), and that task or future (see the module
/// docs).
fn record(cx: &ThreadContext) -> (&Cell<*const ()>, &Cell<*const ()>) {
    (&cx.stack.polled_owner, &cx.stack.polled_target)
}

/// The low bit of a target that is a `block_on` call's location.
const BLOCK_ON_TAG: usize = 1;

/// The executor owning the task or future being polled right now on the
/// thread of `here` (`None` outside any poll).
pub(crate) fn owner(here: Here) -> Option<Rc<Inner>> {
    let owner = record(here.context()).0.get().cast::<Inner>();
    if owner.is_null() {
        return None;
    }
    // SAFETY: a recorded owner is a live `Inner`, borrowed by the scope
    // that recorded it for as long as it is recorded (see the module
    // docs); this borrow ends within this call, on the thread.
    let owner = unsafe { &*owner };
    // Counted through its own way back (`local.rs`), whose pointer is the
    // one its `Rc` gave (the recorded one is an `&Inner`'s).
    owner.to_rc()
}

/// What a loop polls.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum PollTarget {
    /// Nothing.
    Nothing,
    /// A task.
    Task(Origin),
    /// The future of the `block_on` called there.
    Root(&'static Location<'static>),
}

/// The task or `block_on` future being polled right now.
pub(crate) fn poll_target() -> PollTarget {
    let target = thread_context::with(|cx| record(cx).1.get());
    if target.is_null() {
        PollTarget::Nothing
    } else if target.addr() & BLOCK_ON_TAG != 0 {
        let location = target
            .map_addr(|a| a & !BLOCK_ON_TAG)
            .cast::<Location<'static>>();
        // SAFETY: a tagged target was made from a `&'static Location` by
        // `enter_poll_block_on`.
        PollTarget::Root(unsafe { &*location })
    } else {
        // SAFETY: an untagged target is a task's header, alive while it is
        // recorded (see the invariant).
        PollTarget::Task(unsafe { (*target.cast::<Header>()).origin })
    }
}

/// Whether `target`, a poll record's target saved with a suspended stack
/// (R12), is a task whose abort was requested.
pub(crate) fn target_aborted(target: *const ()) -> bool {
    if target.is_null() || target.addr() & BLOCK_ON_TAG != 0 {
        return false;
    }
    // SAFETY: an untagged target is a task's header, alive while it is
    // recorded (see the invariant): a saved record is one whose poll is
    // suspended, not ended, and that poll holds a reference to the task.
    unsafe { (*target.cast::<Header>()).abort_requested() }
}

/// For `target`, a poll record's target saved with a suspended stack (R12):
/// whether it is a task referenced beyond its list, its `JoinHandle` and
/// that poll (see `Header::referenced_elsewhere_while_suspended`); `None`
/// when it is not a task's poll.
pub(crate) fn target_referenced_elsewhere(target: *const ()) -> Option<bool> {
    if target.is_null() || target.addr() & BLOCK_ON_TAG != 0 {
        return None;
    }
    // SAFETY: as in `target_aborted`.
    Some(unsafe { (*target.cast::<Header>()).referenced_elsewhere_while_suspended() })
}

/// Restores the previous owner (see `Inner::enter_owner`).
#[derive(Debug)]
pub(crate) struct OwnerGuard {
    /// The owner when the guard was made (null outside any poll).
    previous: *const Inner,
    /// The thread's context (the executor's).
    here: Here,
}

impl Drop for OwnerGuard {
    #[inline]
    fn drop(&mut self) {
        record(self.here.context()).0.set(self.previous.cast());
    }
}

/// What a poll of an executor's task or future runs inside (see
/// `Inner::enter_poll_task`); for the lifetime of the task's header borrow.
pub(crate) struct PollScope<'a> {
    /// Puts the record back.
    _polled: PolledGuard<'a>,
    /// The runtime context (feature `tokio`).
    _context: PollContext<'a>,
}

/// Restores the previous owner and target.
struct PolledGuard<'a> {
    /// The thread's context (the executor's).
    here: Here,
    /// The owner when the guard was made.
    owner: *const Inner,
    /// The target when the guard was made.
    target: *const (),
    /// The target it recorded, which must be the recorded one when it drops
    /// (its own poll's, on its own stack).
    #[cfg(debug_assertions)]
    own: *const (),
    /// The task header borrowed while the guard lives.
    _task: PhantomData<&'a Header>,
}

impl Drop for PolledGuard<'_> {
    #[inline]
    fn drop(&mut self) {
        let (owner, target) = record(self.here.context());
        owner.set(self.owner.cast());
        let recorded = target.replace(self.target);
        #[cfg(debug_assertions)]
        debug_assert_eq!(
            recorded, self.own,
            "nestloop: internal error: a poll's record ended on another poll"
        );
        let _ = recorded;
    }
}

/// Keeps a runtime context entered while an executor's task or future is
/// polled (feature `tokio`); nothing otherwise. The context follows the
/// poll's stack when a `block_on` inside suspends it (R12, see
/// `thread_context::enter_runtime`).
#[cfg(feature = "tokio")]
pub(crate) type PollContext<'a> = Option<crate::thread_context::RuntimeScope<'a>>;
#[cfg(not(feature = "tokio"))]
pub(crate) type PollContext<'a> = PhantomData<&'a ()>;

impl Inner {
    /// Marks this executor as the owner of what is polled until the guard
    /// drops (`Executor::current`).
    #[inline]
    pub(crate) fn enter_owner(&self) -> OwnerGuard {
        let here = self.here;
        OwnerGuard {
            previous: record(here.context())
                .0
                .replace((self as *const Inner).cast())
                .cast(),
            here,
        }
    }

    /// Enters the scope of a poll of this executor's task, whose header is
    /// `task`: the owner (as `enter_owner` does), the task as what is
    /// polled, and with feature `tokio` the runtime context.
    #[inline]
    pub(crate) fn enter_poll_task<'a>(&'a self, task: &'a Header) -> PollScope<'a> {
        self.enter_poll(NonNull::from(task).as_ptr().cast_const().cast())
    }

    /// `enter_poll_task` for the future of the `block_on` called at
    /// `location`.
    #[inline]
    pub(crate) fn enter_poll_block_on(
        &self,
        location: &'static Location<'static>,
    ) -> PollScope<'_> {
        let location: *const Location<'static> = location;
        self.enter_poll(location.map_addr(|a| a | BLOCK_ON_TAG).cast())
    }

    /// See `enter_poll_task`.
    #[inline]
    fn enter_poll<'a>(&'a self, target: *const ()) -> PollScope<'a> {
        let here = self.here;
        let (owner, previous_target) = record(here.context());
        let owner = owner.replace((self as *const Inner).cast()).cast::<Inner>();
        let previous = previous_target.replace(target);
        PollScope {
            _polled: PolledGuard {
                here,
                owner,
                target: previous,
                #[cfg(debug_assertions)]
                own: target,
                _task: PhantomData,
            },
            _context: self.poll_context(),
        }
    }
}
