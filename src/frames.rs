//! The per-thread state behind nesting: the stack of active loop frames, the
//! executors those frames drive, and every executor created on the thread.
//!
//! A frame is pushed by each `block_on` and `run_until_stalled` call and
//! popped by a guard when it returns or unwinds, so `depth()` is always the
//! number of loops on the stack. A nested loop reads the frames below it to
//! find the executors whose queues it must drive (R1, R6) and the `block_on`
//! futures it may poll when they are woken (R3).

use std::cell::{Cell, RefCell};
use std::rc::{Rc, Weak};
use std::sync::Arc;
use std::task::{Poll, Waker};

use crate::executor::{Executor, Inner, Shared};
use crate::park::{BatchPause, RootWaker, ThreadSignal};
use crate::raw::{self, LentExecutor, RootId};
use crate::sync::thread_locals;
use crate::time::TimerHeap;

/// The state of a `block_on` future that other loops may need.
#[derive(Debug)]
pub(crate) struct RootState {
    /// Where the future itself is reachable (see `raw::poll_root`).
    pub(crate) id: Cell<RootId>,
    /// Its waker; strong count 2 (this and `handle`) means no clone exists.
    pub(crate) waker: Arc<RootWaker>,
    /// The same waker as a `Waker`, lent to each poll.
    pub(crate) handle: Waker,
    /// The future has finished (value or panic); its `block_on` returns as
    /// soon as control is back there.
    pub(crate) done: Cell<bool>,
}

impl RootState {
    /// Readies a state for the next `block_on` at its depth, if nothing
    /// else holds it: no frame (its `Rc` is unique) and no clone of its
    /// waker (one would carry an old wake over, and would hide a deadlock
    /// from R9's count). Returns false, leaving it alone, otherwise.
    #[inline]
    fn reuse(self: &Rc<Self>) -> bool {
        if Rc::strong_count(self) != 1 || Arc::strong_count(&self.waker) != 2 {
            return false;
        }
        self.done.set(false);
        self.waker.clear_woken();
        true
    }
}

/// One active loop.
#[derive(Debug)]
struct Frame {
    /// The executor whose `block_on` or `run_until_stalled` this is.
    executor: Executor,
    /// The `block_on` future, or `None` for `run_until_stalled`.
    root: Option<Rc<RootState>>,
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

/// An executor created on this thread, found by its shared part's address
/// when a waker on this thread wants its local queue.
#[derive(Debug)]
struct Registered {
    /// Address of the executor's `Shared`.
    shared: *const Shared,
    /// The executor itself.
    inner: Weak<Inner>,
}

/// Everything nestloop keeps per thread.
pub(crate) struct ThreadState {
    /// Unparks this thread; shared with wakers and executors.
    signal: Arc<ThreadSignal>,
    /// The active loops, outermost first. Read through `frames()` and
    /// `frames_mut()`, which push a lazy frame first.
    frames: RefCell<Vec<Frame>>,
    /// The executor of the innermost plain `block_on` while it polls its
    /// future for the first time, its frame not pushed yet: most such
    /// futures are ready at once, and then nothing ever reads the frame.
    /// Anything that reads or pushes frames pushes it first
    /// (`materialize`), so at most one frame is pending, the innermost.
    lazy: LentExecutor,
    /// Approximate stack pointer when that call began (R10).
    lazy_mark: Cell<usize>,
    /// Distinct executors with at least one frame (each counts its frames
    /// in `Inner::loops`).
    active: RefCell<Vec<Executor>>,
    /// The executors of `active`, as a snapshot loops can hold while they
    /// run user code. Emptied whenever `active` changes (so a stale snapshot
    /// never keeps an executor alive) and rebuilt when a loop next asks.
    active_snapshot: Cell<Option<Rc<[Executor]>>>,
    /// The state of the outermost plain `block_on`'s future, reused by every
    /// such call while no clone of its waker survives (see
    /// `outermost_root()`). Never replaced, so calls read it without a
    /// `RefCell` borrow, whose counter, read and written twice per call,
    /// set the pace of back-to-back calls (10% of a call).
    outermost_root: Rc<RootState>,
    /// Per depth, the state of the last other `block_on` there, reused by
    /// the next one when nothing else holds it (no allocation per call).
    root_cache: RefCell<Vec<Option<Rc<RootState>>>>,
    /// Every live executor created on this thread.
    registry: RefCell<Vec<Registered>>,
    /// This thread's timers.
    pub(crate) timers: RefCell<TimerHeap>,
    /// The executor of the free functions outside any loop.
    default_executor: RefCell<Option<Executor>>,
    /// Whether work from another thread waits a moment before its poll.
    pub(crate) batch_pause: BatchPause,
    /// The thread is exiting: its executors are being shut down, and loops
    /// run no tasks (see `exit`).
    exiting: Cell<bool>,
}

impl Drop for ThreadState {
    fn drop(&mut self) {
        // Normally done by `ExitGuard` already, while this state was still
        // reachable; here for what was spawned since, and for threads whose
        // thread-locals are destroyed in another order.
        self.exit();
        self.default_executor.get_mut().take();
    }
}

/// Shuts the thread's executors down at thread exit while the thread's
/// state is still reachable (its destructor runs before `STATE`'s, having
/// been registered after it): destructors of the tasks' futures may then
/// call `spawn` (the handle resolves to cancelled) and `block_on` (it runs
/// if its future needs no task; see `ThreadState::exit`).
#[derive(Debug)]
struct ExitGuard;

impl Drop for ExitGuard {
    fn drop(&mut self) {
        try_with(ThreadState::exit);
    }
}

thread_locals! {
    /// The executor owning the task or root being polled right now.
    static OWNER: Cell<*const Inner> = const { Cell::new(std::ptr::null()) };

    /// Everything else.
    static STATE: ThreadState = ThreadState::new();

    /// Runs the thread-exit shutdown before `STATE` is destroyed; touched
    /// once `STATE` exists (see `ExitGuard`).
    static EXIT: ExitGuard = const { ExitGuard };
}

/// Registers the thread-exit shutdown (`ExitGuard`); call only once `STATE`
/// is initialized. Thread-locals are destroyed in the reverse order of their
/// first use, so `EXIT`'s destructor runs before those of `STATE` and the
/// root table, which the shutdown uses.
fn arm_exit_guard() {
    raw::init_roots();
    let _ = EXIT.try_with(|_| ());
}

/// Runs `f` with this thread's state; `None` while the thread is exiting.
#[inline]
pub(crate) fn try_with<R>(f: impl FnOnce(&ThreadState) -> R) -> Option<R> {
    STATE.try_with(f).ok()
}

/// Runs `f` with this thread's state; panics while the thread is exiting.
#[inline]
pub(crate) fn with<R>(f: impl FnOnce(&ThreadState) -> R) -> R {
    try_with(f).unwrap_or_else(|| {
        panic!(
            "nestloop: this thread is exiting and its nestloop state is gone; \
             do not run or spawn nestloop work from thread-local destructors"
        )
    })
}

/// How many loops are active on this thread.
#[inline]
pub(crate) fn depth() -> usize {
    try_with(ThreadState::depth).unwrap_or(0)
}

/// Whether the thread is exiting and its executors are being shut down.
#[inline]
pub(crate) fn is_exiting() -> bool {
    try_with(ThreadState::is_exiting).unwrap_or(false)
}

/// Approximate current stack pointer.
#[inline(always)]
pub(crate) fn stack_mark() -> usize {
    let marker = 0u8;
    std::hint::black_box(&marker) as *const u8 as usize
}

impl ThreadState {
    /// The state of a thread that has not run nestloop code yet.
    fn new() -> Self {
        let signal = ThreadSignal::for_current_thread();
        ThreadState {
            outermost_root: new_root_state(&signal),
            signal,
            frames: RefCell::new(Vec::new()),
            lazy: LentExecutor::new(),
            lazy_mark: Cell::new(0),
            active: RefCell::new(Vec::new()),
            active_snapshot: Cell::new(None),
            root_cache: RefCell::new(Vec::new()),
            registry: RefCell::new(Vec::new()),
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

    /// Number of active loops.
    #[inline]
    pub(crate) fn depth(&self) -> usize {
        self.frames().len()
    }

    /// The frames, after pushing a lazy one.
    #[inline]
    fn frames(&self) -> std::cell::Ref<'_, Vec<Frame>> {
        self.materialize();
        self.frames.borrow()
    }

    /// The frames for changing, after pushing a lazy one.
    #[inline]
    fn frames_mut(&self) -> std::cell::RefMut<'_, Vec<Frame>> {
        self.materialize();
        self.frames.borrow_mut()
    }

    /// Pushes the lazy frame, if there is one: someone needs to see it.
    #[inline]
    pub(crate) fn materialize(&self) {
        if self.lazy.is_lent() {
            self.push_lazy_now();
        }
    }

    /// See `materialize`.
    #[cold]
    #[inline(never)]
    fn push_lazy_now(&self) {
        if let Some(executor) = self.lazy.take() {
            self.push(&executor, self.lazy_mark.get(), false);
        }
    }

    /// The root state of an outermost plain `block_on`, if no loop runs on
    /// this thread and the thread's own state is free: no frame holds it
    /// (no loop runs) and no clone of its waker survived an earlier call.
    /// `None` otherwise: the call is nested, or takes a state from the
    /// cache (`root_state`) until that clone is gone.
    #[inline(always)]
    pub(crate) fn outermost_root(&self) -> Option<&Rc<RootState>> {
        if self.lazy.is_lent() || !self.frames.borrow().is_empty() {
            return None;
        }
        let state = &self.outermost_root;
        state.reuse().then_some(state)
    }

    /// Runs `poll`, a plain `block_on`'s first poll of its future, with the
    /// call's frame deferred: pushed only if something looks for it (see
    /// `lazy`), as most such futures are ready at once. `Ready` leaves no
    /// frame behind; `Pending` leaves it pushed, with its guard.
    #[inline(always)]
    pub(crate) fn first_poll<T>(
        &self,
        executor: &Executor,
        stack_mark: usize,
        poll: impl FnOnce() -> Poll<T>,
    ) -> Result<T, FrameGuard> {
        self.lazy_mark.set(stack_mark);
        self.lazy.lend(executor, || {
            let guard = LazyGuard { ts: self };
            match poll() {
                Poll::Ready(output) => Ok(output),
                Poll::Pending => {
                    std::mem::forget(guard);
                    self.materialize();
                    Err(FrameGuard(()))
                }
            }
        })
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

    /// Attaches the (now registered) root of the `block_on` at `index`.
    pub(crate) fn set_root(&self, index: usize, root: Rc<RootState>) {
        let old = self.frames_mut()[index].root.replace(root);
        drop(old);
    }

    /// Pushes a loop frame; the guard pops it.
    pub(crate) fn push_frame(
        &self,
        executor: &Executor,
        stack_mark: usize,
        interruptible: bool,
    ) -> FrameGuard {
        self.materialize();
        self.push(executor, stack_mark, interruptible);
        FrameGuard(())
    }

    /// Pushes a loop frame (no lazy one pending).
    fn push(&self, executor: &Executor, stack_mark: usize, interruptible: bool) {
        let mut frames = self.frames.borrow_mut();
        if !frames.is_empty() {
            // Outer roots woken before this call may have had their wake
            // noted (and skipped) by their own loop: let the new loop look.
            self.signal.note_roots_woken();
        }
        frames.push(Frame {
            executor: executor.clone(),
            root: None,
            stack_mark,
            interrupt_epoch: interruptible.then(|| executor.inner.shared.interrupt_epoch()),
        });
        drop(frames);
        let loops = executor.inner.loops.get();
        executor.inner.loops.set(loops + 1);
        if loops == 0 {
            self.active.borrow_mut().push(executor.clone());
            let stale = self.active_snapshot.take();
            drop(stale);
        }
    }

    fn pop_frame(&self) {
        let frame = self.frames_mut().pop();
        let Some(frame) = frame else { return };
        let inner = &frame.executor.inner;
        let loops = inner.loops.get() - 1;
        inner.loops.set(loops);
        if loops == 0 {
            let removed = {
                let mut active = self.active.borrow_mut();
                let pos = active.iter().position(|e| Rc::ptr_eq(&e.inner, inner));
                pos.map(|pos| active.remove(pos))
            };
            // A stale snapshot must not keep the executor alive.
            let stale = self.active_snapshot.take();
            drop(stale);
            drop(removed);
        }
        // `frame` (an executor handle, maybe the last one) drops here, after
        // every borrow is released.
    }

    /// The executors every loop on this thread drives: those that have a
    /// loop on this thread, and the thread's default executor (R1: it
    /// belongs to the thread, as asyncio has one loop per thread).
    /// None while the thread exits: their tasks are being shut down.
    #[inline]
    pub(crate) fn active_executors(&self) -> Rc<[Executor]> {
        self.materialize();
        let snapshot = self
            .active_snapshot
            .take()
            .unwrap_or_else(|| self.snapshot_active());
        self.active_snapshot.set(Some(snapshot.clone()));
        snapshot
    }

    /// See `active_executors`.
    #[cold]
    fn snapshot_active(&self) -> Rc<[Executor]> {
        if self.exiting.get() {
            return Rc::new([]);
        }
        let active = self.active.borrow();
        let default = self.default_executor.borrow();
        let default = default
            .as_ref()
            .filter(|d| !active.iter().any(|e| e.ptr_eq(d)));
        active.iter().chain(default).cloned().collect()
    }

    /// The state for a `block_on` at `depth` (its future not registered
    /// yet, not woken: about to be polled): the cached one when nothing
    /// else holds it (no clone of its waker exists, so reusing it cannot
    /// carry an old wake over), else a new one.
    #[inline]
    pub(crate) fn root_state(&self, depth: usize) -> Rc<RootState> {
        let mut cache = self.root_cache.borrow_mut();
        if cache.len() <= depth {
            grow(&mut cache, depth + 1);
        }
        let slot = &mut cache[depth];
        if let Some(state) = slot
            && state.reuse()
        {
            return state.clone();
        }
        let state = new_root_state(&self.signal);
        // The replaced state (if any) is still held elsewhere: not dropped
        // here.
        *slot = Some(state.clone());
        state
    }

    /// The first woken, unfinished root at or above frame `*index` that is
    /// not on the stack and is not `skip`, with its executor; advances
    /// `*index` past it. Frames below the caller's stay put while it polls
    /// the root, so the caller can walk them all this way.
    pub(crate) fn next_woken_root(
        &self,
        index: &mut usize,
        skip: Option<&Rc<RootState>>,
    ) -> Option<(Executor, Rc<RootState>)> {
        let frames = self.frames();
        while let Some(frame) = frames.get(*index) {
            *index += 1;
            let Some(root) = frame.root.as_ref() else {
                continue;
            };
            if skip.is_some_and(|s| Rc::ptr_eq(s, root))
                || root.done.get()
                || !root.waker.is_woken()
                || raw::is_busy(root.id.get())
            {
                continue;
            }
            return Some((frame.executor.clone(), root.clone()));
        }
        None
    }

    /// The innermost `try_block_on` frame whose executor was interrupted
    /// since the frame began.
    pub(crate) fn interrupt_target(&self) -> Option<usize> {
        self.frames().iter().rposition(Frame::is_interrupted)
    }

    /// Whether frame `index` is a `try_block_on` frame whose executor was
    /// interrupted since it began.
    pub(crate) fn is_interrupted(&self, index: usize) -> bool {
        self.frames().get(index).is_some_and(Frame::is_interrupted)
    }

    /// Delivers the interrupt to frame `index`: every `try_block_on` frame of
    /// its executor has now seen it, so one interrupt ends one call.
    pub(crate) fn consume_interrupt(&self, index: usize) {
        let mut frames = self.frames_mut();
        let Some(target) = frames.get(index) else {
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

    /// `Executor::current()`.
    pub(crate) fn current(&self) -> Option<Executor> {
        self.materialize();
        let owner = OWNER.with(Cell::get);
        if !owner.is_null() {
            // The owner of what is being polled has a frame, or is the
            // default executor (only those executors' tasks and futures are
            // polled).
            let is_owner = |e: &&Executor| std::ptr::eq(Rc::as_ptr(&e.inner), owner);
            let found = self.active.borrow().iter().find(is_owner).cloned();
            if found.is_some() {
                return found;
            }
            let default = self
                .default_executor
                .borrow()
                .as_ref()
                .filter(is_owner)
                .cloned();
            if default.is_some() {
                return default;
            }
        }
        self.frames().last().map(|f| f.executor.clone())
    }

    /// This thread's default executor, created on first use.
    pub(crate) fn default_executor(&self) -> Executor {
        self.default_executor
            .borrow_mut()
            .get_or_insert_with(Executor::new)
            .clone()
    }

    /// Whether the thread is exiting (see `exit`).
    pub(crate) fn is_exiting(&self) -> bool {
        self.exiting.get()
    }

    /// Thread exit: shuts down the default executor and any executor kept
    /// alive by a cycle (a task holding a clone of its executor), so no
    /// future outlives its thread. From here on loops run no tasks: a task
    /// spawned by a destructor now lands on an executor being shut down, and
    /// its handle resolves to cancelled; a `block_on` runs only what needs
    /// no task (its future, timers, wakes from other threads), and reports
    /// it if it waits for a task (see `run_loop::check_deadlock`).
    fn exit(&self) {
        self.exiting.set(true);
        let stale = self.active_snapshot.take();
        drop(stale);
        let default = self.default_executor.borrow().clone();
        if let Some(default) = default {
            default.shutdown();
        }
        for inner in self.registered() {
            inner.shutdown();
        }
    }

    /// Every live executor created on this thread.
    pub(crate) fn registered(&self) -> Vec<Rc<Inner>> {
        let registry = self.registry.borrow();
        registry.iter().filter_map(|r| r.inner.upgrade()).collect()
    }

    /// Records a new executor of this thread.
    pub(crate) fn register(&self, inner: &Rc<Inner>) {
        arm_exit_guard();
        let mut registry = self.registry.borrow_mut();
        registry.retain(|r| r.inner.strong_count() > 0);
        registry.push(Registered {
            shared: Arc::as_ptr(&inner.shared),
            inner: Rc::downgrade(inner),
        });
    }

    /// Forgets an executor that is going away.
    pub(crate) fn unregister(&self, shared: *const Shared) {
        if let Ok(mut registry) = self.registry.try_borrow_mut() {
            registry.retain(|r| r.shared != shared);
        }
    }

    /// The executor of this thread whose shared part is `shared`, if it is
    /// still alive.
    pub(crate) fn executor_for(&self, shared: &Shared) -> Option<Rc<Inner>> {
        let registry = self.registry.try_borrow().ok()?;
        registry
            .iter()
            .find(|r| std::ptr::eq(r.shared, shared))?
            .inner
            .upgrade()
    }
}

/// A fresh root state for a `block_on` of this thread.
#[cold]
fn new_root_state(signal: &Arc<ThreadSignal>) -> Rc<RootState> {
    let waker = Arc::new(RootWaker::new(signal.clone()));
    Rc::new(RootState {
        id: Cell::new(RootId::UNREGISTERED),
        handle: crate::raw::root_waker(waker.clone()),
        waker,
        done: Cell::new(false),
    })
}

/// Makes room in the root-state cache for a new depth.
#[cold]
fn grow(cache: &mut Vec<Option<Rc<RootState>>>, len: usize) {
    cache.resize(len, None);
}

/// Pops its frame on return or unwind.
#[derive(Debug)]
pub(crate) struct FrameGuard(());

impl Drop for FrameGuard {
    #[inline]
    fn drop(&mut self) {
        try_with(ThreadState::pop_frame);
    }
}

/// Ends a deferred frame (see `ThreadState::first_poll`) on return or
/// unwind: pops it if it was pushed meanwhile.
struct LazyGuard<'a> {
    /// This thread's state.
    ts: &'a ThreadState,
}

impl Drop for LazyGuard<'_> {
    #[inline]
    fn drop(&mut self) {
        if !self.ts.lazy.is_lent() {
            self.ts.pop_frame();
        }
    }
}

/// Marks `inner` as the owner of what is polled until the guard drops.
#[inline]
pub(crate) fn enter_owner(inner: &Inner) -> OwnerGuard {
    OwnerGuard {
        previous: OWNER.with(|o| o.replace(inner as *const Inner)),
    }
}

/// Restores the previous owner (see `enter_owner`).
#[derive(Debug)]
pub(crate) struct OwnerGuard {
    /// The value to restore.
    previous: *const Inner,
}

impl Drop for OwnerGuard {
    #[inline]
    fn drop(&mut self) {
        OWNER.with(|o| o.set(self.previous));
    }
}
