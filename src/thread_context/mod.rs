#![allow(unsafe_code)]
//! The thread-local pointer to this thread's [`ThreadContext`], which holds
//! everything nestloop keeps per thread, directly (the thread's key, what
//! is being polled, the task-local marks) or through its state pointer
//! (the frame stack, timers and executors of the `context` layer above).
//! The only other thread-locals are each copy's use of that state
//! (`context/slot.rs`) and the reactors' flags about their own
//! thread-locals.
//!
//! Copies of the same nestloop build loaded into one process (each evcxr
//! notebook cell links its own, and so does each plugin built as a
//! `cdylib`) share one context per thread: a copy's first lookup on a
//! thread asks the process's hub (`hub.rs`) for the context of the copy
//! that created the hub, so a task spawned by one copy runs under another
//! copy's loop, and its timers and handles work anywhere. Copies of other
//! builds find no hub of theirs and keep contexts of their own.
//!
//! Invariant: a copy's `CURRENT.context` is null or points at the `BASE`
//! of a copy of this build on the calling thread (its own, or the hub
//! creator's). `BASE` is const-initialised and has no destructor, so it
//! lives, and stays readable, for as long as its thread runs (and its
//! shared object stays loaded: copies are never unloaded while in use, as
//! evcxr keeps every cell loaded). Only `resolve` writes `CURRENT.context`,
//! with a pointer it got from `own_base` of this copy or of the hub
//! creator on this thread. A `ThreadContext` is `!Sync` (its fields are
//! `Cell`s); a `&` to it never leaves the closures of `with` and
//! `try_with`, and a [`Here`], which holds its pointer, is `!Send`, so it
//! is used on its own thread only, while that thread runs.

use std::cell::Cell;

use crate::sync::thread_locals;

mod builds;
mod hub;
#[cfg(feature = "tokio")]
mod runtime;
mod stack;

pub(crate) use builds::other_builds_waiting_here;
pub(crate) use hub::next_executor_id;
#[cfg(feature = "tokio")]
pub(crate) use runtime::{RuntimeScope, enter_runtime, enter_runtime_here};
#[cfg(feature = "tracing")]
pub(crate) use stack::note_span;
pub(crate) use stack::{SavedStackContext, StackContext, leave_scopes};
#[cfg(feature = "glib")]
pub(crate) use stack::{in_glib_dispatch, note_glib_base};

/// Lists this build in the process's list of builds (once), with
/// `waiting_here`, which counts the tasks and timers of this build waiting
/// on the calling thread, for the loops of other builds to ask.
pub(crate) fn register_build(waiting_here: fn() -> usize) {
    builds::register(hub::fingerprint(), waiting_here);
}

/// What nestloop keeps per thread; one per thread, shared by the copies of
/// a build loaded into the process (see the module docs).
///
/// The layers reach their own fields: `sched::polled` the poll record,
/// `task_local` the marks, `reactor::tokio` the runtime flag,
/// `context` the state pointer. Only those modules write them.
#[derive(Debug)]
pub(crate) struct ThreadContext {
    /// This thread's key (see `key`); assigned when a copy first reaches
    /// the context.
    key: Cell<u64>,
    /// What belongs to the stack that runs now (see `StackContext`).
    pub(crate) stack: StackContext,
    /// `task_local`: the last mark handed out (marks are unique per
    /// thread, whichever stack they are used on).
    pub(crate) mark_last: Cell<u64>,
    /// `reactor::tokio`: the thread is inside a runtime's `block_on` for
    /// a park or a turn.
    #[cfg(feature = "tokio")]
    pub(crate) in_tokio_runtime: Cell<bool>,
    /// `context`: this thread's `ThreadState`, type-erased (this layer
    /// cannot name it); null before it is made, `context`'s sentinel once
    /// it is gone.
    pub(crate) state: Cell<*const ()>,
    /// The next task id this thread hands out (see `next_task_id`).
    next_task_id: Cell<u64>,
    /// The end of the block of ids `next_task_id` hands out.
    task_ids_end: Cell<u64>,
}

impl ThreadContext {
    /// The context of a thread that has run no nestloop code yet.
    const fn new() -> Self {
        ThreadContext {
            key: Cell::new(0),
            stack: StackContext::new(),
            mark_last: Cell::new(0),
            #[cfg(feature = "tokio")]
            in_tokio_runtime: Cell::new(false),
            state: Cell::new(std::ptr::null()),
            next_task_id: Cell::new(0),
            task_ids_end: Cell::new(0),
        }
    }

    /// A number unique to this thread for the life of the process (and the
    /// same in every copy of the build that shares the context): the
    /// identity behind every "is this the executor's thread?" check.
    /// Unlike a `ThreadId`, never reused by another thread.
    #[inline]
    pub(crate) fn key(&self) -> u64 {
        // Assigned by `resolve`, before any copy could reach the context.
        self.key.get()
    }
}

/// This copy's way to the thread's context: two words in one
/// thread-local.
struct Current {
    /// The thread's context (null until the first lookup on the thread,
    /// see `resolve`).
    context: Cell<*const ThreadContext>,
    /// `context`'s copy of the state pointer, kept by the `context` layer
    /// (see `cached_state`): the loops reach their state in one load.
    state: Cell<*const ()>,
}

/// Task ids a thread takes from the process-wide count at a time.
const TASK_ID_BLOCK: u64 = 1024;

/// A fresh task id (never 0), unique in the process: from the calling
/// thread's block, so a spawn costs no atomic operation; a thread takes a
/// new block of `TASK_ID_BLOCK` from the hub when it runs out. Ids of one
/// thread grow with every spawn.
#[inline]
pub(crate) fn next_task_id() -> u64 {
    with(|cx| {
        let id = cx.next_task_id.get();
        if id < cx.task_ids_end.get() {
            cx.next_task_id.set(id + 1);
            return id;
        }
        let first = hub::take_task_ids(TASK_ID_BLOCK);
        cx.next_task_id.set(first + 1);
        cx.task_ids_end.set(first + TASK_ID_BLOCK);
        first
    })
}

thread_locals! {
    /// This copy's way to the thread's context (see `Current`).
    static CURRENT: Current = const {
        Current {
            context: Cell::new(std::ptr::null()),
            state: Cell::new(std::ptr::null()),
        }
    };

    /// The context this copy hands out when it created the hub (or has
    /// none); const, without a destructor, so readable until the thread is
    /// gone.
    static BASE: ThreadContext = const { ThreadContext::new() };
}

/// Runs `f` with this thread's context.
#[inline]
pub(crate) fn with<R>(f: impl FnOnce(&ThreadContext) -> R) -> R {
    CURRENT.with(|current| f(get(current)))
}

/// `with`, or `None` where thread-locals are unreachable (only under loom,
/// whose thread-locals are gone while a thread exits; `std`'s const
/// thread-locals without destructors stay readable).
#[inline]
pub(crate) fn try_with<R>(f: impl FnOnce(&ThreadContext) -> R) -> Option<R> {
    CURRENT.try_with(|current| f(get(current))).ok()
}

/// The context `current` points at, resolved on the thread's first lookup.
#[inline(always)]
fn get(current: &Current) -> &ThreadContext {
    let mut ptr = current.context.get();
    if ptr.is_null() {
        ptr = resolve();
        current.context.set(ptr);
    }
    // SAFETY: a non-null `CURRENT.context` points at a `BASE` of this
    // thread, which lives as long as the thread (see the module docs); the
    // borrow ends with the caller's closure, on this thread.
    unsafe { &*ptr }
}

/// The `context` layer's cached state pointer (see `Current::state`):
/// what it last stored with `set_cached_state`, null at first; `None`
/// where thread-locals are unreachable (loom, see `try_with`).
#[inline(always)]
pub(crate) fn cached_state() -> Option<*const ()> {
    CURRENT.try_with(|current| current.state.get()).ok()
}

/// Stores the `context` layer's cached state pointer.
pub(crate) fn set_cached_state(state: *const ()) {
    let _ = CURRENT.try_with(|current| current.state.set(state));
}

/// The calling thread's context as a handle that stays on the thread (not
/// `Send`): an executor keeps one, so its polls reach the poll record
/// without a thread-local lookup.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Here(std::ptr::NonNull<ThreadContext>);

impl Here {
    /// The calling thread's.
    pub(crate) fn get() -> Here {
        with(|cx| Here(std::ptr::NonNull::from(cx)))
    }

    /// The context.
    #[inline(always)]
    pub(crate) fn context(&self) -> &ThreadContext {
        // SAFETY: a `Here` is made on its thread from that thread's context
        // (a `BASE`, alive while the thread runs) and cannot leave the
        // thread (`NonNull` is not `Send`), so the thread is running.
        unsafe { self.0.as_ref() }
    }
}

/// The context this thread shares with the other copies of this build: the
/// hub creator's `BASE`, or this copy's own without a hub.
#[cold]
#[inline(never)]
fn resolve() -> *const ThreadContext {
    let context = match hub::shared_context() {
        Some(context) => context,
        None => own_base(),
    };
    // SAFETY: a `BASE` of this thread (see the module docs).
    let cx = unsafe { &*context };
    if cx.key.get() == 0 {
        cx.key.set(hub::next_thread_key());
    }
    context
}

/// This copy's `BASE` on the calling thread; what the hub hands out when
/// this copy created it.
fn own_base() -> *const ThreadContext {
    BASE.with(|base| base as *const ThreadContext)
}
