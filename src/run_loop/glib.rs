//! Feature `glib`: the loops' side of waiting in the thread's GLib main
//! context (`crate::reactor::glib`): running the thread's work when GLib
//! dispatches nestloop's sources, and arming the next timer when a loop
//! ends.

use std::panic::Location;

use crate::context::{self, ThreadState};
use crate::sched::Executor;

/// Runs the thread's ready tasks, woken calls and due timers, when GLib
/// dispatches nestloop's idle or timer source: a `run_until_stalled` of
/// an executor with the context, unless the dispatch is one of the
/// iteration of a loop waiting in the context (that loop runs the work
/// when the iteration returns).
pub(crate) fn drive_from_glib() {
    let Some((glib, executor)) = context::with(|ts| {
        let glib = ts.glib_context()?;
        let executor = ts.registered().into_iter().find(|e| e.glib.is_some())?;
        Some((glib, Executor { inner: executor }))
    }) else {
        return;
    };
    glib.listen();
    if glib.in_own_wait() {
        return;
    }
    super::run_until_stalled(&executor, Location::caller());
}

/// Arms GLib's timer for the thread's next nestloop timer when dropped: at
/// the end of every loop, so timers set by the tasks it ran fire while
/// GLib alone runs the thread.
pub(super) struct ArmNextTimer<'a>(pub(super) &'a ThreadState);

impl Drop for ArmNextTimer<'_> {
    fn drop(&mut self) {
        if let Some(glib) = self.0.glib_context() {
            glib.arm(self.0.timers.borrow_mut().next_deadline());
        }
    }
}
