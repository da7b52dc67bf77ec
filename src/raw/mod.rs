//! The crate's `unsafe` code, one abstraction per file.
//!
//! It holds the things whose safety rests on invariants that the borrow
//! checker cannot see:
//!
//! * Tasks: one allocation per task, a header (state word with the
//!   reference count, the vtable of the future's type, the way back to the
//!   executor, the awaiter's waker) followed by the cell that holds the
//!   future and then its result. Queues, the executor's task list, wakers
//!   and handles all hold thin pointers to it ([`TaskRef`]); the count in the
//!   state word frees it, so several transitions that a separate reference
//!   count would need two atomic operations for take one. The future may be
//!   `!Send`, yet wakers that point at the task are `Send + Sync`; the
//!   state word's `RUNNING` bit and an owner-thread check make every access
//!   to the future exclusive and on the right thread.
//!   Around them: the executor's task list and local run queue, linked
//!   through the tasks ([`TaskList`], [`RunQueue`]); the tasks' counted
//!   holds on their executor's shared part ([`SharedHold`]); the awaiter's
//!   waker in one word ([`AwaiterSlot`]) behind a lock bit.
//! * The root table: `block_on` futures live on the stack of the `block_on`
//!   call that owns them, yet a nested loop further up the stack must be able
//!   to poll them (rule R3). They are reached through lifetime-erased pointers
//!   that a guard removes before the owning call returns or unwinds.
//! * [`LentExecutor`]: a `block_on`'s executor, lent by pointer to the
//!   thread's state while its frame is deferred.
//!
//! The files, each opening with the invariant its unsafe code rests on and
//! who upholds it:
//!
//! * `state.rs`: the state word's flags and reference count, and the
//!   transitions on it that do not depend on the future's type (no unsafe
//!   code, but every other file here relies on it);
//! * `cell.rs`: a task's allocation (the header, then the future or its
//!   result), creating and freeing it, the claim on the future (`Running`);
//! * `typed.rs`: `Task<F>`, a reference that knows the future's type: the
//!   vtable of that type, creating tasks, the `JoinHandle`'s side;
//! * `task_ref.rs`: `TaskRef`, the type-erased counted reference, its
//!   vtable's type, and `JoinRef`;
//! * `waker.rs`: the waker vtables of tasks and of `block_on` roots;
//! * `awaiter.rs`: the awaiter's slot and its lock bit;
//! * `intrusive.rs`: the task list and the run queue, linked through the
//!   tasks;
//! * `hold.rs`: the tasks' holds on their executor's shared part, and
//!   `ThisThread`;
//! * `roots.rs`: the root table;
//! * `lent.rs`: the lent executor.
//!
//! Everything here exposes a safe API to the rest of the crate, which has
//! `#![deny(unsafe_code)]`; this module re-exports what the rest of the
//! crate uses.

mod awaiter;
mod cell;
mod hold;
mod intrusive;
mod lent;
mod roots;
mod state;
mod task_ref;
#[cfg(test)]
mod tests;
mod typed;
mod waker;

pub(crate) use awaiter::AwaiterSlot;
pub(crate) use cell::Running;
#[cfg(test)]
pub(crate) use cell::TaskCell;
pub(crate) use hold::{HoldReserve, SharedHold, ThisThread};
pub(crate) use intrusive::{RunQueue, TaskList};
pub(crate) use lent::LentExecutor;
pub(crate) use roots::{PollRoot, RootId, init_roots, is_busy, poll_root, with_root};
pub(crate) use state::{AWAITER, RUNNING, TAKEN};
pub(crate) use task_ref::{JoinRef, TaskRef};
pub(crate) use typed::{Task, new_local, new_remote};
pub(crate) use waker::root_waker;
