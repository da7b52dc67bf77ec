//! How deep loops may nest (R10): the stack left on the thread is the
//! bound, `Builder::max_depth` an optional count on top.

use crate::context::{Abridged, Innermost, ThreadState};
use crate::sched::Executor;

/// Stack kept free below the deepest level for unwinding and reporting the
/// depth-limit panic.
const STACK_RESERVE: usize = 128 * 1024;

/// The nesting bound where the stack left cannot be read (Miri, loom,
/// platforms `stacker` does not know).
const UNKNOWN_STACK_MAX_DEPTH: usize = 128;

/// Refuses to nest past `max_depth` or past the stack the thread has (R10).
/// Returns the index the new frame will have (the loops running now).
pub(super) fn check_enter(executor: &Executor, ts: &ThreadState, mark: usize) -> usize {
    // A call that nests pushes the frame its caller may have deferred (at
    // most one is deferred, the innermost), whether or not the checks
    // below look at the frames (without a stack bound they do not).
    ts.push_deferred();
    let index = ts.depth();
    let depth = index + 1;
    let max_depth = executor.inner.max_depth;
    if depth > max_depth {
        super::report(format!(
            "nestloop: nesting depth limit reached: this call would run loop number {depth} on \
             this thread, but max_depth is {max_depth}. Await the future instead of nesting \
             another block_on, or raise the limit with Executor::builder().max_depth(n).\n{}",
            Abridged(&ts.snapshot(Innermost::Polling)),
        ));
    }
    if depth == 1 {
        return index; // the outermost loop: no nesting to bound
    }
    let on_fiber = ts.fiber_stack_limit();
    match remaining_stack(on_fiber, mark) {
        Some(remaining) => {
            let level = ts.last_level_stack(mark);
            let needed = STACK_RESERVE + 2 * level;
            if remaining < needed {
                let larger = if on_fiber.is_some() {
                    "run it with a larger fiber stack (Executor::builder().fiber_stack_size)"
                } else {
                    "run the loops on a thread with a larger stack \
                     (std::thread::Builder::stack_size)"
                };
                super::report(format!(
                    "nestloop: not enough stack for nesting depth {depth}: {} KiB left, the \
                     previous level used {} KiB and {} KiB are kept for unwinding. Await the \
                     future instead of nesting another block_on, or {larger}.\n{}",
                    remaining / 1024,
                    level / 1024,
                    STACK_RESERVE / 1024,
                    Abridged(&ts.snapshot(Innermost::Polling)),
                ));
            }
        }
        None if depth > UNKNOWN_STACK_MAX_DEPTH => super::report(format!(
            "nestloop: nesting depth limit reached: this call would run loop number {depth} on \
             this thread, whose stack size cannot be read here, so at most \
             {UNKNOWN_STACK_MAX_DEPTH} loops nest. Await the future instead of nesting another \
             block_on.\n{}",
            Abridged(&ts.snapshot(Innermost::Polling)),
        )),
        None => {}
    }
    index
}

/// The stack left where the code at stack mark `mark` runs, when it can be
/// known: on a fiber (its lowest usable address `fiber_limit`), down to
/// that limit; on the thread's own stack, as `stacker` reads it.
fn remaining_stack(fiber_limit: Option<usize>, mark: usize) -> Option<usize> {
    if let Some(limit) = fiber_limit {
        return Some(mark.saturating_sub(limit));
    }
    // Miri cannot run the stack-pointer read (inline assembly) behind it,
    // and loom's threads are not real threads.
    if cfg!(any(miri, nestloop_loom)) {
        None
    } else {
        stacker::remaining_stack()
    }
}
