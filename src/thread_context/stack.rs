//! What belongs to the stack that runs now, at this layer (see
//! [`StackContext`]), and the task spans entered on a stack (feature
//! `tracing`), which follow their stack. tokio's runtime contexts follow
//! their stack too (`runtime.rs`).

use std::cell::Cell;

#[cfg(feature = "tracing")]
use super::{try_with, with};

/// What this layer keeps for the stack that runs now (the thread's own,
/// or a task's suspended-and-resumed stack under R12): the poll record
/// (`sched::polled`), the running poll's task-local mark (`task_local`)
/// and the running fiber's way back (`fiber`). The `context` layer keeps the rest of a stack's state
/// (its loop frames, its deferred frame) in `context::StackState`, and
/// `context/stack.rs` switches both halves in one call.
///
/// The fields of the running stack live here, in place, rather than
/// behind a pointer to the current one: every poll reads and writes them,
/// and a pointer would put one more dependent load on that path. A switch
/// instead exchanges them with a suspended stack's [`SavedStackContext`]
/// (four words).
#[derive(Debug)]
pub(crate) struct StackContext {
    /// `sched::polled`: the executor owning what is being polled (null
    /// outside any poll).
    pub(crate) polled_owner: Cell<*const ()>,
    /// `sched::polled`: the task or `block_on` future being polled.
    pub(crate) polled_target: Cell<*const ()>,
    /// `task_local`: the running poll's mark (0: none of nestloop's).
    pub(crate) mark: Cell<u64>,
    /// `fiber`: the running fiber's way back to whoever resumed it (null
    /// on the thread's own stack).
    pub(crate) fiber: Cell<*const ()>,
    /// Feature `glib`: `glib::main_depth()` when this stack was last
    /// entered (see `in_glib_dispatch`).
    #[cfg(feature = "glib")]
    glib_base: Cell<i32>,
    /// Feature `tokio`: the runtime contexts entered on this stack,
    /// outermost first (see `runtime.rs`).
    #[cfg(feature = "tokio")]
    pub(super) runtimes: std::cell::RefCell<Vec<super::runtime::RuntimeEntry>>,
    /// Feature `tracing`: the task spans entered by polls on this stack,
    /// outermost first (see `note_span`), which a fiber exits before it
    /// suspends and enters again when it is resumed.
    #[cfg(feature = "tracing")]
    spans: std::cell::RefCell<Vec<tracing::Id>>,
}

/// A [`StackContext`] of a stack that is not running: what a fresh stack
/// starts with (nothing polled, no mark), or what a suspended one had.
#[cfg_attr(
    not(test),
    allow(dead_code, reason = "the stack switch of R12 (fiber layer) calls it")
)]
#[derive(Debug)]
pub(crate) struct SavedStackContext {
    polled_owner: *const (),
    polled_target: *const (),
    mark: u64,
    fiber: *const (),
    #[cfg(feature = "glib")]
    glib_base: i32,
    #[cfg(feature = "tokio")]
    runtimes: Vec<super::runtime::RuntimeEntry>,
    #[cfg(feature = "tracing")]
    spans: Vec<tracing::Id>,
}

#[cfg_attr(
    not(test),
    allow(dead_code, reason = "the stack switch of R12 (fiber layer) calls it")
)]
impl SavedStackContext {
    /// The context of a stack that has run nothing yet, with `mark` (a
    /// fresh one from `task_local`) as its running mark: it sees no
    /// task-local of another stack.
    pub(crate) fn new(mark: u64) -> Self {
        SavedStackContext {
            polled_owner: std::ptr::null(),
            polled_target: std::ptr::null(),
            mark,
            fiber: std::ptr::null(),
            #[cfg(feature = "glib")]
            glib_base: 0,
            #[cfg(feature = "tokio")]
            runtimes: Vec::new(),
            #[cfg(feature = "tracing")]
            spans: Vec::new(),
        }
    }
}

impl SavedStackContext {
    /// The poll record's owner (see `StackContext::polled_owner`).
    pub(crate) fn polled_owner(&self) -> *const () {
        self.polled_owner
    }

    /// The poll record's target (see `StackContext::polled_target`).
    pub(crate) fn polled_target(&self) -> *const () {
        self.polled_target
    }
}

impl StackContext {
    /// The context of a thread's own stack before it runs anything.
    pub(super) const fn new() -> Self {
        StackContext {
            polled_owner: Cell::new(std::ptr::null()),
            polled_target: Cell::new(std::ptr::null()),
            mark: Cell::new(0),
            fiber: Cell::new(std::ptr::null()),
            #[cfg(feature = "glib")]
            glib_base: Cell::new(0),
            #[cfg(feature = "tokio")]
            runtimes: std::cell::RefCell::new(Vec::new()),
            #[cfg(feature = "tracing")]
            spans: std::cell::RefCell::new(Vec::new()),
        }
    }

    #[cfg_attr(
        not(test),
        allow(dead_code, reason = "the stack switch of R12 (fiber layer) calls it")
    )]
    /// Makes `saved` the running stack's context, and leaves the one that
    /// was running in `saved`.
    pub(crate) fn switch(&self, saved: &mut SavedStackContext) {
        saved.polled_owner = self.polled_owner.replace(saved.polled_owner);
        saved.polled_target = self.polled_target.replace(saved.polled_target);
        saved.mark = self.mark.replace(saved.mark);
        saved.fiber = self.fiber.replace(saved.fiber);
        #[cfg(feature = "glib")]
        {
            saved.glib_base = self.glib_base.replace(saved.glib_base);
        }
        #[cfg(feature = "tokio")]
        std::mem::swap(&mut *self.runtimes.borrow_mut(), &mut saved.runtimes);
        #[cfg(feature = "tracing")]
        std::mem::swap(&mut *self.spans.borrow_mut(), &mut saved.spans);
    }
}

/// Feature `tracing`: notes that a poll on the running stack entered the
/// task span `id`, until the guard drops (see `StackContext::spans`).
#[cfg(feature = "tracing")]
pub(crate) fn note_span(id: Option<tracing::Id>) -> NotedSpan {
    if let Some(id) = &id {
        with(|cx| cx.stack.spans.borrow_mut().push(id.clone()));
    }
    NotedSpan(id)
}

/// Forgets a span noted by `note_span` (its own entry).
#[cfg(feature = "tracing")]
pub(crate) struct NotedSpan(Option<tracing::Id>);

#[cfg(feature = "tracing")]
impl Drop for NotedSpan {
    fn drop(&mut self) {
        if let Some(id) = &self.0 {
            let _ = try_with(|cx| {
                let mut spans = cx.stack.spans.borrow_mut();
                if let Some(at) = spans.iter().rposition(|s| s == id) {
                    spans.remove(at);
                }
            });
        }
    }
}

/// Feature `tracing`: exits the spans entered on the running stack (the
/// current span first, if it is another one, such as the caller's own),
/// before a fiber suspends; returns them, innermost first, for
/// `enter_spans` when it is resumed.
#[cfg(feature = "tracing")]
fn exit_spans() -> Vec<tracing::Id> {
    let mut spans: Vec<tracing::Id> =
        with(|cx| cx.stack.spans.borrow().iter().rev().cloned().collect());
    if let Some(current) = tracing::Span::current().id()
        && !spans.contains(&current)
    {
        spans.insert(0, current);
    }
    tracing::dispatcher::get_default(|d| spans.iter().for_each(|id| d.exit(id)));
    spans
}

/// Enters again the spans `exit_spans` exited, outermost first.
#[cfg(feature = "tracing")]
fn enter_spans(spans: &[tracing::Id]) {
    tracing::dispatcher::get_default(|d| spans.iter().rev().for_each(|id| d.enter(id)));
}

/// Leaves the scopes entered on the running stack that follow it rather
/// than the thread (task spans, feature `tracing`; tokio runtime contexts,
/// feature `tokio`), before its fiber suspends; `LeftScopes::enter_again`
/// enters them again when it is resumed.
pub(crate) fn leave_scopes() -> LeftScopes {
    #[cfg(feature = "tracing")]
    let spans = exit_spans();
    #[cfg(feature = "tokio")]
    super::runtime::leave_runtimes();
    LeftScopes {
        #[cfg(feature = "tracing")]
        spans,
    }
}

/// What `leave_scopes` left.
#[must_use = "the scopes are entered again with `enter_again`"]
pub(crate) struct LeftScopes {
    /// The spans exited, innermost first.
    #[cfg(feature = "tracing")]
    spans: Vec<tracing::Id>,
}

impl LeftScopes {
    /// Enters the scopes again, outermost first.
    pub(crate) fn enter_again(self) {
        #[cfg(feature = "tokio")]
        super::runtime::enter_runtimes();
        #[cfg(feature = "tracing")]
        enter_spans(&self.spans);
    }
}

/// Feature `glib`: notes GLib's dispatch depth now as the base of the
/// stack just entered (a fiber being resumed): dispatches that begin on it
/// from here on are its own (see `in_glib_dispatch`).
#[cfg(feature = "glib")]
pub(crate) fn note_glib_base() {
    let depth = glib::main_depth();
    super::with(|cx| cx.stack.glib_base.set(depth));
}

/// Feature `glib`: whether a GLib dispatch is in progress on the running
/// stack (one that began after the stack was entered). GLib keeps its
/// dispatches in a per-thread stack that must unwind in order, so such a
/// stack is not suspended: a `block_on` there nests, as GLib's own nested
/// main loops do.
#[cfg(feature = "glib")]
pub(crate) fn in_glib_dispatch() -> bool {
    let base = super::with(|cx| cx.stack.glib_base.get());
    glib::main_depth() > base
}
