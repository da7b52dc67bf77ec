//! A task's life: its memory, its references, its wakers, its state
//! machine and what polling, cancelling and joining it do. Nothing here
//! names the frame stack or the loop. Besides the layers below it (`sync`,
//! `thread_context` for task ids, `park`) it calls `task_local` (a fresh
//! mark for dropping an aborted task's future), `tokio` (the advice for
//! tokio's missing-runtime panic) and `sched`, where a woken task goes (and
//! `sched` calls back to run it): the crate's one declared import cycle, as
//! in tokio, whose `task` module reaches its scheduler through its
//! `Schedule` trait.
//!
//! A task is one allocation: a header (state word with the reference count,
//! the vtable of the future's type, the way back to the executor, the
//! awaiter's waker) followed by the cell that holds the future and then its
//! result. Queues, the executor's task list, wakers and handles all hold
//! thin pointers to it ([`TaskRef`]); the count in the state word frees it,
//! so several transitions that a separate reference count would need two
//! atomic operations for take one. The future may be `!Send`, yet wakers
//! that point at the task are `Send + Sync`; the state word's `CLAIMED` bit
//! and an owner-thread check make every access to the future exclusive and
//! on the right thread.
//!
//! The files; the unsafe ones open with the invariant their unsafe code
//! rests on and who upholds it:
//!
//! * `state.rs`: the state word's flags and reference count, private to
//!   it, and the named transitions that are the only way to change them
//!   (no unsafe code, but every other file here relies on it);
//! * `cell.rs` [unsafe]: a task's allocation (the header, then the future or
//!   its result), creating and freeing it, the claim on the future
//!   (`Running`);
//! * `typed.rs` [unsafe]: `Task<F>`, a reference that knows the future's
//!   type: the vtable of that type, creating tasks, the `JoinHandle`'s side;
//! * `task_ref.rs` [unsafe]: `TaskRef`, the type-erased counted reference,
//!   its vtable's type, and `JoinRef`;
//! * `waker.rs` [unsafe]: the waker vtables of tasks and of `block_on`
//!   futures;
//! * `awaiter.rs` [unsafe]: the awaiter's slot, behind the state word's lock
//!   bit;
//! * `intrusive.rs` [unsafe]: the task list and the run queue, linked
//!   through the tasks;
//! * `harness.rs`: what running, cancelling, finishing, aborting and
//!   joining a task do, whatever its future type (safe code);
//! * `join.rs`: [`JoinHandle`], [`AbortHandle`], [`JoinError`];
//! * `origin.rs`: [`TaskId`] and a task's spawn location;
//! * `traced.rs` (feature `tracing`): the span a task's future runs in.
//!
//! Everything here exposes a safe API to the rest of the crate, which has
//! `#![deny(unsafe_code)]`.

mod awaiter;
pub(super) mod cell;
mod harness;
mod intrusive;
mod join;
mod origin;
mod state;
mod task_ref;
#[cfg(test)]
mod tests;
#[cfg(feature = "tracing")]
mod traced;
mod typed;
mod waker;

pub(crate) use harness::awaiter_is;
pub(crate) use intrusive::{QueueMark, RunQueue, TaskList};
#[cfg(feature = "tokio")]
pub(crate) use join::panic_message;
pub use join::{AbortHandle, JoinError, JoinHandle};
pub(crate) use origin::Origin;
pub use origin::TaskId;
pub(crate) use task_ref::TaskRef;
pub(crate) use typed::{new_local, new_remote};
pub(crate) use waker::block_on_waker;

/// A new task, spawned at `location` and named `name`: its origin (a fresh
/// id), and its future as the task holds it (with feature `tracing`,
/// inside the task's span; as given otherwise).
#[inline]
pub(crate) fn prepare<F: std::future::Future>(
    future: F,
    location: &'static std::panic::Location<'static>,
    name: Option<&str>,
) -> (
    Origin,
    impl std::future::Future<Output = F::Output> + use<F>,
) {
    let origin = Origin::new(location);
    #[cfg(feature = "tracing")]
    let future = traced::Traced::new(future, origin, name);
    #[cfg(not(feature = "tracing"))]
    let _ = name;
    (origin, future)
}
