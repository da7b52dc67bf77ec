//! The per-thread state behind nesting: the stack of active loop frames, the
//! executors those frames drive, and every executor created on the thread.
//!
//! A frame is pushed by each `block_on` and `run_until_stalled` call and
//! popped by a guard when it returns or unwinds, so `depth()` is always the
//! number of loops on the stack. A nested loop reads the frames below it to
//! find the executors whose queues it must drive (R1, R6) and the `block_on`
//! futures it may poll when they are woken (R3).
//!
//! Here: the thread's state and its frame stack. Beside it: `block_on_state.rs`, the
//! state of each `block_on` future; `block_on_table.rs`, the futures themselves,
//! reachable by any loop of the thread; `stack.rs`, what belongs to the
//! stack that runs now (its frames, its deferred frame) and the switch
//! between stacks; `deferred.rs`, the frame of a plain call's first poll; `executors.rs`, the executors a loop drives, the
//! thread's registry and default executor, and thread exit; `snapshot.rs`,
//! the frames as diagnostics show them (`nestloop::frames`).

use std::cell::{Cell, RefCell};
use std::panic::Location;
use std::rc::{Rc, Weak};
use std::task::Poll;

use crate::park::{BatchPause, ThreadSignal, TimerHeap};
use crate::sched::{self, Executor, Inner, PollTarget, ThreadQueue};
use crate::sync::Arc;
use crate::task::Origin;
use crate::thread_context::Here;

mod block_on_state;
mod block_on_table;
mod deferred;
mod executors;
mod fibers;
mod slot;
mod snapshot;
mod stack;

pub(crate) use snapshot::{Abridged, Innermost};
pub use snapshot::{Frames, LoopFrame, LoopKind, Polling, frames};

use block_on_table::BlockOnTable;
pub(crate) use block_on_table::PollBlockOn;
use fibers::Fibers;
pub(crate) use fibers::LoopResult;
use stack::StackState;

pub(crate) use block_on_state::BlockOnState;
use block_on_state::new_block_on_state;

/// Names a frame: unique per thread, so a guard pops its own frame and
/// can tell when it is not the innermost (see `FrameGuard`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct FrameId(u64);

/// One active loop.
#[derive(Debug)]
struct Frame {
    /// Which frame this is.
    id: FrameId,
    /// The executor whose `block_on` or `run_until_stalled` this is.
    executor: Executor,
    /// The `block_on` future, or `None` for `run_until_stalled` (and for a
    /// `block_on` until its future is registered).
    block_on: Option<Rc<BlockOnState>>,
    /// Which call this is.
    kind: LoopKind,
    /// Where it was called.
    location: &'static Location<'static>,
    /// What the loop below was polling when this call began (the task or
    /// future that made it), which it polls until this frame is popped.
    caller: PollTarget,
    /// The call is polling its future for the first time: a deferred frame
    /// that something looked for (see `ThreadState::poll_deferred`).
    in_first_poll: bool,
    /// Approximate stack pointer when the frame was entered (R10).
    stack_mark: usize,
    /// For `try_block_on`: the executor's interrupt epoch when the frame
    /// began; a later epoch means this frame is interrupted.
    interrupt_epoch: Option<usize>,
}

impl Frame {
    /// Whether this is a `try_block_on` frame whose executor was interrupted
    /// since it began.
    fn is_interrupted(&self) -> bool {
        self.interrupt_epoch
            .is_some_and(|e0| self.executor.inner.shared.interrupt_epoch() != e0)
    }
}

/// Everything nestloop keeps per thread.
pub(crate) struct ThreadState {
    /// How many copies of nestloop use this state (see `slot.rs`).
    users: Cell<usize>,
    /// This thread's context, for the poll record.
    here: Here,
    /// Unparks this thread; shared with wakers and executors.
    signal: Arc<ThreadSignal>,
    /// What belongs to the stack that runs now: its loops' frames and
    /// its deferred frame (see `stack.rs`).
    stack: StackState,
    /// The id of the next frame pushed.
    next_frame_id: Cell<u64>,
    /// The thread's fibers, and stacks for more (R12).
    fibers: Fibers,
    /// The run queue of every executor of this thread (R1).
    queue: Rc<ThreadQueue>,
    /// The state of the outermost plain `block_on`'s future, reused by every
    /// such call while no clone of its waker survives (see
    /// `outermost_state()`). Never replaced, so calls read it without a
    /// `RefCell` borrow, whose counter, read and written twice per call,
    /// set the pace of back-to-back calls (10% of a call).
    outermost_state: Rc<BlockOnState>,
    /// Per depth, the state of the last other `block_on` there, reused by
    /// the next one when nothing else holds it (no allocation per call).
    state_cache: RefCell<Vec<Option<Rc<BlockOnState>>>>,
    /// The `block_on` futures of the frames, which live on their calls'
    /// stacks (see `block_on_table.rs`).
    pub(crate) block_ons: BlockOnTable,
    /// Every executor created on this thread, for its shutdown at thread
    /// exit (dead entries go when the next executor is created).
    registry: RefCell<Vec<Weak<Inner>>>,
    /// The executors of `registry` that own a tokio runtime.
    #[cfg(feature = "tokio")]
    runtimes: RefCell<Vec<Weak<Inner>>>,
    /// The GLib main context the loops wait in, kept alive by the
    /// executors built with it (`Builder::glib`).
    #[cfg(feature = "glib")]
    glib: RefCell<Weak<crate::reactor::glib::GlibContext>>,
    /// This thread's timers.
    pub(crate) timers: RefCell<TimerHeap>,
    /// The executor of the free functions outside any loop.
    default_executor: RefCell<Option<Executor>>,
    /// Whether work from another thread waits a moment before its poll.
    pub(crate) batch_pause: BatchPause,
    /// The thread is exiting: its executors are being shut down (see
    /// `exit`); loops wait the plain way, and always check for deadlocks.
    exiting: Cell<bool>,
}

impl Drop for ThreadState {
    fn drop(&mut self) {
        // Done by its owner already, while this state was still reachable
        // (see `slot.rs`); here for what was spawned since.
        self.exit();
        self.default_executor.get_mut().take();
    }
}

/// Runs `f` with this thread's state; `None` once it is gone (late in
/// thread exit).
#[inline]
pub(crate) fn try_with<R>(f: impl FnOnce(&ThreadState) -> R) -> Option<R> {
    slot::try_with(f)
}

/// Runs `f` with this thread's state; panics once it is gone (late in
/// thread exit).
#[inline]
pub(crate) fn with<R>(f: impl FnOnce(&ThreadState) -> R) -> R {
    try_with(f).unwrap_or_else(|| {
        panic!(
            "nestloop: this thread is exiting and its nestloop state is gone; \
             do not run or spawn nestloop work from thread-local destructors that run \
             after it (touch nestloop before creating such a thread-local, or finish the \
             work before the thread's main function returns)"
        )
    })
}

/// How many loops (`block_on` or `run_until_stalled` calls) the running
/// code is nested in; 0 outside any.
///
/// On the thread's own stack that is the number of calls in progress on
/// it. With fibers ([`Builder::fibers`](crate::Builder::fibers)) a task's
/// code runs on a fiber and sees the loops below that fiber (those of the
/// thread's stack when the fiber was made) plus the calls in progress on
/// the fiber itself: a task of the outermost loop sees 1, and inside its
/// helper's future 2, however many other helpers wait at once.
///
/// # Examples
///
/// ```
/// assert_eq!(nestloop::depth(), 0);
/// nestloop::block_on(async {
///     assert_eq!(nestloop::depth(), 1);
///     nestloop::block_on(async { assert_eq!(nestloop::depth(), 2) });
/// });
/// ```
pub fn depth() -> usize {
    try_with(ThreadState::depth).unwrap_or(0)
}

/// Approximate current stack pointer.
#[inline(always)]
pub(crate) fn stack_mark() -> usize {
    let marker = 0u8;
    std::hint::black_box(&marker) as *const u8 as usize
}

impl ThreadState {
    /// The state of a thread that has not run nestloop code yet.
    pub(super) fn new() -> Self {
        register_build();
        let signal = ThreadSignal::for_current_thread();
        ThreadState {
            users: Cell::new(0),
            here: Here::get(),
            outermost_state: new_block_on_state(&signal),
            signal,
            stack: StackState::new(),
            next_frame_id: Cell::new(0),
            fibers: Fibers::default(),
            queue: {
                let queue = ThreadQueue::new();
                queue.set_on_shutdown(fibers::cancel_fibers_of);
                queue
            },
            state_cache: RefCell::new(Vec::new()),
            block_ons: BlockOnTable::default(),
            registry: RefCell::new(Vec::new()),
            #[cfg(feature = "tokio")]
            runtimes: RefCell::new(Vec::new()),
            #[cfg(feature = "glib")]
            glib: RefCell::new(Weak::new()),
            timers: RefCell::new(TimerHeap::default()),
            default_executor: RefCell::new(None),
            batch_pause: BatchPause::default(),
            exiting: Cell::new(false),
        }
    }

    /// This thread's signal.
    pub(crate) fn signal(&self) -> &Arc<ThreadSignal> {
        &self.signal
    }

    /// Number of active loops on this stack, counting a deferred frame
    /// (which it leaves deferred).
    #[inline]
    pub(crate) fn depth(&self) -> usize {
        self.stack.info.get().base
            + self.stack.frames.borrow().len()
            + usize::from(self.stack.deferred.is_pending())
    }

    /// The frames, after pushing a deferred one.
    #[inline]
    fn frames(&self) -> std::cell::Ref<'_, Vec<Frame>> {
        self.push_deferred();
        self.stack.frames.borrow()
    }

    /// The frames for changing, after pushing a deferred one.
    #[inline]
    fn frames_mut(&self) -> std::cell::RefMut<'_, Vec<Frame>> {
        self.push_deferred();
        self.stack.frames.borrow_mut()
    }

    /// Pushes the deferred frame, if there is one: someone needs to see it.
    #[inline]
    pub(crate) fn push_deferred(&self) {
        if self.stack.deferred.is_pending() {
            self.push_deferred_now();
        }
    }

    /// See `push_deferred`.
    #[cold]
    #[inline(never)]
    fn push_deferred_now(&self) {
        if let Some((executor, stack_mark, location)) = self.stack.deferred.take() {
            self.push(&executor, stack_mark, LoopKind::BlockOn, location);
            if let Some(frame) = self.stack.frames.borrow_mut().last_mut() {
                frame.in_first_poll = true;
            }
        }
    }

    /// Runs `poll`, a plain `block_on`'s first poll of its future, with the
    /// call's frame deferred: pushed only if something looks for it (see
    /// `deferred.rs`), as most such futures are ready at once. `Ready`
    /// leaves no frame behind; `Pending` leaves it pushed, with its guard.
    #[inline(always)]
    pub(crate) fn poll_deferred<T>(
        &self,
        executor: &Executor,
        stack_mark: usize,
        location: &'static Location<'static>,
        poll: impl FnOnce() -> Poll<T>,
    ) -> Result<T, FrameGuard> {
        self.stack
            .deferred
            .lend(executor, stack_mark, location, || {
                let guard = DeferredGuard { ts: self };
                match poll() {
                    Poll::Ready(output) => Ok(output),
                    Poll::Pending => {
                        std::mem::forget(guard);
                        Err(self.first_poll_pending())
                    }
                }
            })
    }

    /// The first poll of a deferred frame's future returned `Pending`: the
    /// frame is pushed, its first poll is over, and its guard is returned.
    #[cold]
    fn first_poll_pending(&self) -> FrameGuard {
        let mut frames = self.frames_mut();
        let frame = frames
            .last_mut()
            .expect("nestloop: internal error: a deferred frame was not pushed");
        frame.in_first_poll = false;
        FrameGuard(frame.id)
    }

    /// The stack used since the innermost frame was entered (0 outside any
    /// loop): what one more level costs, as measured on the way here.
    #[inline]
    pub(crate) fn last_level_stack(&self, current_mark: usize) -> usize {
        let frames = self.frames();
        frames
            .last()
            .map_or(0, |f| f.stack_mark.saturating_sub(current_mark))
    }

    /// The position in this stack's frames of the frame at depth index
    /// `index` (frames below a fiber's `base` are on other stacks).
    fn on_this_stack_at(&self, index: usize) -> Option<usize> {
        index.checked_sub(self.stack.info.get().base)
    }

    /// Attaches the (now registered) future of the `block_on` at `index`.
    pub(crate) fn set_block_on(&self, index: usize, state: Rc<BlockOnState>) {
        let at = self.on_this_stack_at(index);
        let old = at.and_then(|at| self.frames_mut().get_mut(at)?.block_on.replace(state));
        drop(old);
    }

    /// Pushes a loop frame; the guard pops it.
    pub(crate) fn push_frame(
        &self,
        executor: &Executor,
        stack_mark: usize,
        kind: LoopKind,
        location: &'static Location<'static>,
    ) -> FrameGuard {
        self.push_deferred();
        FrameGuard(self.push(executor, stack_mark, kind, location))
    }

    /// Pushes a loop frame (none deferred) and returns its id.
    fn push(
        &self,
        executor: &Executor,
        stack_mark: usize,
        kind: LoopKind,
        location: &'static Location<'static>,
    ) -> FrameId {
        let id = FrameId(self.next_frame_id.get());
        self.next_frame_id.set(id.0 + 1);
        let mut frames = self.stack.frames.borrow_mut();
        if !frames.is_empty() {
            // Outer `block_on` futures woken before this call may have had their wake
            // noted (and skipped) by their own loop: let the new loop look.
            self.signal.note_block_ons_woken();
        }
        let interruptible = kind == LoopKind::TryBlockOn;
        frames.push(Frame {
            id,
            executor: executor.clone(),
            block_on: None,
            kind,
            location,
            caller: sched::poll_target(),
            in_first_poll: false,
            stack_mark,
            interrupt_epoch: interruptible.then(|| executor.inner.shared.interrupt_epoch()),
        });
        id
    }

    /// Pops frame `id`, the innermost of this stack: frames of one stack
    /// end in the reverse order they began, as their calls return or
    /// unwind. A frame that is not the innermost is removed all the same
    /// (and is an internal error in debug builds).
    fn pop_frame(&self, id: FrameId) {
        let frame = {
            let mut frames = self.frames_mut();
            match frames.last() {
                Some(top) if top.id == id => frames.pop(),
                _ => {
                    debug_assert!(
                        false,
                        "nestloop: internal error: frame {id:?} ended while not the innermost"
                    );
                    let at = frames.iter().rposition(|f| f.id == id);
                    at.map(|at| frames.remove(at))
                }
            }
        };
        // `frame` (an executor handle, maybe the last one) drops here, after
        // the borrow is released.
        drop(frame);
    }

    /// Whether the task `origin` is being polled on this stack: the poll
    /// running now, or one that made a loop of this stack.
    pub(crate) fn on_this_stack(&self, origin: Origin) -> bool {
        let task = PollTarget::Task(origin);
        sched::poll_target() == task || self.frames().iter().any(|f| f.caller == task)
    }

    /// The innermost `try_block_on` frame whose executor was interrupted
    /// since the frame began.
    pub(crate) fn interrupt_target(&self) -> Option<usize> {
        let at = self.frames().iter().rposition(Frame::is_interrupted)?;
        Some(self.stack.info.get().base + at)
    }

    /// Whether a `try_block_on` frame on the stack has an executor with a
    /// live `InterruptHandle`: an interrupt may still end the loops above
    /// it (R9 counts it as a way out).
    pub(crate) fn interrupt_may_come(&self) -> bool {
        // Also those of the stacks that resumed this fiber (R12).
        self.with_all_frames(|mut frames| {
            Iterator::any(&mut frames, |f| {
                f.interrupt_epoch.is_some() && f.executor.inner.shared.has_interrupt_handles()
            })
        })
    }

    /// Whether frame `index` is a `try_block_on` frame whose executor was
    /// interrupted since it began.
    pub(crate) fn is_interrupted(&self, index: usize) -> bool {
        let Some(at) = self.on_this_stack_at(index) else {
            return false;
        };
        self.frames().get(at).is_some_and(Frame::is_interrupted)
    }

    /// Delivers the interrupt to frame `index`: every `try_block_on` frame of
    /// its executor has now seen it, so one interrupt ends one call.
    pub(crate) fn consume_interrupt(&self, index: usize) {
        let Some(at) = self.on_this_stack_at(index) else {
            return;
        };
        let mut frames = self.frames_mut();
        let Some(target) = frames.get(at) else {
            return;
        };
        let inner = target.executor.inner.clone();
        let epoch = inner.shared.interrupt_epoch();
        for f in frames.iter_mut() {
            if f.interrupt_epoch.is_some() && Rc::ptr_eq(&f.executor.inner, &inner) {
                f.interrupt_epoch = Some(epoch);
            }
        }
    }
}

/// Lists this build in the process's list of builds (once per copy): when
/// the copy makes a thread's state, and before a loop of the copy waits (a
/// copy that shares another copy's state never makes one).
pub(crate) fn register_build() {
    crate::thread_context::register_build(waiting_here);
}

/// How many tasks and timers of this build wait on the calling thread, for
/// the loops of other nestloop builds loaded in the process, which cannot
/// run them (see `thread_context::other_builds_waiting_here`): 0 where
/// this build has no state on the thread.
fn waiting_here() -> usize {
    slot::try_with_made(|ts| {
        let queue = ts.queue();
        let timers = ts.timers.try_borrow_mut().map_or(0, |mut timers| {
            usize::from(timers.next_deadline().is_some())
        });
        usize::from(!queue.is_empty()) + usize::from(queue.has_remote()) + timers
    })
    .unwrap_or(0)
}

/// Pops its frame on return or unwind.
#[derive(Debug)]
pub(crate) struct FrameGuard(FrameId);

impl Drop for FrameGuard {
    #[inline]
    fn drop(&mut self) {
        try_with(|ts| ts.pop_frame(self.0));
    }
}

/// Ends a deferred frame (see `ThreadState::poll_deferred`) on return or
/// unwind: pops it if it was pushed meanwhile.
struct DeferredGuard<'a> {
    /// This thread's state.
    ts: &'a ThreadState,
}

impl Drop for DeferredGuard<'_> {
    #[inline]
    fn drop(&mut self) {
        if !self.ts.stack.deferred.is_pending() {
            self.ts.pop_deferred_frame();
        }
    }
}

impl ThreadState {
    /// Pops the frame pushed for a deferred first poll that returned or
    /// unwound: the innermost, the one still in its first poll.
    #[cold]
    fn pop_deferred_frame(&self) {
        let id = self.stack.frames.borrow().last().map(|f| {
            debug_assert!(
                f.in_first_poll,
                "nestloop: internal error: a deferred frame ended while not the innermost"
            );
            f.id
        });
        if let Some(id) = id {
            self.pop_frame(id);
        }
    }
}
