//! A `block_on` future as the loops see it ([`BlockOnFuture`]): polled under its
//! caller's task-locals and tracing span by whichever loop finds it woken
//! (R3), its output or panic kept for its own call (R4), which passes a
//! panic on (`resume_panic`).

use std::any::Any;
use std::future::Future;
use std::panic::{AssertUnwindSafe, Location, catch_unwind, resume_unwind};
use std::pin::Pin;
use std::task::{Context, Poll};

use crate::context::{BlockOnState, PollBlockOn, ThreadState};
use crate::sched::Inner;
use crate::task_local::{self, PollMark};

/// A `block_on` future and what became of it.
pub(super) struct BlockOnFuture<'a, F: Future> {
    /// The caller's future, pinned on the caller's stack.
    pub(super) future: Pin<&'a mut F>,
    /// Its output, or the payload of its panic, once finished.
    pub(super) outcome: Option<Result<F::Output, Box<dyn Any + Send>>>,
    /// The poll that called `block_on`: every poll of the future runs
    /// under its mark, so it sees its caller's task-locals.
    pub(super) caller: PollMark,
    /// Feature `tracing`: the span current where `block_on` was called,
    /// entered around every poll, so the future records in its caller's
    /// span whichever loop polls it (R3), not in that of the task a nested
    /// loop further up happens to run under.
    #[cfg(feature = "tracing")]
    pub(super) span: tracing::Span,
}

impl<F: Future> PollBlockOn for BlockOnFuture<'_, F> {
    fn poll(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        if self.outcome.is_some() {
            return Poll::Ready(());
        }
        let _locals = task_local::enter_poll_of(self.caller);
        #[cfg(feature = "tracing")]
        let _span = self.span.enter();
        match catch_unwind(AssertUnwindSafe(|| self.future.as_mut().poll(cx))) {
            Ok(Poll::Pending) => Poll::Pending,
            Ok(Poll::Ready(output)) => {
                self.outcome = Some(Ok(output));
                Poll::Ready(())
            }
            // A cancelled fiber unwinding its stack: not the future's
            // panic, and it goes on to the fiber's entry.
            Err(payload) if payload.is::<crate::fiber::Unwound>() => resume_unwind(payload),
            Err(payload) => {
                // Kept for the owning `block_on`, which may be further down
                // the stack than the loop that polled it (R4).
                self.outcome = Some(Err(payload));
                Poll::Ready(())
            }
        }
    }
}

/// What became of a `block_on` future a loop found woken.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum BlockOnPoll {
    /// Not polled: it had finished, or it is on the stack (its wake stays).
    Skipped,
    /// Polled, and still pending.
    Pending,
    /// Polled, and finished (with its output or a panic).
    Finished,
}

/// Polls a `block_on` future (of the call at `location`) for whichever loop
/// found it woken.
pub(super) fn poll_woken_block_on(
    ts: &ThreadState,
    owner: &Inner,
    root: &BlockOnState,
    location: &'static Location<'static>,
) -> BlockOnPoll {
    if root.done.get() {
        return BlockOnPoll::Skipped;
    }
    let woken = root.wake.take_woken();
    let polled = {
        let _scope = owner.enter_poll_block_on(location);
        let mut cx = Context::from_waker(&root.waker);
        ts.block_ons.poll_registered(root.id.get(), &mut cx)
    };
    match polled {
        None => {
            // On the stack: the wake stays for the loop that polls it.
            if woken {
                root.wake.set_woken();
            }
            BlockOnPoll::Skipped
        }
        Some(Poll::Ready(())) => {
            root.done.set(true);
            BlockOnPoll::Finished
        }
        Some(Poll::Pending) => BlockOnPoll::Pending,
    }
}

/// A plain `block_on`'s first poll of its future, which a panic unwinds
/// straight out of; with feature `tokio`, through `resume_panic`.
#[inline(always)]
pub(super) fn explaining<T>(poll: impl FnOnce() -> Poll<T>) -> Poll<T> {
    #[cfg(feature = "tokio")]
    return match catch_unwind(AssertUnwindSafe(poll)) {
        Ok(poll) => poll,
        Err(payload) => resume_panic(payload),
    };
    #[cfg(not(feature = "tokio"))]
    poll()
}

/// Passes the panic of a `block_on` future on to its caller. With feature
/// `tokio`, tokio's "no runtime" panic gets nestloop's advice instead (a
/// new panic, so the hook prints it after tokio's).
#[cold]
pub(super) fn resume_panic(payload: Box<dyn Any + Send>) -> ! {
    #[cfg(feature = "tokio")]
    if let Some(advice) =
        crate::task::panic_message(&*payload).and_then(crate::tokio::explain_missing_runtime)
    {
        panic!("{advice}");
    }
    resume_unwind(payload)
}
