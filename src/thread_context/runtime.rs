#![allow(unsafe_code)]
//! tokio's runtime context entered per stack (feature `tokio`).
//!
//! tokio keeps "the current runtime" per thread, and its guards
//! (`Handle::enter`) must drop in the reverse order they were made on the
//! thread. Under R12 a task's stack is suspended with its polls in
//! progress, and other stacks enter and leave the context meanwhile. So a
//! poll does not hold tokio's guard on its own stack: it keeps it in the
//! running stack's list (`enter_runtime`), a fiber leaves the contexts of
//! its own stack before it suspends and enters them again when it is
//! resumed (`leave_runtimes`, `enter_runtimes`), and tokio sees one
//! strictly nested sequence of guards on the thread: the stacks it runs on
//! top of, then its own.
//!
//! An entry points at the handle its scope borrows, and keeps the guard
//! beside it: a poll pays tokio's `enter` and a push onto a vector that
//! keeps its capacity, no allocation and no clone of the handle. (A guard
//! in a box of its own with a clone of the handle, `self_cell`'s way, took
//! a yielding task's poll on a tokio executor from 35 to 73 ns; this way
//! it is 46 ns, 21 instructions more than a guard on the poll's stack.) Each entry carries its switch function, made by the
//! copy of the build that entered it (see the module docs of
//! `thread_context`): a loop of another copy leaves and enters it with
//! that copy's tokio.
//!
//! Invariant: an entry's `handle` points at the `Handle` that the
//! `RuntimeScope<'a>` which pushed it borrows for `'a`, and the entry
//! leaves the list when that scope drops (scopes of one stack end in the
//! order they began, checked in debug builds), so the pointer is valid for
//! as long as the entry exists, on whichever stack's list it sits. Its
//! `guard`, a borrow of that handle with the lifetime extended to
//! `'static`, is only made from that pointer while the entry exists, and
//! dropped before the entry is (by the scope, or by `switch` when the
//! stack is suspended). Entries are made, switched and dropped on their
//! thread only (`RuntimeScope` is not `Send`, and the lists are in the
//! thread's context).

use std::cell::RefCell;
use std::marker::PhantomData;

use tokio::runtime::{EnterGuard, Handle};

use super::{Here, with};

/// One runtime context of a stack's list (see the module docs).
pub(crate) struct RuntimeEntry {
    /// The handle its scope borrows.
    handle: *const Handle,
    /// tokio's guard while the context is in force (`None` while the
    /// stack is suspended).
    guard: Option<EnterGuard<'static>>,
    /// Leaves (`false`) or enters (`true`) the context, with the tokio of
    /// the copy that made the entry.
    switch: fn(&mut RuntimeEntry, bool),
}

impl std::fmt::Debug for RuntimeEntry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RuntimeEntry")
            .field("entered", &self.guard.is_some())
            .finish()
    }
}

/// Enters `handle`'s context, for an entry that points at it.
///
/// # Safety
///
/// `handle` is valid for as long as the guard is kept (see the module
/// docs).
unsafe fn enter(handle: *const Handle) -> EnterGuard<'static> {
    // SAFETY: the caller keeps `handle` valid while the guard lives; the
    // guard's lifetime only records that borrow.
    unsafe { std::mem::transmute::<EnterGuard<'_>, EnterGuard<'static>>((*handle).enter()) }
}

/// Leaves or enters `entry`'s context. Enters nothing once tokio's
/// thread-local is gone (a stack resumed to be unwound as its thread
/// exits), where `Handle::enter` would panic.
fn switch(entry: &mut RuntimeEntry, enter_it: bool) {
    if !enter_it {
        entry.guard = None;
    } else if entry.guard.is_none() && !tokio_context_destroyed() {
        // SAFETY: the entry exists, so its handle is valid, and the guard
        // is dropped before the entry (module invariant).
        entry.guard = Some(unsafe { enter(entry.handle) });
    }
}

/// Whether tokio's thread-local context is gone (the thread is exiting).
fn tokio_context_destroyed() -> bool {
    Handle::try_current().is_err_and(|e| e.is_thread_local_destroyed())
}

/// Enters `handle`'s runtime context on the running stack until the scope
/// drops: code polled meanwhile can use `tokio::net`, `tokio::time` and
/// `tokio::spawn`, and the stack may still be suspended (R12).
pub(crate) fn enter_runtime(handle: &Handle) -> RuntimeScope<'_> {
    enter_runtime_here(Here::get(), handle)
}

/// `enter_runtime` on the thread `here` (the calling one), without a
/// thread-local lookup: what a poll of an executor's task does.
#[inline]
pub(crate) fn enter_runtime_here(here: Here, handle: &Handle) -> RuntimeScope<'_> {
    let handle: *const Handle = handle;
    let entry = RuntimeEntry {
        handle,
        // SAFETY: the scope returned borrows the handle, and its drop
        // removes the entry, guard first (module invariant).
        guard: Some(unsafe { enter(handle) }),
        switch,
    };
    let mut runtimes = here.context().stack.runtimes.borrow_mut();
    runtimes.push(entry);
    RuntimeScope {
        here,
        index: runtimes.len() - 1,
        _handle: PhantomData,
    }
}

/// Leaves a context `enter_runtime` entered, and borrows its handle until
/// then; scopes of one stack end in the order they began, as a stack's
/// frames do.
#[derive(Debug)]
pub(crate) struct RuntimeScope<'a> {
    /// Its thread's context (the scope is not `Send`).
    here: Here,
    /// The entry's place in its stack's list.
    index: usize,
    /// The handle the entry points at.
    _handle: PhantomData<&'a Handle>,
}

impl Drop for RuntimeScope<'_> {
    fn drop(&mut self) {
        let mut runtimes = self.here.context().stack.runtimes.borrow_mut();
        debug_assert_eq!(
            runtimes.len(),
            self.index + 1,
            "nestloop: internal error: a runtime scope ended out of order on its stack"
        );
        let entry = runtimes.pop();
        drop(runtimes);
        // tokio's guard drops outside the borrow.
        drop(entry);
    }
}

/// Leaves the runtime contexts of the running stack, innermost first,
/// before the stack is suspended.
pub(super) fn leave_runtimes() {
    with(|cx| switch_all(&cx.stack.runtimes, false));
}

/// Enters again what `leave_runtimes` left, outermost first, when the
/// stack is resumed.
pub(super) fn enter_runtimes() {
    with(|cx| switch_all(&cx.stack.runtimes, true));
}

/// Switches every entry of `runtimes`, in the order tokio requires.
fn switch_all(runtimes: &RefCell<Vec<RuntimeEntry>>, enter_them: bool) {
    let mut runtimes = runtimes.borrow_mut();
    let switch_one = |entry: &mut RuntimeEntry| (entry.switch)(entry, enter_them);
    if enter_them {
        runtimes.iter_mut().for_each(switch_one);
    } else {
        runtimes.iter_mut().rev().for_each(switch_one);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A runtime with no drivers: only its context is used.
    fn runtime() -> tokio::runtime::Runtime {
        tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap()
    }

    /// Nested scopes keep tokio's context; leaving the running stack's
    /// contexts (as a suspend does) leaves none in force, and entering
    /// them again restores the innermost, so the scopes then end in
    /// tokio's order without its "dropped out of order" panic.
    #[test]
    fn a_stack_leaves_and_enters_its_runtime_contexts_in_order() {
        let (outer, inner) = (runtime(), runtime());
        let current = || Handle::try_current().ok().map(|h| h.id());
        let outer_scope = enter_runtime(outer.handle());
        let inner_scope = enter_runtime(inner.handle());
        assert_eq!(current(), Some(inner.handle().id()));
        leave_runtimes();
        assert_eq!(current(), None);
        // Another stack's scope meanwhile, begun and ended.
        drop(enter_runtime(outer.handle()));
        enter_runtimes();
        assert_eq!(current(), Some(inner.handle().id()));
        drop(inner_scope);
        assert_eq!(current(), Some(outer.handle().id()));
        drop(outer_scope);
        assert_eq!(current(), None);
    }
}
