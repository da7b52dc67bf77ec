//! Feature `tracing`: each task runs inside a span of its own.
//!
//! A task's future is wrapped, when the task is made, in [`Traced`], which
//! enters the task's span around every poll and around the drop of the
//! future (an abort's destructors belong to the task too). The span is made
//! with `parent: None`, as tokio makes its task spans: what it records does
//! not depend on which loop polls it. So when task A's poll calls a nested
//! `block_on` whose loop polls task B, B's events are recorded in B's span,
//! not in A's (A's span is still entered further down the thread's span
//! stack, but the current span, the one events go to, is B's).

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use super::Origin;

/// The target of nestloop's task spans, `nestloop::task` (a filter such as
/// `nestloop::task=off` turns them off).
pub(crate) const TASK_TARGET: &str = "nestloop::task";

pin_project_lite::pin_project! {
    /// A task's future, polled and dropped inside the task's span.
    pub(crate) struct Traced<F> {
        // `None` once dropped, inside the span, by `drop`.
        #[pin]
        future: Option<F>,
        span: tracing::Span,
    }

    impl<F> PinnedDrop for Traced<F> {
        fn drop(this: Pin<&mut Self>) {
            let mut this = this.project();
            let _entered = this.span.enter();
            this.future.set(None);
        }
    }
}

impl<F> Traced<F> {
    /// `future`, the future of the task `origin` names, in a new span.
    pub(crate) fn new(future: F, origin: Origin, name: Option<&str>) -> Self {
        let location = origin.location;
        let span = tracing::info_span!(
            target: TASK_TARGET,
            parent: None,
            "task",
            task.id = origin.id.as_u64(),
            task.name = tracing::field::Empty,
            loc.file = location.file(),
            loc.line = location.line(),
            loc.col = location.column(),
        );
        if let Some(name) = name {
            span.record("task.name", name);
        }
        Traced {
            future: Some(future),
            span,
        }
    }
}

impl<F: Future> Future for Traced<F> {
    type Output = F::Output;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        let this = self.project();
        let _entered = this.span.enter();
        // So a fiber that suspends in this poll can exit it (R12).
        let _noted = crate::thread_context::note_span(this.span.id());
        match this.future.as_pin_mut() {
            Some(future) => future.poll(cx),
            // The task's harness never polls a future after dropping it.
            None => unreachable!("nestloop: a task's future polled after it was dropped"),
        }
    }
}
