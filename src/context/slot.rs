#![allow(unsafe_code)]
//! Where this thread's [`ThreadState`] lives: made on first use, pointed
//! at by the thread's context (`ThreadContext::state`, so every copy of
//! the build sharing the context finds the same one) and cached in each
//! copy's thread-local (`thread_context::cached_state`, one load on the
//! way of every call); shut down and freed at thread exit.
//!
//! Each copy that uses the state counts itself in `ThreadState::users` and
//! keeps the pointer in its `USER` thread-local, whose destructor, at
//! thread exit, shuts the state's executors down (while the state is still
//! reachable, so the destructors of tasks may use it), marks the copy's
//! cache `GONE` and gives its use up; the last use frees the state.
//!
//! Invariant: a copy's cached pointer and `ThreadContext::state` are null
//! (not known or made yet), `GONE`, or the pointer of a `Box<ThreadState>`
//! that `make` leaked, which is freed only by `User::drop` when
//! `ThreadState::users` falls to zero, after writing `GONE` to the context.
//! A copy caches the pointer only after counting itself a user and putting
//! the pointer in its `USER`, and writes `GONE` to its cache before giving
//! its use up. So a cached pointer that is
//! neither null nor `GONE` is that of a live `ThreadState` of this build's
//! layout (the copies sharing a context are of one build). Only this file
//! touches these fields; a `&ThreadState` made here lives only for the
//! closure of `try_with`, on the thread (a `ThreadState` is `!Send`).

use std::cell::Cell;

use super::ThreadState;
use crate::sync::thread_locals;
use crate::thread_context::{self, ThreadContext};

/// A state pointer once the state is gone: an address no state has (1; a
/// state's is above it).
const GONE: *const () = std::ptr::without_provenance(1);

thread_locals! {
    /// The state this copy uses, if it counts as a user of it; its
    /// destructor gives the use up (see the module docs).
    static USER: User = const { User(Cell::new(std::ptr::null())) };
}

/// This copy's use of the thread's state (see `USER`).
struct User(Cell<*const ThreadState>);

impl Drop for User {
    fn drop(&mut self) {
        let state = self.0.replace(std::ptr::null());
        if state.is_null() {
            return;
        }
        // SAFETY: this copy is still a user of it: live.
        let ts = unsafe { &*state };
        // Thread exit, while the state is still reachable: destructors of
        // the tasks' futures may use it (see `ThreadState::exit`).
        ts.exit();
        thread_context::set_cached_state(GONE);
        let users = ts.users.get() - 1;
        ts.users.set(users);
        if users == 0 {
            thread_context::try_with(|cx| cx.state.set(GONE));
            // SAFETY: the last use of a state `make` leaked; no cache and
            // no context points at it any more.
            drop(unsafe { Box::from_raw(state.cast_mut()) });
        }
    }
}

/// Runs `f` with this thread's state, made on first use; `None` once it
/// is gone (thread exit).
#[inline(always)]
pub(crate) fn try_with<R>(f: impl FnOnce(&ThreadState) -> R) -> Option<R> {
    let mut state = thread_context::cached_state()?;
    // One test on the way of every call: not known yet, or gone, go the
    // cold way.
    if state.addr() <= GONE.addr() {
        state = attach()?;
    }
    // SAFETY: neither null nor `GONE`: a live state (see the module docs),
    // borrowed for `f` only, on its thread.
    Some(f(unsafe { &*state.cast::<ThreadState>() }))
}

/// Runs `f` with this thread's state if it was made and is not gone;
/// never makes it.
pub(crate) fn try_with_made<R>(f: impl FnOnce(&ThreadState) -> R) -> Option<R> {
    let state = thread_context::try_with(|cx| cx.state.get())?;
    if state.addr() <= GONE.addr() {
        return None;
    }
    // SAFETY: read from the context, neither null nor `GONE`: a live state
    // (see the module docs), borrowed for `f` only, on its thread.
    Some(f(unsafe { &*state.cast::<ThreadState>() }))
}

/// Makes this copy a user of the thread's state (making the state if no
/// copy has) and caches its pointer; `None` once it is gone.
#[cold]
#[inline(never)]
fn attach() -> Option<*const ()> {
    if thread_context::cached_state()? == GONE {
        return None;
    }
    let state = thread_context::try_with(|cx| match cx.state.get() {
        state if state.is_null() => Some(make(cx)),
        GONE => None,
        state => Some(state),
    })??;
    // Counted before it is cached; if this copy's thread-locals are gone,
    // it is not used.
    USER.try_with(|user| user.0.set(state.cast())).ok()?;
    // SAFETY: just read from the context: live (see the module docs).
    let ts = unsafe { &*state.cast::<ThreadState>() };
    ts.users.set(ts.users.get() + 1);
    thread_context::set_cached_state(state);
    Some(state)
}

/// Makes the thread's state (no user yet) and points the context at it.
fn make(cx: &ThreadContext) -> *const () {
    let state = Box::into_raw(Box::new(ThreadState::new()))
        .cast_const()
        .cast::<()>();
    cx.state.set(state);
    state
}
