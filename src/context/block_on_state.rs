//! The state of each `block_on` future that other loops may need (R3): its
//! waker, where it is reachable, whether it finished; reused per depth.

use std::cell::Cell;
use std::panic::Location;
use std::rc::Rc;
use std::task::Waker;

use super::ThreadState;
use super::block_on_table::BlockOnId;
use crate::park::{BlockOnWake, ThreadSignal};
use crate::sched::Executor;
use crate::sync::Arc;

/// The state of a `block_on` future that other loops may need.
#[derive(Debug)]
pub(crate) struct BlockOnState {
    /// Where the future itself is reachable (see `BlockOnTable::poll_registered`).
    pub(crate) id: Cell<BlockOnId>,
    /// What its waker sets; strong count 2 (this and `waker`) means no
    /// clone of the waker exists.
    pub(crate) wake: Arc<BlockOnWake>,
    /// Its waker, lent to each poll.
    pub(crate) waker: Waker,
    /// The future has finished (value or panic); its `block_on` returns as
    /// soon as control is back there.
    pub(crate) done: Cell<bool>,
}

impl BlockOnState {
    /// Readies a state for the next `block_on` at its depth, if nothing
    /// else holds it: no frame (its `Rc` is unique) and no clone of its
    /// waker (one would carry an old wake over, and would hide a deadlock
    /// from R9's count). Returns false, leaving it alone, otherwise.
    #[inline]
    fn reuse(self: &Rc<Self>) -> bool {
        if Rc::strong_count(self) != 1 || Arc::strong_count(&self.wake) != 2 {
            return false;
        }
        // Written only when set: a plain `block_on` of a future that is
        // ready at once leaves both clear, and skipping two stores to heap
        // objects per call took the call from 3.6 to 3.4 ns (median of 129
        // launches, old and new alternating).
        if self.done.get() {
            self.done.set(false);
        }
        self.wake.clear_woken();
        true
    }
}

impl ThreadState {
    /// The state of an outermost plain `block_on`, if no loop runs on
    /// this thread and the thread's own state is free: no frame holds it
    /// (no loop runs) and no clone of its waker survived an earlier call.
    /// `None` otherwise: the call is nested, or takes a state from the
    /// cache (`block_on_state`) until that clone is gone.
    #[inline(always)]
    pub(crate) fn outermost_state(&self) -> Option<&Rc<BlockOnState>> {
        // On a fiber (R12) this stack's frames may be empty while loops run
        // below it: the outermost call's state is then in use (in its first
        // poll it is borrowed, not cloned), and the fiber's resume holds a
        // clone (`resume_fiber`), so `reuse` refuses it. A check of the
        // fiber's base here instead cost the top-level call 2 instructions.
        if self.stack.deferred.is_pending() || !self.stack.frames.borrow().is_empty() {
            return None;
        }
        let state = &self.outermost_state;
        state.reuse().then_some(state)
    }

    /// The state for a `block_on` at `depth` (its future not registered
    /// yet, not woken: about to be polled): the cached one when nothing
    /// else holds it (no clone of its waker exists, so reusing it cannot
    /// carry an old wake over), else a new one.
    #[inline]
    pub(crate) fn block_on_state(&self, depth: usize) -> Rc<BlockOnState> {
        let mut cache = self.state_cache.borrow_mut();
        if cache.len() <= depth {
            grow(&mut cache, depth + 1);
        }
        let slot = &mut cache[depth];
        if let Some(state) = slot
            && state.reuse()
        {
            return state.clone();
        }
        let state = new_block_on_state(&self.signal);
        // The replaced state (if any) is still held elsewhere: not dropped
        // here.
        *slot = Some(state.clone());
        state
    }

    /// The first woken, unfinished `block_on` future at or above frame `*index` that is
    /// not on the stack and is not `skip`, with its executor and where its
    /// `block_on` was called; advances
    /// `*index` past it. Frames below the caller's stay put while it polls
    /// the `block_on` future, so the caller can walk them all this way.
    pub(crate) fn next_woken_block_on(
        &self,
        index: &mut usize,
        skip: Option<&Rc<BlockOnState>>,
    ) -> Option<(Executor, Rc<BlockOnState>, &'static Location<'static>)> {
        // On a fiber, the frames of the stacks below it count too (R3).
        self.with_all_frames(|frames| {
            for frame in Iterator::skip(frames, *index) {
                *index += 1;
                let Some(root) = frame.block_on.as_ref() else {
                    continue;
                };
                if skip.is_some_and(|s| Rc::ptr_eq(s, root))
                    || root.done.get()
                    || !root.wake.is_woken()
                    || self.block_ons.is_busy(root.id.get())
                {
                    continue;
                }
                return Some((frame.executor.clone(), root.clone(), frame.location));
            }
            None
        })
    }
}

/// A fresh state for a `block_on` of this thread.
#[cold]
pub(super) fn new_block_on_state(signal: &Arc<ThreadSignal>) -> Rc<BlockOnState> {
    let wake = Arc::new(BlockOnWake::new(signal.clone()));
    Rc::new(BlockOnState {
        id: Cell::new(BlockOnId::UNREGISTERED),
        waker: crate::task::block_on_waker(wake.clone()),
        wake,
        done: Cell::new(false),
    })
}

/// Makes room in the state cache for a new depth.
#[cold]
fn grow(cache: &mut Vec<Option<Rc<BlockOnState>>>, len: usize) {
    cache.resize(len, None);
}
