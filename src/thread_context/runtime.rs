//! tokio's runtime context entered per stack (feature `tokio`).
//!
//! tokio keeps "the current runtime" per thread, and its guards
//! (`Handle::enter`) must drop in the reverse order they were made on the
//! thread. Under R12 a task's stack is suspended with its polls in
//! progress, and other stacks enter and leave the context meanwhile. So a
//! poll does not hold tokio's guard on its own stack: it notes the handle
//! in the running stack's list (`enter_runtime`), a fiber leaves the
//! contexts of its own stack before it suspends and enters them again when
//! it is resumed (`leave_runtimes`, `enter_runtimes`), and tokio sees one
//! strictly nested sequence of guards on the thread: the stacks it runs on
//! top of, then its own.
//!
//! Each entry carries its switch function, made by the copy of the build
//! that entered it (see the module docs of `thread_context`): a loop of
//! another copy leaves and enters it with that copy's tokio.

use std::cell::RefCell;
use std::marker::PhantomData;

use tokio::runtime::{EnterGuard, Handle};

use super::{try_with, with};

/// `EnterGuard` as a type of its lifetime, for `self_cell`.
type EnterGuardOf<'a> = EnterGuard<'a>;

self_cell::self_cell!(
    /// tokio's runtime context, entered with a handle this cell owns.
    struct Entered {
        owner: Handle,
        #[covariant]
        dependent: EnterGuardOf,
    }
);

/// A runtime context entered on a stack: in force while the stack runs,
/// left while it is suspended.
enum State {
    /// In force.
    Entered(Entered),
    /// Left (its stack is suspended).
    Left(Handle),
    /// Between the two, only inside `switch`.
    Moving,
}

/// One runtime context of a stack's list (see the module docs).
pub(crate) struct RuntimeEntry {
    state: State,
    /// Leaves (`false`) or enters (`true`) the context, with the tokio of
    /// the copy that made the entry.
    switch: fn(&mut State, bool),
}

impl std::fmt::Debug for RuntimeEntry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let state = match self.state {
            State::Entered(_) => "entered",
            State::Left(_) => "left",
            State::Moving => "moving",
        };
        f.debug_struct("RuntimeEntry")
            .field("state", &state)
            .finish()
    }
}

/// Leaves or enters `state`'s context. Enters nothing once tokio's
/// thread-local is gone (a stack resumed to be unwound as its thread
/// exits), where `Handle::enter` would panic.
fn switch(state: &mut State, enter: bool) {
    *state = match std::mem::replace(state, State::Moving) {
        State::Entered(entered) if !enter => State::Left(entered.into_owner()),
        State::Left(handle) if enter && !tokio_context_destroyed() => {
            State::Entered(Entered::new(handle, |h| h.enter()))
        }
        other => other,
    };
}

/// Whether tokio's thread-local context is gone (the thread is exiting).
fn tokio_context_destroyed() -> bool {
    Handle::try_current().is_err_and(|e| e.is_thread_local_destroyed())
}

/// Enters `handle`'s runtime context on the running stack until the scope
/// drops: code polled meanwhile can use `tokio::net`, `tokio::time` and
/// `tokio::spawn`, and the stack may still be suspended (R12).
pub(crate) fn enter_runtime(handle: &Handle) -> RuntimeScope {
    let entry = RuntimeEntry {
        state: State::Entered(Entered::new(handle.clone(), |h| h.enter())),
        switch,
    };
    let index = with(|cx| {
        let mut runtimes = cx.stack.runtimes.borrow_mut();
        runtimes.push(entry);
        runtimes.len() - 1
    });
    RuntimeScope {
        index,
        _not_send: PhantomData,
    }
}

/// Leaves a context `enter_runtime` entered; scopes of one stack end in
/// the order they began, as a stack's frames do.
#[derive(Debug)]
pub(crate) struct RuntimeScope {
    /// The entry's place in its stack's list.
    index: usize,
    _not_send: PhantomData<*const ()>,
}

impl Drop for RuntimeScope {
    fn drop(&mut self) {
        let entry = try_with(|cx| {
            let mut runtimes = cx.stack.runtimes.borrow_mut();
            debug_assert_eq!(
                runtimes.len(),
                self.index + 1,
                "nestloop: internal error: a runtime scope ended out of order on its stack"
            );
            runtimes.pop()
        });
        // tokio's guard drops outside the borrow.
        drop(entry);
    }
}

/// Leaves the runtime contexts of the running stack, innermost first,
/// before the stack is suspended.
pub(crate) fn leave_runtimes() {
    with(|cx| switch_all(&cx.stack.runtimes, false));
}

/// Enters again what `leave_runtimes` left, outermost first, when the
/// stack is resumed.
pub(crate) fn enter_runtimes() {
    with(|cx| switch_all(&cx.stack.runtimes, true));
}

/// Switches every entry of `runtimes`, in the order tokio requires.
fn switch_all(runtimes: &RefCell<Vec<RuntimeEntry>>, enter: bool) {
    let mut runtimes = runtimes.borrow_mut();
    let switch_one = |entry: &mut RuntimeEntry| (entry.switch)(&mut entry.state, enter);
    if enter {
        runtimes.iter_mut().for_each(switch_one);
    } else {
        runtimes.iter_mut().rev().for_each(switch_one);
    }
}
