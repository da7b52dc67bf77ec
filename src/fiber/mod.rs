//! Stacks of their own (fibers) for R12: a `block_on` inside a task suspends
//! the stack it runs on, and the thread's loop goes on on another.
//!
//! This layer is the mechanism only: a [`Fiber`] runs a closure on a stack
//! from the thread's [`StackPool`] and comes back when the closure returns
//! or calls [`suspend`]; [`Fiber::resume`] goes on from there. The switch
//! itself is corosensei's (guard pages, stacks registered with valgrind,
//! panics unwind through `resume` to the resumer). Which fibers run when,
//! and the state that goes with each stack (frames, the poll record,
//! task-local marks), are the `context` and `run_loop` layers' business:
//! `context/fibers.rs` exchanges that state around every resume.
//!
//! Only where [`SUPPORTED`]: x86_64 and AArch64, not under Miri or loom
//! (which cannot follow a stack switch). Elsewhere every call nests a loop
//! on the caller's stack, as before R12.

#[cfg(all(
    any(target_arch = "x86_64", target_arch = "aarch64"),
    not(miri),
    not(nestloop_loom),
    unix
))]
mod overflow;
#[cfg(all(
    any(target_arch = "x86_64", target_arch = "aarch64"),
    not(miri),
    not(nestloop_loom)
))]
mod switch;
#[cfg(all(
    any(target_arch = "x86_64", target_arch = "aarch64"),
    not(miri),
    not(nestloop_loom)
))]
pub(crate) use switch::{Fiber, StackPool};

#[cfg(not(all(
    any(target_arch = "x86_64", target_arch = "aarch64"),
    not(miri),
    not(nestloop_loom)
)))]
mod unsupported;
#[cfg(not(all(
    any(target_arch = "x86_64", target_arch = "aarch64"),
    not(miri),
    not(nestloop_loom)
)))]
pub(crate) use unsupported::{Fiber, StackPool};

/// Whether stacks can be switched here (see the module docs).
pub(crate) const SUPPORTED: bool = cfg!(all(
    any(target_arch = "x86_64", target_arch = "aarch64"),
    not(miri),
    not(nestloop_loom)
));

/// The default size of a fiber's stack, in bytes: what a task runs on a
/// thread of Rust's default 2 MiB, so code that runs in a task today runs
/// on a fiber. Only the pages a fiber touches take memory; the rest is
/// address space.
pub(crate) const DEFAULT_STACK_SIZE: usize = 2 * 1024 * 1024;

/// The smallest stack size `Builder::fiber_stack_size` accepts, in bytes:
/// R10 keeps 128 KiB of a stack free for unwinding and its report, and
/// this leaves as much again for the code.
pub(crate) const MIN_STACK_SIZE: usize = 256 * 1024;

/// Stacks a thread keeps for reuse; more are unmapped when their fibers
/// end.
pub(crate) const POOL_CAP: usize = 16;

/// Pooled stacks that keep the pages their fibers touched; the pages of
/// the others in the pool are handed back to the OS.
pub(crate) const POOL_WARM: usize = 4;

/// What a resumer hands a fiber.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Resume {
    /// Go on.
    Run,
    /// End: unwind what the fiber holds (a cancelled call, an idle loop
    /// that is no longer needed).
    Cancel,
    /// The call suspended in it can never finish (R9): it panics.
    Deadlock,
}

/// Why a fiber came back without finishing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Suspend {
    /// A `block_on` on it waits for its future to be woken.
    Blocked,
}

/// What [`Fiber::resume`] came back with.
#[derive(Debug)]
pub(crate) enum Outcome<R> {
    /// The fiber suspended itself.
    Suspended(Suspend),
    /// Its closure returned this.
    Finished(R),
}

/// The payload that unwinds a cancelled fiber's stack (R5: `abort`,
/// `shutdown` and thread exit end a call blocked in a suspended stack).
/// A task's poll it unwinds through is cancelled, and the unwinding goes
/// on to the fiber's entry, which ends the fiber; catching it and going on
/// delays that, and the next suspension ends in the same way.
#[derive(Debug)]
pub(crate) struct Unwound;

/// Suspends the running fiber until it is resumed, with `why`; returns
/// what the resumer handed it.
///
/// # Panics
///
/// On the thread's own stack (an internal error: callers check
/// [`on_fiber`] first).
pub(crate) fn suspend(why: Suspend) -> Resume {
    #[cfg(all(
        any(target_arch = "x86_64", target_arch = "aarch64"),
        not(miri),
        not(nestloop_loom)
    ))]
    {
        switch::suspend(why)
    }
    #[cfg(not(all(
        any(target_arch = "x86_64", target_arch = "aarch64"),
        not(miri),
        not(nestloop_loom)
    )))]
    {
        let _ = why;
        unreachable!("nestloop: internal error: no fibers here")
    }
}

/// Whether the running code is on a fiber (not on the thread's own stack).
#[inline]
pub(crate) fn on_fiber() -> bool {
    SUPPORTED && crate::thread_context::with(|cx| !cx.stack.fiber.get().is_null())
}
