//! Where a loop acts on an interrupt (`InterruptHandle::interrupt`): it
//! ends the innermost interrupted `try_block_on`, unwinding the loops
//! nested inside it.

use std::panic::resume_unwind;

use crate::context::ThreadState;
use crate::sched::Interrupted;

/// Acts on a pending interrupt: `Err` when it ends the frame at `index`
/// (this loop's, the innermost), an unwind with an [`Interrupted`] payload
/// when it ends a `try_block_on` further down, nothing when no running
/// `try_block_on` was interrupted.
pub(super) fn check_interrupt(ts: &ThreadState, index: usize) -> Result<(), Interrupted> {
    if !ts.signal().take_interrupted() {
        return Ok(());
    }
    match ts.interrupt_target() {
        None => Ok(()),
        Some(target) => {
            // Still travelling: loops between here and the target look too.
            ts.signal().keep_interrupted();
            if target == index {
                Err(Interrupted::new())
            } else {
                resume_unwind(Box::new(Interrupted::new()))
            }
        }
    }
}
