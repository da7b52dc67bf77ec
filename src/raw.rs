//! The only module with `unsafe` code.
//!
//! It holds the things whose safety rests on invariants that the borrow
//! checker cannot see:
//!
//! * Tasks: one allocation per task, a [`Header`] (state word with the
//!   reference count, the vtable of the future's type, the way back to the
//!   executor, the awaiter's waker) followed by the cell that holds the
//!   future and then its result. Queues, the executor's task list, wakers
//!   and handles all hold thin pointers to it ([`TaskRef`]); the count in the
//!   state word frees it, so several transitions that a separate reference
//!   count would need two atomic operations for take one. The future may be
//!   `!Send`, yet wakers that point at the task are `Send + Sync`; the
//!   state word's `RUNNING` bit and an owner-thread check make every access
//!   to the future exclusive and on the right thread.
//!   Around them: the executor's task list and local run queue, linked
//!   through the tasks ([`TaskList`], [`RunQueue`]); the tasks' counted
//!   holds on their executor's shared part ([`SharedHold`]); the awaiter's
//!   waker in one word ([`AwaiterSlot`]) behind a lock bit
//!   ([`AwaiterGuard`]).
//! * The root table: `block_on` futures live on the stack of the `block_on`
//!   call that owns them, yet a nested loop further up the stack must be able
//!   to poll them (rule R3). They are reached through lifetime-erased pointers
//!   that a guard removes before the owning call returns or unwinds.
//! * [`LentExecutor`]: a `block_on`'s executor, lent by pointer to the
//!   thread's state while its frame is deferred.
//!
//! Everything here exposes a safe API; the rest of the crate has
//! `#![deny(unsafe_code)]`.
#![allow(unsafe_code)]

use std::cell::{Cell, RefCell};
use std::future::Future;
use std::marker::PhantomData;
use std::mem::{self, ManuallyDrop};
use std::pin::Pin;
use std::ptr::NonNull;
use std::sync::Arc;
use std::task::{Context, Poll, RawWaker, RawWakerVTable, Waker};

use crate::executor::{Executor, Inner, Shared};
use crate::join::JoinError;
use crate::park::RootWaker;
use crate::sync::{AtomicUsize, Ordering, UnsafeCell, thread_locals};
use crate::task;

/// In a run queue, or to be queued again when the current poll returns.
pub(crate) const SCHEDULED: usize = 1 << 0;
/// Polled (or dropped) right now: whoever set it has the future to itself.
pub(crate) const RUNNING: usize = 1 << 1;
/// The future is gone and the result is stored (or was taken).
pub(crate) const COMPLETED: usize = 1 << 2;
/// `abort()` was called; honoured when the task is next claimed.
pub(crate) const CANCELLED: usize = 1 << 3;
/// A `JoinHandle` for the task exists.
pub(crate) const HANDLE: usize = 1 << 4;
/// The result was taken by the handle or dropped.
pub(crate) const TAKEN: usize = 1 << 5;
/// The `JoinHandle` registered a waker to wake at completion.
pub(crate) const AWAITER: usize = 1 << 6;
/// The future is `Send`: it may be dropped on any thread (set at creation
/// for tasks of a `Spawner`, which may be cancelled before the owner thread
/// ever sees them).
const SEND_FUTURE: usize = 1 << 7;
/// Spawned from another thread and not yet adopted into its executor's
/// task list (set at creation, cleared on the owner thread by adoption).
const UNADOPTED: usize = 1 << 8;
/// The awaiter's slot is locked (see `Header::lock_awaiter`).
const AWAITER_LOCK: usize = 1 << 9;
/// The stored result is an error (set together with `COMPLETED`).
const FAILED: usize = 1 << 10;
/// One reference; the count is the state word's bits above the flags.
const REF_ONE: usize = 1 << 11;
/// The reference-count bits.
const REF_MASK: usize = !(REF_ONE - 1);

/// What a task's cell holds over its life, one at a time in the same
/// bytes. The state word says which (no tag of its own, so a task of a
/// small future with a small output spends 8 bytes here, not 16):
///
/// * not `COMPLETED`: the `future` (from `Task::allocate` until
///   `Running::drop_future`, after which only `Running::complete` touches
///   the cell);
/// * `COMPLETED`: the result, `error` if `FAILED` else `output`, until it is
///   moved out (`TaskCell::take_stage_result`); a task is never freed with
///   its result still inside (a handle takes it or drops it, and without a
///   handle `complete` hands it back).
union Stage<F: Future> {
    /// The future.
    future: ManuallyDrop<F>,
    /// The output.
    output: ManuallyDrop<F::Output>,
    /// The task panicked or was cancelled.
    error: ManuallyDrop<JoinError>,
}

/// The operations that depend on the future's type (see `crate::task`).
struct VTable {
    /// Polls the task once; takes the caller's reference.
    run: fn(TaskRef, &Inner) -> bool,
    /// Cancels the task at shutdown; takes the caller's reference.
    shut_down: fn(TaskRef, &Inner) -> bool,
    /// Cancels a task whose executor is gone; takes the caller's reference.
    cancel_orphan: fn(TaskRef) -> bool,
    /// `abort()`.
    abort: fn(&TaskRef),
    /// The `JoinHandle` goes away; takes its reference.
    drop_handle: fn(TaskRef),
    /// Takes the result into `*out` (a `Poll<Result<F::Output, JoinError>>`)
    /// or registers the awaiter. Returns true when it used up the handle's
    /// reference (see `Task::take_last`).
    poll_join: unsafe fn(&TaskRef, *mut (), &mut Context<'_>) -> bool,
    /// Frees the allocation; the reference count is zero.
    dealloc: unsafe fn(NonNull<Header>),
}

/// The part of a task that does not depend on the future's type, at the
/// start of its allocation.
pub(crate) struct Header {
    /// Flags (the constants above) and the reference count.
    state: AtomicUsize,
    /// The operations for this task's future type.
    vtable: &'static VTable,
    /// The executor's thread-safe side, where wakes go. Released by
    /// `dealloc`, which knows whether it can go back to a reserve.
    pub(crate) shared: ManuallyDrop<SharedHold>,
    /// Neighbours in the executor's task list (see `TaskList`); only the
    /// owner thread touches them.
    links: UnsafeCell<Links>,
    /// The task after it in its executor's local run queue (see
    /// `RunQueue`); only the owner thread touches it.
    queue_next: UnsafeCell<QueueNext>,
    /// The waker of whoever awaits the `JoinHandle`, behind the state
    /// word's `AWAITER_LOCK` bit (a lock rather than an `AtomicWaker`, so
    /// the deadlock check can see whose waker it is; a bit rather than a
    /// mutex, and one word rather than a `Waker`'s two, to keep the header
    /// small).
    awaiter: UnsafeCell<AwaiterSlot>,
}

/// A task's allocation: the header, then the future-then-result cell.
#[repr(C)]
pub(crate) struct TaskCell<F: Future> {
    /// Must stay first: a `TaskRef` points at it.
    header: Header,
    /// The future, then the result.
    stage: UnsafeCell<Stage<F>>,
}

impl Header {
    /// The current state bits.
    #[inline]
    pub(crate) fn state(&self) -> usize {
        self.state.load(Ordering::Acquire)
    }

    /// Whether the task was ever in its executor's task list (false only
    /// for a task spawned from another thread and not yet adopted).
    #[inline]
    pub(crate) fn is_adopted(&self) -> bool {
        self.state.load(Ordering::Acquire) & UNADOPTED == 0
    }

    /// Whether the thread `here` may touch the future: it is the owner, or
    /// the future is `Send`.
    #[inline]
    fn may_touch(&self, here: Option<ThisThread>) -> bool {
        here.is_some_and(|t| t.owns(&self.shared))
            || self.state.load(Ordering::Relaxed) & SEND_FUTURE != 0
    }

    /// Adds a reference.
    #[inline]
    fn inc_ref(&self) {
        let prev = self.state.fetch_add(REF_ONE, Ordering::Relaxed);
        if prev > isize::MAX as usize {
            std::process::abort(); // billions of wakers: a leak somewhere
        }
    }

    /// Marks the task scheduled. Returns true when the caller must put it in
    /// a run queue, with the reference for the queue already added: it was
    /// neither queued, running nor completed. A wake while it runs only sets
    /// the bit; `Running::suspend` then requeues it.
    #[inline]
    fn schedule_by_ref(&self) -> bool {
        let mut s = self.state.load(Ordering::Acquire);
        loop {
            if s & (SCHEDULED | COMPLETED) != 0 {
                return false;
            }
            let queue = s & RUNNING == 0;
            let next = if queue {
                (s | SCHEDULED) + REF_ONE
            } else {
                s | SCHEDULED
            };
            match self
                .state
                .compare_exchange_weak(s, next, Ordering::AcqRel, Ordering::Acquire)
            {
                Ok(_) => return queue,
                Err(actual) => s = actual,
            }
        }
    }

    /// Like `schedule_by_ref`, for a wake that owns a reference: either
    /// that reference goes to a run queue, or it is released here.
    #[inline]
    fn schedule_owned(&self) -> Owned {
        let mut s = self.state.load(Ordering::Acquire);
        loop {
            let (next, queue) = if s & (SCHEDULED | COMPLETED) != 0 {
                (s - REF_ONE, false)
            } else if s & RUNNING == 0 {
                (s | SCHEDULED, true)
            } else {
                ((s | SCHEDULED) - REF_ONE, false)
            };
            match self
                .state
                .compare_exchange_weak(s, next, Ordering::AcqRel, Ordering::Acquire)
            {
                Ok(_) if queue => return Owned::Queue,
                Ok(_) => return Owned::Released(next),
                Err(actual) => s = actual,
            }
        }
    }

    /// Whether the task may still be woken by something outside its
    /// executor: it is queued, or it is idle (neither running nor
    /// completed) with more references than its executor's task list and
    /// its `JoinHandle` hold, so a waker of it exists somewhere (or an
    /// `AbortHandle`, which counts the same: it can end the task). No waker
    /// of an idle task can be made before it runs again, so a `false` stays
    /// `false` until then (R9).
    pub(crate) fn may_be_woken(&self) -> bool {
        let s = self.state.load(Ordering::Acquire);
        if s & (COMPLETED | RUNNING) != 0 {
            return false;
        }
        if s & SCHEDULED != 0 {
            return true;
        }
        let held = 1 + usize::from(s & HANDLE != 0);
        (s & REF_MASK) > held * REF_ONE
    }

    /// Records an abort request. Returns the previous state, or `None` when
    /// the task had already completed (the abort is then a no-op).
    pub(crate) fn request_cancel(&self) -> Option<usize> {
        self.state
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |s| {
                (s & COMPLETED == 0).then_some(s | CANCELLED)
            })
            .ok()
    }

    /// Locks the awaiter's slot. It is held only to move a waker in or out
    /// or to compare one, never across user code (cloning, waking or
    /// dropping a waker happens outside), so waiting for it is a short spin.
    #[inline]
    pub(crate) fn lock_awaiter(&self) -> AwaiterGuard<'_> {
        let mut s = self.state.load(Ordering::Relaxed);
        loop {
            if s & AWAITER_LOCK != 0 {
                crate::sync::spin_hint();
                s = self.state.load(Ordering::Relaxed);
                continue;
            }
            match self.state.compare_exchange_weak(
                s,
                s | AWAITER_LOCK,
                Ordering::Acquire,
                Ordering::Relaxed,
            ) {
                Ok(_) => {
                    return AwaiterGuard {
                        header: self,
                        registered: s & AWAITER != 0,
                    };
                }
                Err(actual) => s = actual,
            }
        }
    }
}

/// The awaiter's slot, locked (see `Header::lock_awaiter`).
pub(crate) struct AwaiterGuard<'a> {
    /// The task's header.
    header: &'a Header,
    /// `AWAITER` was set when the lock was taken (only the lock holder sets
    /// it, and it is never cleared).
    registered: bool,
}

impl AwaiterGuard<'_> {
    /// Runs `f` on the slot.
    #[inline]
    pub(crate) fn with<R>(&mut self, f: impl FnOnce(&mut AwaiterSlot) -> R) -> R {
        // SAFETY: the lock bit is ours, so the slot is ours alone.
        self.header
            .awaiter
            .with_mut(|slot| f(unsafe { &mut *slot }))
    }

    /// Unlocks, noting that a waker is registered (`AWAITER`), in one step.
    #[inline]
    pub(crate) fn unlock_registered(self) {
        let this = ManuallyDrop::new(self);
        if this.registered {
            this.header.state.fetch_sub(AWAITER_LOCK, Ordering::Release);
        } else {
            // AWAITER is clear and AWAITER_LOCK set: one addition flips
            // both.
            this.header
                .state
                .fetch_add(AWAITER.wrapping_sub(AWAITER_LOCK), Ordering::Release);
        }
    }
}

impl Drop for AwaiterGuard<'_> {
    #[inline]
    fn drop(&mut self) {
        self.header.state.fetch_sub(AWAITER_LOCK, Ordering::Release);
    }
}

/// The waker of every `block_on` future: the data pointer is its
/// `Arc<RootWaker>`, and a waker owns one strong count (so R9's check can
/// count the clones; see `RootWaker`).
static ROOT_WAKER_VTABLE: RawWakerVTable = RawWakerVTable::new(
    root_waker_clone,
    root_waker_wake,
    root_waker_wake_by_ref,
    root_waker_drop,
);

/// The `Waker` of a root, owning `waker`.
pub(crate) fn root_waker(waker: Arc<RootWaker>) -> Waker {
    let data = Arc::into_raw(waker).cast::<()>();
    // SAFETY: `ROOT_WAKER_VTABLE` implements the `RawWaker` contract for a
    // pointer from `Arc::into_raw` of a `RootWaker` that owns one count.
    unsafe { Waker::from_raw(RawWaker::new(data, &ROOT_WAKER_VTABLE)) }
}

unsafe fn root_waker_clone(data: *const ()) -> RawWaker {
    // SAFETY: the waker being cloned owns (or borrows) a count of this
    // `Arc`; the clone gets one of its own.
    unsafe { Arc::increment_strong_count(data.cast::<RootWaker>()) };
    RawWaker::new(data, &ROOT_WAKER_VTABLE)
}

unsafe fn root_waker_wake(data: *const ()) {
    // SAFETY: a waker woken by value gives up its count.
    let waker = unsafe { Arc::from_raw(data.cast::<RootWaker>()) };
    waker.wake();
}

unsafe fn root_waker_wake_by_ref(data: *const ()) {
    // SAFETY: the waker owns (or borrows) a count for this call.
    unsafe { &*data.cast::<RootWaker>() }.wake();
}

unsafe fn root_waker_drop(data: *const ()) {
    // SAFETY: a dropped waker gives up its count.
    drop(unsafe { Arc::from_raw(data.cast::<RootWaker>()) });
}

/// A waker in one word, for a task's awaiter (`Header::awaiter`). The
/// wakers nestloop makes are stored as their data pointer: a task's (what a
/// task awaiting another task's handle registers) and a `block_on` root's;
/// any other waker is boxed. The two low bits (free: every one of these
/// pointers is 8-aligned) say which. Null when empty.
pub(crate) struct AwaiterSlot(*mut ());

/// The low bits of an `AwaiterSlot`.
const KIND: usize = 0b11;
/// `KIND` of a task's waker.
const TASK: usize = 0;
/// `KIND` of a boxed waker.
const BOXED: usize = 1;
/// `KIND` of a root's waker.
const ROOT: usize = 2;

/// The vtables of the wakers an `AwaiterSlot` stores by data pointer, by
/// `KIND`.
fn vtable_of(kind: usize) -> &'static RawWakerVTable {
    if kind == ROOT {
        &ROOT_WAKER_VTABLE
    } else {
        &WAKER_VTABLE
    }
}

impl AwaiterSlot {
    /// No waker.
    pub(crate) const EMPTY: AwaiterSlot = AwaiterSlot(std::ptr::null_mut());

    /// The `KIND` that `waker` is stored by data pointer as, if nestloop
    /// made it.
    fn kind_of(waker: &Waker) -> Option<usize> {
        if std::ptr::eq(waker.vtable(), &WAKER_VTABLE) {
            Some(TASK)
        } else if std::ptr::eq(waker.vtable(), &ROOT_WAKER_VTABLE) {
            Some(ROOT)
        } else {
            None
        }
    }

    /// Holds `waker`. Boxes it (allocates) unless nestloop made it: call it
    /// outside the slot's lock.
    pub(crate) fn new(waker: Waker) -> Self {
        let (data, kind) = match Self::kind_of(&waker) {
            // The waker's reference moves into the slot.
            Some(kind) => (ManuallyDrop::new(waker).data().cast_mut(), kind),
            None => (Box::into_raw(Box::new(waker)).cast::<()>(), BOXED),
        };
        debug_assert_eq!(data.addr() & KIND, 0);
        AwaiterSlot(data.map_addr(|a| a | kind))
    }

    /// The pointer without its kind, and the kind; `None` when empty.
    fn parts(&self) -> Option<(*mut (), usize)> {
        (!self.0.is_null()).then(|| (self.0.map_addr(|a| a & !KIND), self.0.addr() & KIND))
    }

    /// The boxed waker, if that is what the slot holds.
    fn boxed(&self) -> Option<&Waker> {
        let (data, kind) = self.parts()?;
        // SAFETY: of kind `BOXED`, the pointer is a live `Box<Waker>` this
        // slot owns (see `new`).
        (kind == BOXED).then(|| unsafe { &*data.cast::<Waker>() })
    }

    /// Takes the waker out, leaving the slot empty.
    pub(crate) fn into_waker(self) -> Option<Waker> {
        let this = ManuallyDrop::new(self);
        let (data, kind) = this.parts()?;
        Some(if kind == BOXED {
            // SAFETY: see `boxed`; the slot is forgotten, so the box is
            // taken back once.
            *unsafe { Box::from_raw(data.cast::<Waker>()) }
        } else {
            // SAFETY: otherwise the pointer is the data of a task's or a
            // root's waker with its reference (see `new`), which the slot
            // gives back, and `vtable_of` gives that waker's vtable.
            unsafe { Waker::from_raw(RawWaker::new(data, vtable_of(kind))) }
        })
    }

    /// Whether the slot holds a waker that wakes the same task as `waker`
    /// (`Waker::will_wake`).
    pub(crate) fn will_wake(&self, waker: &Waker) -> bool {
        match self.boxed() {
            Some(boxed) => boxed.will_wake(waker),
            None => self.parts().is_some_and(|(data, kind)| {
                Self::kind_of(waker) == Some(kind) && waker.data() == data.cast_const()
            }),
        }
    }

    /// The data pointer of the waker held, if any (`Waker::data`).
    pub(crate) fn data(&self) -> Option<*const ()> {
        match self.boxed() {
            Some(boxed) => Some(boxed.data()),
            None => self.parts().map(|(data, _)| data.cast_const()),
        }
    }
}

impl Default for AwaiterSlot {
    fn default() -> Self {
        AwaiterSlot::EMPTY
    }
}

impl Drop for AwaiterSlot {
    fn drop(&mut self) {
        drop(mem::take(self).into_waker());
    }
}

/// What became of the reference a wake by value owned.
enum Owned {
    /// It must go to a run queue.
    Queue,
    /// It was released; the state word it left (see `TaskRef::released`).
    Released(usize),
}

/// An owned reference to a task of any future type: the entry of run
/// queues, the task list, `AbortHandle`s and (through `JoinRef`) handles.
pub(crate) struct TaskRef(NonNull<Header>);

// SAFETY: through a `TaskRef`, other threads only reach the header (atomics,
// the awaiter's slot behind its lock bit, the executor's shared part; never
// the task-list links, see `TaskList`) and the vtable's operations, which
// touch the future only on a thread where that is allowed
// (`Header::may_touch`) and the result only as `TaskCell`'s protocol
// allows (see `Running`).
unsafe impl Send for TaskRef {}
// SAFETY: as for `Send`; `&TaskRef` gives nothing more than `&Header`.
unsafe impl Sync for TaskRef {}

impl TaskRef {
    /// The task's header.
    #[inline]
    pub(crate) fn header(&self) -> &Header {
        // SAFETY: this reference keeps the allocation alive; the header is
        // only ever accessed through shared references.
        unsafe { self.0.as_ref() }
    }

    /// Polls the task once (on its executor's thread). Returns whether a
    /// poll ran (false for a stale queue entry or a cancellation).
    #[inline]
    pub(crate) fn run(self, executor: &Inner) -> bool {
        (self.header().vtable.run)(self, executor)
    }

    /// Shutdown: requests cancellation and drops the future now unless it is
    /// being polled further down the stack. Returns whether it dropped it.
    pub(crate) fn shut_down(self, executor: &Inner) -> bool {
        (self.header().vtable.shut_down)(self, executor)
    }

    /// Cancels a task of a `Spawner` whose executor is gone (any thread).
    /// Returns whether it did.
    pub(crate) fn cancel_orphan(self) -> bool {
        (self.header().vtable.cancel_orphan)(self)
    }

    /// See [`crate::JoinHandle::abort`].
    pub(crate) fn abort(&self) {
        (self.header().vtable.abort)(self);
    }

    /// Whether the task has completed (with a result, a panic or cancelled).
    #[inline]
    pub(crate) fn is_finished(&self) -> bool {
        self.header().state() & COMPLETED != 0
    }

    /// Wakes the task through a reference it keeps: marks it scheduled and
    /// queues a new reference, unless it is queued, running (then it is
    /// requeued when its poll returns) or completed.
    #[inline]
    pub(crate) fn wake_by_ref(&self) {
        if self.header().schedule_by_ref() {
            // The reference `schedule_by_ref` just counted.
            TaskRef(self.0).enqueue();
        }
    }

    /// Puts this reference, of a task just marked scheduled, in its
    /// executor's run queue: the local one on the executor's thread, else
    /// the injection queue.
    #[inline]
    fn enqueue(self) {
        let shared: *const Shared = &**self.header().shared;
        // SAFETY: `self` keeps the task, and the task's hold keeps `Shared`,
        // alive until the reference is handed over. `push_local_here` hands
        // it over only on the executor's thread, where the executor it finds
        // holds its own `Arc` of `Shared` for the rest of the call and
        // nothing can run the task before the call returns.
        let task = match unsafe { &*shared }.push_local_here(self) {
            Ok(()) => return,
            Err(task) => task,
        };
        // Another thread may run and free the task as soon as it is pushed:
        // keep `Shared` alive for `push_remote` with a reference of its own.
        let shared = task.header().shared.to_arc();
        shared.push_remote(task);
    }

    /// Releases this reference, freeing the task if it was the last.
    #[inline]
    fn release(self, count: usize) {
        let prev = self
            .header()
            .state
            .fetch_sub(count * REF_ONE, Ordering::AcqRel);
        debug_assert!((prev & REF_MASK) >= count * REF_ONE);
        self.released(prev - count * REF_ONE);
    }

    /// Forgets this reference, which a combined transition has already taken
    /// off the count, leaving the state word `state`; frees the task if no
    /// reference is left.
    #[inline]
    fn released(self, state: usize) {
        let this = ManuallyDrop::new(self);
        if state & REF_MASK == 0 {
            // SAFETY: that was the last reference, and it is forgotten.
            unsafe { (this.header().vtable.dealloc)(this.0) };
        }
    }

    /// Releases two references to the same task with one atomic operation
    /// (`self` and `other`, which must point at the same task).
    #[inline]
    pub(crate) fn release_pair(self, other: TaskRef) {
        debug_assert_eq!(
            self.0, other.0,
            "nestloop: internal error: pair of different tasks"
        );
        mem::forget(other);
        self.release(2);
    }
}

impl Clone for TaskRef {
    #[inline]
    fn clone(&self) -> Self {
        self.header().inc_ref();
        TaskRef(self.0)
    }
}

impl Drop for TaskRef {
    #[inline]
    fn drop(&mut self) {
        TaskRef(self.0).release(1);
    }
}

impl std::fmt::Debug for TaskRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TaskRef")
            .field("state", &self.header().state())
            .finish()
    }
}

/// The waker of every task: the data pointer is the task's header, and a
/// waker owns one reference.
static WAKER_VTABLE: RawWakerVTable =
    RawWakerVTable::new(waker_clone, waker_wake, waker_wake_by_ref, waker_drop);

/// Rebuilds the reference a waker owns.
///
/// # Safety
///
/// `data` must come from a waker made by `Running::poll` or `waker_clone`,
/// and the reference it stands for must be used exactly once.
unsafe fn waker_ref_of(data: *const ()) -> ManuallyDrop<TaskRef> {
    // SAFETY: per the contract, `data` is a live task header.
    ManuallyDrop::new(TaskRef(unsafe {
        NonNull::new_unchecked(data.cast_mut().cast())
    }))
}

unsafe fn waker_clone(data: *const ()) -> RawWaker {
    // SAFETY: the waker being cloned holds (or borrows) a reference.
    let task = unsafe { waker_ref_of(data) };
    task.header().inc_ref();
    RawWaker::new(data, &WAKER_VTABLE)
}

unsafe fn waker_wake(data: *const ()) {
    // SAFETY: a waker woken by value gives up its reference.
    let task = ManuallyDrop::into_inner(unsafe { waker_ref_of(data) });
    match task.header().schedule_owned() {
        Owned::Queue => task.enqueue(),
        Owned::Released(state) => task.released(state),
    }
}

unsafe fn waker_wake_by_ref(data: *const ()) {
    // SAFETY: the waker holds (or borrows) a reference for this call.
    unsafe { waker_ref_of(data) }.wake_by_ref();
}

unsafe fn waker_drop(data: *const ()) {
    // SAFETY: a dropped waker gives up its reference.
    drop(ManuallyDrop::into_inner(unsafe { waker_ref_of(data) }));
}

/// An owned reference to a task whose future type is known: what the
/// vtable's operations work with, on the executor's thread.
pub(crate) struct Task<F: Future + 'static> {
    /// The reference.
    task: TaskRef,
    /// The future type (and `!Send`, like the future).
    _future: PhantomData<*const F>,
}

impl<F: Future + 'static> Task<F> {
    /// The vtable of tasks with this future type.
    const VTABLE: VTable = VTable {
        run: |t, ex| task::run(Self::typed(t), ex),
        shut_down: |t, ex| task::shut_down(Self::typed(t), ex),
        cancel_orphan: |t| task::cancel_orphan(Self::typed(t)),
        abort: |t| task::abort(Self::typed(t.clone())),
        drop_handle: |t| Self::typed(t).drop_handle(),
        poll_join: Self::poll_join_erased,
        dealloc: Self::dealloc,
    };

    /// A new task holding `future`, with `refs` references (all returned
    /// as the caller's to hand out) and the initial flags.
    fn allocate(future: F, shared: SharedHold, flags: usize, refs: usize) -> TaskRef {
        let cell = Box::new(TaskCell {
            header: Header {
                state: AtomicUsize::new(flags | (refs * REF_ONE)),
                vtable: &Self::VTABLE,
                shared: ManuallyDrop::new(shared),
                links: UnsafeCell::new(Links::UNLISTED),
                queue_next: UnsafeCell::new(UNQUEUED),
                awaiter: UnsafeCell::new(AwaiterSlot::EMPTY),
            },
            stage: UnsafeCell::new(Stage {
                future: ManuallyDrop::new(future),
            }),
        });
        TaskRef(NonNull::from(Box::leak(cell)).cast())
    }

    /// Views an erased reference as this type.
    fn typed(task: TaskRef) -> Self {
        Task {
            task,
            _future: PhantomData,
        }
    }

    /// The erased reference.
    pub(crate) fn erase(self) -> TaskRef {
        self.task
    }

    /// The erased reference, borrowed.
    pub(crate) fn as_ref(&self) -> &TaskRef {
        &self.task
    }

    /// The whole cell.
    fn cell(&self) -> &TaskCell<F> {
        // SAFETY: the vtable this reference was reached through is
        // `Self::VTABLE`, so the allocation is a `TaskCell<F>` (`repr(C)`,
        // header first); the reference keeps it alive.
        unsafe { self.task.0.cast::<TaskCell<F>>().as_ref() }
    }

    /// The header.
    pub(crate) fn header(&self) -> &Header {
        self.task.header()
    }

    /// Claims the future, on the thread `here`: sets `RUNNING`, clears
    /// `SCHEDULED`. Gives the reference back when the task is running (on
    /// the stack), completed, or not `here`'s to touch.
    #[inline]
    pub(crate) fn begin(self, here: Option<ThisThread>) -> Result<Running<F>, Self> {
        let header = self.header();
        if !header.may_touch(here) {
            return Err(self);
        }
        let claimed = header
            .state
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |s| {
                (s & (RUNNING | COMPLETED) == 0).then_some((s | RUNNING) & !SCHEDULED)
            });
        match claimed {
            Ok(_) => Ok(Running {
                task: self,
                _not_send: PhantomData,
            }),
            Err(_) => Err(self),
        }
    }

    /// Takes the result if the task completed and nobody took it yet.
    /// Called by the `JoinHandle`.
    pub(crate) fn take_result(&self) -> Option<Result<F::Output, JoinError>> {
        let state = &self.header().state;
        if state.load(Ordering::Acquire) & (COMPLETED | TAKEN) != COMPLETED {
            return None;
        }
        state
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |s| {
                (s & (COMPLETED | TAKEN) == COMPLETED).then_some(s | TAKEN)
            })
            .ok()?;
        Some(self.cell().take_stage_result())
    }

    /// The `JoinHandle` goes away with its reference: clears `HANDLE` and
    /// releases the reference in one step, unless an unclaimed result must
    /// be dropped first (contained, see `drop_contained`).
    fn drop_handle(self) {
        let this = ManuallyDrop::new(self);
        let header = this.header();
        let mut s = header.state.load(Ordering::Acquire);
        loop {
            let unclaimed = s & (COMPLETED | TAKEN) == COMPLETED;
            let next = if unclaimed {
                (s & !HANDLE) | TAKEN
            } else {
                (s & !HANDLE) - REF_ONE
            };
            match header
                .state
                .compare_exchange_weak(s, next, Ordering::AcqRel, Ordering::Acquire)
            {
                Ok(_) if unclaimed => {
                    let result = this.cell().take_stage_result();
                    crate::join::drop_contained(result);
                    drop(ManuallyDrop::into_inner(this).task);
                    return;
                }
                Ok(_) => return ManuallyDrop::into_inner(this).task.released(next),
                Err(actual) => s = actual,
            }
        }
    }

    /// `VTable::poll_join`.
    ///
    /// # Safety
    ///
    /// `out` must point at a `Poll<Result<F::Output, JoinError>>`.
    unsafe fn poll_join_erased(task: &TaskRef, out: *mut (), cx: &mut Context<'_>) -> bool {
        let typed = ManuallyDrop::new(Self::typed(TaskRef(task.0)));
        let (poll, spent) = match typed.take_last() {
            Some(result) => (Poll::Ready(result), true),
            None => (task::poll_join(&typed, cx), false),
        };
        // SAFETY: per the contract.
        unsafe { *out.cast::<Poll<Result<F::Output, JoinError>>>() = poll };
        spent
    }

    /// For the `JoinHandle`, holding the last reference to a completed
    /// task: takes the result and frees the task. Nobody else can reach the
    /// task, so neither needs an atomic operation. `None` (and nothing
    /// done) in any other state; the caller's reference is gone after
    /// `Some`.
    #[inline]
    fn take_last(&self) -> Option<Result<F::Output, JoinError>> {
        // Acquire: pairs with the release of every other reference and with
        // `complete`'s, so the result and every use of the task are seen.
        let state = self.header().state.load(Ordering::Acquire);
        if state & (COMPLETED | TAKEN) != COMPLETED || state & REF_MASK != REF_ONE {
            return None;
        }
        let result = self.cell().take_stage_result();
        // SAFETY: the caller's was the last reference, and it is used up
        // here (the caller forgets it).
        unsafe { Self::dealloc(self.task.0) };
        Some(result)
    }

    /// `VTable::dealloc`.
    ///
    /// # Safety
    ///
    /// The reference count of the task at `ptr` must be zero.
    unsafe fn dealloc(ptr: NonNull<Header>) {
        // SAFETY: the allocation is a `TaskCell<F>` made by `allocate`
        // (`Box`), and with no reference left nothing else can reach it.
        let mut cell = unsafe { Box::from_raw(ptr.cast::<TaskCell<F>>().as_ptr()) };
        // A task is freed only after it completed: the executor completes
        // (cancels) every task it still has before it goes away, a Spawner's
        // task whose executor is gone is cancelled where it is found, and a
        // completed task holds nothing any more (its future was dropped and
        // its result moved out, see `Stage`). Were that ever broken, the
        // future would leak, which is safe; dropping a `!Send` future here,
        // maybe on another thread, would not be. With no reference left, the
        // last release (acquire-release) made every change to the word
        // visible.
        debug_assert!(
            cell.header.state.load(Ordering::Relaxed) & COMPLETED != 0,
            "nestloop: internal error: a task freed before it completed"
        );
        // SAFETY: taken once, here, and the cell is not used after.
        let hold = unsafe { ManuallyDrop::take(&mut cell.header.shared) };
        drop(cell);
        hold.release(ThisThread::get());
    }
}

/// Creates a task for `Executor::spawn`: owned by this thread, scheduled,
/// with a handle. Returns its references for the run queue, the task list
/// and the handle.
pub(crate) fn new_local<F>(future: F, shared: SharedHold) -> (TaskRef, TaskRef, JoinRef<F::Output>)
where
    F: Future + 'static,
    F::Output: 'static,
{
    let task = Task::<F>::allocate(future, shared, SCHEDULED | HANDLE, 3);
    let (list, handle) = (TaskRef(task.0), TaskRef(task.0));
    (task, list, JoinRef::new(handle))
}

/// Creates a task for `Spawner::spawn`: owned by the executor's thread,
/// scheduled, with a handle, not yet adopted. Returns its references for the
/// injection queue and the handle.
pub(crate) fn new_remote<F>(future: F, shared: SharedHold) -> (TaskRef, JoinRef<F::Output>)
where
    F: Future + Send + 'static,
    F::Output: Send + 'static,
{
    let task = Task::<F>::allocate(
        future,
        shared,
        SCHEDULED | HANDLE | SEND_FUTURE | UNADOPTED,
        2,
    );
    let handle = TaskRef(task.0);
    (task, JoinRef::new(handle))
}

/// The reference a `JoinHandle<T>` holds: made only together with its task,
/// so `T` is the task's output type.
pub(crate) struct JoinRef<T> {
    /// The handle's reference; `None` once the result was taken with it
    /// (see `Task::take_last`).
    task: Option<TaskRef>,
    /// The output type.
    _output: PhantomData<T>,
}

impl<T> JoinRef<T> {
    fn new(task: TaskRef) -> Self {
        JoinRef {
            task: Some(task),
            _output: PhantomData,
        }
    }

    /// The task, unless the handle used its reference up with the result.
    #[inline]
    pub(crate) fn task(&self) -> Option<&TaskRef> {
        self.task.as_ref()
    }

    /// Takes the result, or registers the awaiter's waker.
    #[inline]
    pub(crate) fn poll_join(&mut self, cx: &mut Context<'_>) -> Poll<Result<T, JoinError>> {
        let Some(task) = &self.task else {
            panic!("nestloop: JoinHandle polled again after it returned the task's result");
        };
        let mut out: Poll<Result<T, JoinError>> = Poll::Pending;
        let poll_join = task.header().vtable.poll_join;
        // SAFETY: `JoinRef<T>` is only made (by `new_local`/`new_remote`)
        // for a task whose output is `T`, so `out` has the type the vtable's
        // `poll_join` writes.
        let spent = unsafe { poll_join(task, (&raw mut out).cast(), cx) };
        if spent {
            // Released (the task is freed): forget it.
            mem::forget(self.task.take());
        }
        out
    }
}

impl<T> Drop for JoinRef<T> {
    fn drop(&mut self) {
        if let Some(task) = self.task.take() {
            (task.header().vtable.drop_handle)(task);
        }
    }
}

impl<F: Future> TaskCell<F> {
    /// Moves the result out of the cell. Only for whoever just set `TAKEN`
    /// on a completed task, or holds its last reference.
    fn take_stage_result(&self) -> Result<F::Output, JoinError> {
        // `FAILED` was set with `COMPLETED`, which the caller has seen.
        let state = self.header.state.load(Ordering::Relaxed);
        debug_assert!(
            state & COMPLETED != 0,
            "nestloop: internal error: took the result of a running task"
        );
        // SAFETY: the caller set TAKEN on a COMPLETED task (acquire ordering
        // pairs with the release in `Running::complete`), which only one
        // party can do, or is the only one left who can reach the task;
        // after COMPLETED nobody else touches the cell, which holds the
        // result `FAILED` names (see `Stage`), moved out once, here.
        self.stage.with_mut(|stage| unsafe {
            if state & FAILED != 0 {
                Err(ManuallyDrop::take(&mut (*stage).error))
            } else {
                Ok(ManuallyDrop::take(&mut (*stage).output))
            }
        })
    }
}

/// What `Running::complete` hands back: the result when no `JoinHandle`
/// exists (the caller drops it), whether an awaiter's waker was registered,
/// and the claimer's reference.
pub(crate) type Completed<F> = (
    Option<Result<<F as Future>::Output, JoinError>>,
    bool,
    Task<F>,
);

/// Exclusive access to a task's future, held while it is polled or dropped,
/// with the claimer's reference. Obtained from `Task::begin`; stays on the
/// thread that claimed it.
pub(crate) struct Running<F: Future + 'static> {
    task: Task<F>,
    _not_send: PhantomData<*const ()>,
}

impl<F: Future + 'static> Running<F> {
    /// Runs `f` on the cell.
    fn with_stage<R>(&mut self, f: impl FnOnce(&mut Stage<F>) -> R) -> R {
        // SAFETY: `Running` exists only for the party that set RUNNING (see
        // `begin`), and `&mut self` makes this access unique among its uses.
        self.task
            .cell()
            .stage
            .with_mut(|stage| f(unsafe { &mut *stage }))
    }

    /// Whether `abort()` was requested.
    pub(crate) fn cancel_requested(&self) -> bool {
        self.task.header().state() & CANCELLED != 0
    }

    /// Polls the future once, with a waker borrowed from the claimer's
    /// reference (no reference-count traffic).
    pub(crate) fn poll(&mut self) -> Poll<F::Output> {
        let raw = RawWaker::new(self.task.task.0.as_ptr().cast::<()>(), &WAKER_VTABLE);
        // SAFETY: `WAKER_VTABLE` implements the `RawWaker` contract for a
        // pointer to a live task header; the claimer's reference keeps it
        // alive during the poll, and `ManuallyDrop` keeps the borrowed waker
        // from releasing a reference it does not own (clones get their own).
        let waker = ManuallyDrop::new(unsafe { Waker::from_raw(raw) });
        let mut cx = Context::from_waker(&waker);
        // SAFETY: the claim (`RUNNING`) was taken on a task not completed,
        // and `drop_future` consumes the right to poll (`complete` follows
        // it), so the cell holds the future (see `Stage`); it sits in the
        // task's allocation and is never moved: only ever dropped in place.
        self.with_stage(|stage| unsafe { Pin::new_unchecked(&mut *stage.future) }.poll(&mut cx))
    }

    /// Drops the future (running its destructor, which may panic: the cell is
    /// already empty by then).
    ///
    /// Called once, then only `complete`: the cell holds nothing until it
    /// stores the result (`Stage` has no tag to say so; the callers in
    /// `crate::task` follow every `drop_future` with `complete`).
    pub(crate) fn drop_future(&mut self) {
        self.with_stage(|stage| {
            // SAFETY: not completed, so the cell holds the future (see
            // `Stage`); it is pinned, so it is dropped where it is, never
            // moved (`Pin`'s drop guarantee: it may point into itself);
            // `Running` gives exclusive access. If its destructor panics,
            // the rest of it is dropped during unwinding, all the same.
            unsafe { std::ptr::drop_in_place((&raw mut stage.future).cast::<F>()) };
        });
    }

    /// Ends a poll that returned `Pending`. `Ok(Some(task))` when the task
    /// was woken meanwhile and the claimer's reference must be queued again;
    /// `Ok(None)` when that reference was released; `Err(self)` when an abort
    /// arrived meanwhile: the caller keeps the claim and cancels.
    pub(crate) fn suspend(self) -> Result<Option<TaskRef>, Self> {
        let state = &self.task.header().state;
        let mut s = state.load(Ordering::Acquire);
        loop {
            if s & CANCELLED != 0 {
                return Err(self);
            }
            let requeue = s & SCHEDULED != 0;
            let next = if requeue {
                s & !RUNNING
            } else {
                (s & !RUNNING) - REF_ONE
            };
            match state.compare_exchange_weak(s, next, Ordering::AcqRel, Ordering::Acquire) {
                Ok(_) if requeue => return Ok(Some(self.task.erase())),
                Ok(_) => {
                    self.task.erase().released(next);
                    return Ok(None);
                }
                Err(actual) => s = actual,
            }
        }
    }

    /// Stores the result and publishes completion. The future must have been
    /// dropped. See `Completed` for what comes back.
    pub(crate) fn complete(mut self, result: Result<F::Output, JoinError>) -> Completed<F> {
        let failed = if result.is_err() { FAILED } else { 0 };
        // The future was dropped (see `drop_future`): the cell's bytes are
        // free, and overwriting a `ManuallyDrop` field drops nothing.
        self.with_stage(|stage| match result {
            Ok(output) => stage.output = ManuallyDrop::new(output),
            Err(error) => stage.error = ManuallyDrop::new(error),
        });
        // RUNNING is set, COMPLETED and FAILED clear: one flip sets them
        // right. With no handle, nobody else will ever look at the result.
        let cell = self.task.cell();
        let prev = cell
            .header
            .state
            .fetch_xor(RUNNING | COMPLETED | failed, Ordering::AcqRel);
        debug_assert!(prev & RUNNING != 0 && prev & COMPLETED == 0);
        let orphan = (prev & HANDLE == 0).then(|| cell.take_stage_result());
        (orphan, prev & AWAITER != 0, self.task)
    }
}

/// A task's neighbours in its executor's task list.
struct Links {
    /// The task before it, `None` at the head, `UNLISTED_MARK` when the
    /// task is in no list.
    prev: Option<NonNull<Header>>,
    /// The task after it.
    next: Option<NonNull<Header>>,
}

/// `Links::prev` of a task in no list: an address no task has.
const UNLISTED_MARK: NonNull<Header> = NonNull::dangling();

impl Links {
    /// In no list.
    const UNLISTED: Links = Links {
        prev: Some(UNLISTED_MARK),
        next: None,
    };
}

/// Every live task of an executor, so shutdown can reach them all: a list
/// linked through the tasks themselves (no side table to grow), holding one
/// reference of each. Only the executor's thread has it (it is not `Send`),
/// and a task is only ever in its own executor's list, so only that thread
/// touches a task's links.
pub(crate) struct TaskList {
    /// The most recently added task.
    head: Cell<Option<NonNull<Header>>>,
    /// The number of tasks in the list.
    len: Cell<usize>,
}

impl TaskList {
    /// An empty list.
    pub(crate) fn new() -> Self {
        TaskList {
            head: Cell::new(None),
            len: Cell::new(0),
        }
    }

    /// The number of tasks in the list.
    pub(crate) fn len(&self) -> usize {
        self.len.get()
    }

    /// Adds a task of this list's executor, with the list's reference; on
    /// the executor's thread. A task spawned from another thread is adopted
    /// here.
    #[inline]
    pub(crate) fn push(&self, task: TaskRef) {
        let this = ManuallyDrop::new(task);
        let header = this.header();
        if header.state.load(Ordering::Relaxed) & UNADOPTED != 0 {
            header.state.fetch_and(!UNADOPTED, Ordering::AcqRel);
        }
        let head = self.head.get();
        // SAFETY: links are only touched on the executor's thread (see the
        // type's docs), by this list, one task at a time; `head` is alive
        // (the list holds a reference of it).
        unsafe {
            header.links.with_mut(|links| {
                debug_assert!((*links).prev == Some(UNLISTED_MARK));
                *links = Links {
                    prev: None,
                    next: head,
                };
            });
            if let Some(head) = head {
                head.as_ref()
                    .links
                    .with_mut(|links| (*links).prev = Some(this.0));
            }
        }
        self.head.set(Some(this.0));
        self.len.set(self.len.get() + 1);
    }

    /// Takes `task` (of this list's executor) out of the list, with the
    /// list's reference; `None` if it is not in it. On the executor's
    /// thread.
    #[inline]
    pub(crate) fn remove(&self, task: &TaskRef) -> Option<TaskRef> {
        // SAFETY: as in `push`; the neighbours are alive (the list holds a
        // reference of each).
        let Links { prev, next } = unsafe {
            task.header().links.with_mut(|links| {
                if (*links).prev == Some(UNLISTED_MARK) {
                    return None;
                }
                Some(mem::replace(&mut *links, Links::UNLISTED))
            })
        }?;
        // SAFETY: as above.
        unsafe {
            match prev {
                Some(prev) => prev.as_ref().links.with_mut(|links| (*links).next = next),
                None => self.head.set(next),
            }
            if let Some(next) = next {
                next.as_ref().links.with_mut(|links| (*links).prev = prev);
            }
        }
        self.len.set(self.len.get() - 1);
        Some(TaskRef(task.0))
    }

    /// A reference to every task in the list, most recent first.
    pub(crate) fn snapshot(&self) -> Vec<TaskRef> {
        let mut tasks = Vec::with_capacity(self.len());
        self.for_each(|task| tasks.push(task.clone()));
        tasks
    }

    /// Calls `f` for every task in the list, which `f` must not change.
    pub(crate) fn for_each(&self, mut f: impl FnMut(&TaskRef)) {
        self.any(|task| {
            f(task);
            false
        });
    }

    /// Whether `f` holds for a task in the list, which `f` must not change;
    /// stops at the first.
    pub(crate) fn any(&self, mut f: impl FnMut(&TaskRef) -> bool) -> bool {
        let mut cursor = self.head.get();
        while let Some(ptr) = cursor {
            let task = ManuallyDrop::new(TaskRef(ptr));
            if f(&task) {
                return true;
            }
            // SAFETY: as in `push`.
            cursor = unsafe { task.header().links.with_mut(|links| (*links).next) };
        }
        false
    }
}

impl Drop for TaskList {
    fn drop(&mut self) {
        // Normally empty by now (shutdown finished every task).
        while let Some(head) = self.head.get() {
            let task = ManuallyDrop::new(TaskRef(head));
            drop(self.remove(&task));
        }
    }
}

/// `Header::queue_next`: the next task in the run queue (`None` at the
/// tail), or `UNQUEUED`.
type QueueNext = Option<NonNull<Header>>;

/// `Header::queue_next` of a task in no run queue: an address no task has.
const UNQUEUED: QueueNext = Some(NonNull::dangling());

/// The tasks woken or spawned on an executor's thread, in wake order: a
/// queue linked through the tasks themselves (no buffer to grow), holding
/// one reference of each. A task is in it at most once: only the wake that
/// sets `SCHEDULED` (or the poll that finds it set, see `Running::suspend`)
/// queues it, and the bit stays set until the task is taken out and polled;
/// a task that completes while queued (shut down, aborted) is never queued
/// again. Like `TaskList`, only the executor's thread has it, so only that
/// thread touches a task's `queue_next`.
pub(crate) struct RunQueue {
    /// The task to run next.
    head: Cell<Option<NonNull<Header>>>,
    /// The task queued last.
    tail: Cell<Option<NonNull<Header>>>,
}

impl RunQueue {
    /// An empty queue.
    pub(crate) fn new() -> Self {
        RunQueue {
            head: Cell::new(None),
            tail: Cell::new(None),
        }
    }

    /// How many tasks are queued, counting up to `limit` at most (a walk
    /// along the queue: the loop asks rarely, and never needs more than a
    /// batch's worth).
    pub(crate) fn len_up_to(&self, limit: usize) -> usize {
        let mut len = 0;
        let mut cursor = self.head.get();
        while let Some(task) = cursor
            && len < limit
        {
            len += 1;
            // SAFETY: as in `push`; the queue's reference keeps each queued
            // task alive.
            cursor = unsafe { task.as_ref().queue_next.with_mut(|next| *next) };
        }
        len
    }

    /// Whether no task is queued.
    #[inline]
    pub(crate) fn is_empty(&self) -> bool {
        self.head.get().is_none()
    }

    /// Queues a task of this queue's executor, with the queue's reference.
    #[inline]
    pub(crate) fn push(&self, task: TaskRef) {
        let this = ManuallyDrop::new(task);
        // SAFETY: `queue_next` is only touched on the executor's thread, by
        // this queue (see the type's docs); the tail is alive (the queue
        // holds a reference of it).
        unsafe {
            this.header().queue_next.with_mut(|next| {
                // Checked in debug builds (every test, loom and Miri run):
                // in release it was 7 of 165 instructions per yield.
                debug_assert!(
                    *next == UNQUEUED,
                    "nestloop: internal error: a task queued twice"
                );
                *next = None;
            });
            match self.tail.get() {
                Some(tail) => tail
                    .as_ref()
                    .queue_next
                    .with_mut(|next| *next = Some(this.0)),
                None => self.head.set(Some(this.0)),
            }
        }
        self.tail.set(Some(this.0));
    }

    /// Takes every task out, in order, into a queue of its own.
    pub(crate) fn take(&self) -> RunQueue {
        RunQueue {
            head: Cell::new(self.head.take()),
            tail: Cell::new(self.tail.take()),
        }
    }

    /// Takes the next task out, with the queue's reference.
    #[inline]
    pub(crate) fn pop(&self) -> Option<TaskRef> {
        let head = self.head.get()?;
        // SAFETY: as in `push`; the queue's reference keeps `head` alive.
        let next = unsafe {
            head.as_ref()
                .queue_next
                .with_mut(|next| mem::replace(&mut *next, UNQUEUED))
        };
        self.head.set(next);
        if next.is_none() {
            self.tail.set(None);
        }
        Some(TaskRef(head))
    }
}

impl Drop for RunQueue {
    fn drop(&mut self) {
        while let Some(task) = self.pop() {
            drop(task);
        }
    }
}

/// Holds taken in one atomic operation when an executor's reserve runs out.
const HOLD_BATCH: usize = 64;

/// A task's way back to its executor's [`Shared`]: a pointer kept valid by
/// `Shared::holders` instead of the `Arc`'s own count. The executor's
/// thread takes holds for its tasks from a reserve (`HoldReserve`) it
/// refills `HOLD_BATCH` at a time, and a task freed on that thread gives its
/// hold back there, so spawning and freeing a task costs no atomic
/// operation on `Shared`, where an `Arc` clone per task would cost two.
///
/// While `holders` is above zero it owns one strong count of the `Arc`
/// (taken when it rises from zero, given back when it falls to zero). The
/// executor counts as one holder, plus its unused reserve.
pub(crate) struct SharedHold(NonNull<Shared>);

// SAFETY: a hold is a counted shared reference to `Shared`, which is `Send +
// Sync`; it gives out only `&Shared`.
unsafe impl Send for SharedHold {}
// SAFETY: as above.
unsafe impl Sync for SharedHold {}

impl SharedHold {
    /// Makes a new executor the first holder of its `Shared` (created with
    /// `holders` at 1); `release_executor` gives that hold back.
    pub(crate) fn first(shared: &Arc<Shared>) {
        // The strong count the holders own from now on.
        mem::forget(shared.clone());
    }

    /// A hold for a task spawned on `executor`'s thread, from its reserve.
    #[inline]
    pub(crate) fn local(executor: &Inner) -> SharedHold {
        let shared = &executor.shared;
        let taken = HoldReserve::update(shared, ThisThread::of(executor), |reserve| {
            if *reserve == 0 {
                // The executor's own hold keeps the count above zero:
                // adding needs no new strong count.
                shared.holders.fetch_add(HOLD_BATCH, Ordering::Relaxed);
                *reserve = HOLD_BATCH;
            }
            *reserve -= 1;
        });
        // `ThisThread::of` is the executor's thread: the reserve is ours
        // (the check folds away in release builds, where both keys are the
        // same load; the message is not in the binary).
        taken
            .unwrap_or_else(|| unreachable!("nestloop: internal error: reserve of another thread"));
        SharedHold(arc_ptr(shared))
    }

    /// A hold for a task spawned from another thread.
    pub(crate) fn remote(shared: &Arc<Shared>) -> SharedHold {
        if shared.holders.fetch_add(1, Ordering::Relaxed) == 0 {
            // The executor and all its tasks are gone, and the last holder
            // gave the strong count back (or is about to): take one again.
            mem::forget(shared.clone());
        }
        SharedHold(arc_ptr(shared))
    }

    /// A strong reference, for work that may outlive the task.
    #[inline]
    pub(crate) fn to_arc(&self) -> Arc<Shared> {
        // SAFETY: the hold keeps the strong count the holders own, so the
        // pointer is that of a live `Arc<Shared>`.
        unsafe {
            Arc::increment_strong_count(self.0.as_ptr());
            Arc::from_raw(self.0.as_ptr())
        }
    }

    /// `executor` goes away (on its thread): gives back its own hold and
    /// its reserve, and closes the reserve.
    pub(crate) fn release_executor(executor: &Inner) {
        let shared = &executor.shared;
        let reserve = HoldReserve::update(shared, ThisThread::of(executor), |reserve| {
            mem::replace(reserve, CLOSED)
        })
        .unwrap_or(0);
        release_holds(arc_ptr(shared), reserve + 1);
    }

    /// Gives the hold back, on the thread `here`: to the reserve on the
    /// executor's thread while the executor lives, else to the shared count.
    #[inline]
    pub(crate) fn release(self, here: Option<ThisThread>) {
        let this = ManuallyDrop::new(self);
        let returned = here.and_then(|here| {
            HoldReserve::update(&this, here, |reserve| {
                if *reserve == CLOSED {
                    return false;
                }
                *reserve += 1;
                true
            })
        });
        if returned != Some(true) {
            release_holds(this.0, 1);
        }
    }
}

impl Drop for SharedHold {
    fn drop(&mut self) {
        SharedHold(self.0).release(ThisThread::get());
    }
}

/// The calling thread, as the proof that the checks letting only an
/// executor's own thread touch a `!Send` future or the holds reserve need:
/// made by asking the thread, or from an executor's thread-local side,
/// which never leaves the thread it was made on. Not `Send`: it cannot
/// travel to another thread.
#[derive(Clone, Copy)]
pub(crate) struct ThisThread {
    /// The thread's key (`park::thread_key`).
    key: u64,
    /// Keeps it on its thread.
    _not_send: PhantomData<*const ()>,
}

impl ThisThread {
    /// Asks the thread; `None` only where its thread-locals are gone
    /// (see `park::try_thread_key`).
    #[inline]
    pub(crate) fn get() -> Option<ThisThread> {
        crate::park::try_thread_key().map(|key| ThisThread {
            key,
            _not_send: PhantomData,
        })
    }

    /// The thread `executor` lives on, which is the calling one: `Inner` is
    /// made on its thread, with that thread's signal, and is not `Send`.
    #[inline]
    pub(crate) fn of(executor: &Inner) -> ThisThread {
        ThisThread {
            key: executor.shared.signal.key(),
            _not_send: PhantomData,
        }
    }

    /// Whether this is the thread of the executor whose `Shared` this is.
    #[inline]
    fn owns(self, shared: &Shared) -> bool {
        self.key == shared.signal.key()
    }
}

/// The reserve's value once its executor is gone.
const CLOSED: usize = usize::MAX;

/// An executor's holds on its `Shared` taken and not yet given to a task
/// (see `SharedHold`). Only the executor's thread touches it.
pub(crate) struct HoldReserve(UnsafeCell<usize>);

// SAFETY: the count is read and written only on one thread (`update`
// checks, with a `ThisThread`), so sharing the reserve between threads
// shares no access.
unsafe impl Sync for HoldReserve {}

impl HoldReserve {
    /// An empty reserve.
    pub(crate) fn new() -> Self {
        HoldReserve(UnsafeCell::new(0))
    }

    /// Runs `f` on the count of `shared`'s reserve if `here` is the thread
    /// of its executor, else returns `None`.
    #[inline]
    fn update<R>(shared: &Shared, here: ThisThread, f: impl FnOnce(&mut usize) -> R) -> Option<R> {
        if !here.owns(shared) {
            return None;
        }
        // SAFETY: only the owner thread gets here, and `f` cannot reach
        // the reserve again (it is private to this module's callers, none
        // of which nest), so the borrow is exclusive.
        Some(shared.reserve.0.with_mut(|count| f(unsafe { &mut *count })))
    }
}

impl std::ops::Deref for SharedHold {
    type Target = Shared;

    #[inline]
    fn deref(&self) -> &Shared {
        // SAFETY: the hold keeps `Shared` alive (see the type's docs).
        unsafe { self.0.as_ref() }
    }
}

/// The pointer an `Arc` stands for, with the provenance `Arc::from_raw`
/// needs.
#[inline]
fn arc_ptr(shared: &Arc<Shared>) -> NonNull<Shared> {
    NonNull::new(Arc::as_ptr(shared).cast_mut())
        .unwrap_or_else(|| unreachable!("nestloop: internal error: null Arc"))
}

/// Gives back `count` holds on `shared`; the last one gives back the strong
/// count the holders own.
fn release_holds(shared: NonNull<Shared>, count: usize) {
    // SAFETY: the caller's holds keep `Shared` alive until this returns
    // (the strong count goes only after the subtraction below).
    let holders = unsafe { &shared.as_ref().holders };
    if holders.fetch_sub(count, Ordering::Release) == count {
        // See everything the other holders did before giving theirs back.
        crate::sync::fence(Ordering::Acquire);
        // SAFETY: the holders owned one strong count (see `SharedHold`),
        // and this was the last hold.
        drop(unsafe { Arc::from_raw(shared.as_ptr()) });
    }
}

/// A `block_on`'s executor, lent to its thread's state while the call polls
/// its future for the first time with its frame deferred (see
/// `frames::ThreadState::first_poll`): a pointer rather than a clone, so the
/// loan costs no reference count.
pub(crate) struct LentExecutor(Cell<Option<NonNull<Executor>>>);

impl LentExecutor {
    /// No loan.
    pub(crate) const fn new() -> Self {
        LentExecutor(Cell::new(None))
    }

    /// Whether an executor is lent.
    #[inline]
    pub(crate) fn is_lent(&self) -> bool {
        self.0.get().is_some()
    }

    /// Runs `f` with `executor` lent. The loan ends when `f` returns or
    /// unwinds (what was there before is put back), or earlier by `take`.
    #[inline(always)]
    pub(crate) fn lend<R>(&self, executor: &Executor, f: impl FnOnce() -> R) -> R {
        /// Puts the previous value back.
        struct EndLoan<'a> {
            cell: &'a Cell<Option<NonNull<Executor>>>,
            previous: Option<NonNull<Executor>>,
        }
        impl Drop for EndLoan<'_> {
            #[inline]
            fn drop(&mut self) {
                self.cell.set(self.previous);
            }
        }
        let _end = EndLoan {
            cell: &self.0,
            previous: self.0.replace(Some(NonNull::from(executor))),
        };
        f()
    }

    /// Ends the loan early, with a clone of the executor.
    #[inline]
    pub(crate) fn take(&self) -> Option<Executor> {
        let executor = self.0.take()?;
        // SAFETY: a pointer in the cell was put there by a `lend` that is
        // still running: each one puts the previous value back before it
        // returns or unwinds (a local guard that nothing can leak), and its
        // `executor` reference outlives the call. A `lend` further up the
        // stack puts back the pointer of one further down, which is still
        // running too.
        Some(unsafe { executor.as_ref() }.clone())
    }
}

/// A `block_on` future, seen through its poll function.
pub(crate) trait PollRoot {
    /// Polls the future; `Ready` once it has finished (with a value or a
    /// panic, which the implementor keeps for its owner).
    fn poll_root(&mut self, cx: &mut Context<'_>) -> Poll<()>;
}

/// Names a registered root; stale ids are refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct RootId {
    /// Position in the root table.
    index: usize,
    /// Unique per registration.
    serial: u64,
}

impl RootId {
    /// Names no root: refused by `poll_root`.
    pub(crate) const UNREGISTERED: RootId = RootId {
        index: usize::MAX,
        serial: u64::MAX,
    };
}

/// A lifetime-erased pointer to a root, valid while its registration lasts.
struct RootSlot {
    /// Erased pointer to the root owned by a `block_on` below on the stack.
    ptr: NonNull<dyn PollRoot + 'static>,
    /// Unique per registration.
    serial: u64,
    /// Being polled now (it is on the stack): never polled reentrantly.
    busy: bool,
}

/// The roots of the `block_on` calls active on this thread, in stack order.
struct RootTable {
    /// One slot per registered root.
    slots: Vec<RootSlot>,
    /// The serial of the next registration.
    next_serial: u64,
}

thread_locals! {
    /// The roots of this thread.
    static ROOTS: RefCell<RootTable> = const {
        RefCell::new(RootTable { slots: Vec::new(), next_serial: 0 })
    };
}

/// Makes sure this thread's root table exists, so that a thread-local
/// registered after this call is destroyed before it (see
/// `frames::arm_exit_guard`).
pub(crate) fn init_roots() {
    let _ = ROOTS.try_with(|_| ());
}

/// Makes `root` pollable through [`poll_root`] while `body` runs; the
/// registration ends when `body` returns or unwinds.
pub(crate) fn with_root<R>(root: &mut dyn PollRoot, body: impl FnOnce(RootId) -> R) -> R {
    let ptr: NonNull<dyn PollRoot + '_> = NonNull::from(root);
    // SAFETY: only the lifetime bound of the trait object changes. The
    // pointer is removed from the table by `Unregister` below before this
    // function returns or unwinds, i.e. while `root` is still mutably
    // borrowed by this call, so it is never used after `root`'s lifetime.
    let ptr: NonNull<dyn PollRoot + 'static> = unsafe { mem::transmute(ptr) };
    let id = ROOTS.with(|table| {
        let mut table = table.borrow_mut();
        let serial = table.next_serial;
        table.next_serial += 1;
        table.slots.push(RootSlot {
            ptr,
            serial,
            busy: false,
        });
        RootId {
            index: table.slots.len() - 1,
            serial,
        }
    });

    /// Removes the registration (and any stale ones above it) on return or
    /// unwind.
    struct Unregister(RootId);
    impl Drop for Unregister {
        fn drop(&mut self) {
            ROOTS.with(|table| {
                let mut table = table.borrow_mut();
                debug_assert_eq!(table.slots.len(), self.0.index + 1);
                table.slots.truncate(self.0.index);
            });
        }
    }
    let _unregister = Unregister(id);
    body(id)
}

/// Whether the root is being polled right now (it is on the stack).
pub(crate) fn is_busy(id: RootId) -> bool {
    ROOTS.with(|table| {
        table
            .borrow()
            .slots
            .get(id.index)
            .is_some_and(|slot| slot.serial == id.serial && slot.busy)
    })
}

/// Polls a registered root. `None` when the id is stale or the root is being
/// polled further down the stack (rule R2: it is never polled reentrantly).
pub(crate) fn poll_root(id: RootId, cx: &mut Context<'_>) -> Option<Poll<()>> {
    let ptr = ROOTS.with(|table| {
        let mut table = table.borrow_mut();
        let slot = table.slots.get_mut(id.index)?;
        if slot.serial != id.serial || slot.busy {
            return None;
        }
        slot.busy = true;
        Some(slot.ptr)
    })?;

    /// Clears `busy` when the poll returns or unwinds.
    struct Release(RootId);
    impl Drop for Release {
        fn drop(&mut self) {
            ROOTS.with(|table| {
                if let Some(slot) = table.borrow_mut().slots.get_mut(self.0.index) {
                    slot.busy = false;
                }
            });
        }
    }
    let _release = Release(id);
    // SAFETY: the slot is registered (its serial matches), so `with_root` for
    // it has not returned and the root is alive; `busy` was false and is now
    // true, so no other `&mut` to it exists (the owner only reaches its root
    // through this function); the table borrow was released above, so a
    // nested loop started by this poll can register and poll other roots.
    let root = unsafe { &mut *ptr.as_ptr() };
    Some(root.poll_root(cx))
}

#[cfg(test)]
mod tests {
    //! The task allocation's reference counting, path by path; under Miri
    //! (scripts/miri.sh) these also prove every path frees the allocation
    //! exactly once and touches nothing after.

    use std::cell::{Cell, RefCell};
    use std::future::poll_fn;
    use std::rc::Rc;
    use std::task::{Poll, Waker};

    use crate::Executor;

    /// Counts drops of its output or future.
    struct Counted(Rc<Cell<u32>>);
    impl Drop for Counted {
        fn drop(&mut self) {
            self.0.set(self.0.get() + 1);
        }
    }

    /// A future that never finishes and counts one in `drops` when dropped.
    fn pending_counted(drops: &Rc<Cell<u32>>) -> impl Future<Output = ()> + use<> {
        let token = Counted(drops.clone());
        async move {
            let _token = token;
            std::future::pending::<()>().await
        }
    }

    #[test]
    fn every_waker_operation_keeps_the_count_right() {
        let ex = Executor::new();
        let drops = Rc::new(Cell::new(0));
        let kept: Rc<RefCell<Vec<Waker>>> = Rc::default();
        let (k, d) = (kept.clone(), drops.clone());
        let handle = ex.spawn(async move {
            let token = Counted(d.clone());
            let mut polls = 0;
            poll_fn(|cx| {
                polls += 1;
                match polls {
                    1 => {
                        // Clones kept past the task's end, a clone woken by
                        // value while running, a wake by reference.
                        k.borrow_mut().push(cx.waker().clone());
                        k.borrow_mut().push(cx.waker().clone());
                        let by_value = cx.waker().clone();
                        by_value.wake();
                        cx.waker().wake_by_ref();
                        Poll::Pending
                    }
                    2 => {
                        // A clone dropped unused.
                        drop(cx.waker().clone());
                        Poll::Ready(())
                    }
                    _ => unreachable!(),
                }
            })
            .await;
            drop(token);
            Counted(d)
        });
        let output = ex.block_on(handle).unwrap();
        assert_eq!(drops.get(), 1);
        drop(output);
        assert_eq!(drops.get(), 2);
        // Wakes of a finished task: by reference, then the last references
        // woken by value and dropped.
        let wakers = std::mem::take(&mut *kept.borrow_mut());
        wakers[0].wake_by_ref();
        let mut wakers = wakers.into_iter();
        wakers.next().unwrap().wake();
        drop(wakers);
        assert_eq!(ex.task_count(), 0);
    }

    #[test]
    fn a_handle_dropped_before_or_after_completion_frees_the_task() {
        let ex = Executor::new();
        let drops = Rc::new(Cell::new(0));
        // Dropped before the task runs: the output is dropped at completion.
        let d = drops.clone();
        drop(ex.spawn(async move { Counted(d) }));
        // Dropped after completion, the output unclaimed: dropped with it.
        let d = drops.clone();
        let late = ex.spawn(async move { Counted(d) });
        // Aborted while pending, with a waker still held elsewhere.
        let parked: Rc<RefCell<Option<Waker>>> = Rc::default();
        let (p, d) = (parked.clone(), drops.clone());
        let aborted = ex.spawn(async move {
            let _token = Counted(d);
            poll_fn(|cx| {
                *p.borrow_mut() = Some(cx.waker().clone());
                Poll::<()>::Pending
            })
            .await
        });
        let aborter = aborted.abort_handle();
        ex.run_until_stalled();
        assert_eq!(drops.get(), 1, "the detached task's output");
        drop(late);
        assert_eq!(drops.get(), 2, "the unclaimed output");
        aborter.abort();
        assert_eq!(drops.get(), 3, "the aborted future");
        assert!(ex.block_on(aborted).unwrap_err().is_cancelled());
        parked.borrow_mut().take().unwrap().wake();
        drop(aborter);
        assert_eq!(ex.task_count(), 0);
    }

    #[test]
    fn tasks_keep_their_executors_shared_part_alive_and_free_it_once() {
        let ex = Executor::new();
        let shared = std::sync::Arc::downgrade(&ex.inner.shared);
        let spawner = ex.spawner();
        // More tasks than one batch of holds: the reserve is refilled, and
        // the finished ones give their holds back to it.
        let parked: std::sync::Arc<std::sync::Mutex<Vec<Waker>>> = Default::default();
        for i in 0..super::HOLD_BATCH + 10 {
            let p = parked.clone();
            drop(ex.spawn(async move {
                if i % 2 == 0 {
                    poll_fn(|cx| {
                        p.lock().unwrap().push(cx.waker().clone());
                        Poll::<()>::Pending
                    })
                    .await
                }
            }));
        }
        ex.run_until_stalled();
        assert_eq!(ex.task_count(), super::HOLD_BATCH / 2 + 5);
        // The executor goes; its pending tasks live on through their wakers.
        drop(ex);
        assert!(shared.upgrade().is_some());
        let wakers = std::mem::take(&mut *parked.lock().unwrap());
        std::thread::spawn(move || {
            let mut wakers = wakers.into_iter();
            // Woken after the executor is gone, then dropped, on another
            // thread: each gives its hold back there.
            wakers.next().unwrap().wake();
            wakers.next().unwrap().wake_by_ref();
        })
        .join()
        .unwrap();
        // Only the spawner keeps it now; a spawn takes a hold again.
        let late = spawner.spawn(async {});
        assert!(
            futures::executor::block_on(late)
                .unwrap_err()
                .is_cancelled()
        );
        drop(spawner);
        assert!(
            shared.upgrade().is_none(),
            "freed once the last hold is gone"
        );
    }

    #[test]
    fn the_task_list_unlinks_tasks_from_anywhere_in_it() {
        let ex = Executor::new();
        let drops = Rc::new(Cell::new(0));
        let handles: Vec<_> = (0..6).map(|_| ex.spawn(pending_counted(&drops))).collect();
        ex.run_until_stalled();
        assert_eq!(ex.task_count(), 6);
        // The newest (the list's head), the oldest (its tail), one between.
        for i in [5, 0, 2] {
            handles[i].abort();
        }
        assert_eq!((ex.task_count(), drops.get()), (3, 3));
        // A task spawned from another thread joins the list when adopted.
        let spawner = ex.spawner();
        let remote = std::thread::spawn(move || spawner.spawn(std::future::pending::<()>()))
            .join()
            .unwrap();
        ex.run_until_stalled();
        assert_eq!(ex.task_count(), 4);
        // Shutdown reaches every task still in the list.
        ex.shutdown();
        assert_eq!((ex.task_count(), drops.get()), (0, 6));
        assert!(ex.block_on(remote).unwrap_err().is_cancelled());
        for handle in handles {
            assert!(ex.block_on(handle).unwrap_err().is_cancelled());
        }
    }

    #[test]
    fn the_run_queue_runs_tasks_in_wake_order_and_lets_go_of_stale_entries() {
        let ex = Executor::new();
        let order = Rc::new(RefCell::new(Vec::new()));
        let record = |i: u32| {
            let order = order.clone();
            async move {
                order.borrow_mut().push(i);
                crate::yield_now().await;
                order.borrow_mut().push(i + 10);
            }
        };
        let handles: Vec<_> = (0..4).map(|i| ex.spawn(record(i))).collect();
        assert_eq!(ex.run_until_stalled(), 8);
        assert_eq!(*order.borrow(), [0, 1, 2, 3, 10, 11, 12, 13]);
        assert!(handles.iter().all(|h| h.is_finished()));

        // A queued task that completes (aborted before its first poll) leaves
        // a stale entry: skipped, its reference dropped, the rest run.
        order.borrow_mut().clear();
        let drops = Rc::new(Cell::new(0));
        let aborted = ex.spawn(pending_counted(&drops));
        let after = ex.spawn(record(5));
        aborted.abort();
        assert_eq!(drops.get(), 1);
        assert_eq!(ex.run_until_stalled(), 2);
        assert_eq!(*order.borrow(), [5, 15]);
        assert!(after.is_finished());

        // Shutdown with tasks queued; the queue keeps working afterwards.
        let queued: Vec<_> = (0..3).map(|_| ex.spawn(pending_counted(&drops))).collect();
        ex.shutdown();
        assert_eq!(drops.get(), 4);
        order.borrow_mut().clear();
        let again = ex.spawn(record(7));
        ex.run_until_stalled();
        assert_eq!(*order.borrow(), [7, 17]);
        assert!(again.is_finished() && queued.iter().all(|h| h.is_finished()));

        // Dropping the executor with tasks queued (never polled) drops them.
        for _ in 0..2 {
            drop(ex.spawn(pending_counted(&drops)));
        }
        drop(ex);
        assert_eq!(drops.get(), 6);
    }

    #[test]
    fn a_task_woken_many_times_while_queued_is_queued_and_polled_once() {
        let ex = Executor::new();
        let polls = Rc::new(Cell::new(0));
        let kept: Rc<RefCell<Option<Waker>>> = Rc::default();
        let (p, k) = (polls.clone(), kept.clone());
        let task = ex.spawn(poll_fn(move |cx| {
            p.set(p.get() + 1);
            *k.borrow_mut() = Some(cx.waker().clone());
            if p.get() == 2 {
                Poll::Ready(())
            } else {
                Poll::Pending
            }
        }));
        assert_eq!(ex.run_until_stalled(), 1);
        let waker = kept.borrow_mut().take().unwrap();
        // Wakes on this thread (by reference and by value), and from
        // another thread, all while the task is queued.
        for _ in 0..3 {
            waker.wake_by_ref();
        }
        let remote = waker.clone();
        std::thread::spawn(move || {
            remote.wake_by_ref();
            remote.wake();
        })
        .join()
        .unwrap();
        waker.wake();
        assert_eq!(ex.run_until_stalled(), 1);
        assert_eq!(polls.get(), 2);
        assert!(task.is_finished());
    }

    #[test]
    fn a_task_awaiting_a_handle_is_held_in_one_word_and_woken_or_let_go() {
        use futures::channel::oneshot;

        assert_eq!(
            std::mem::size_of::<super::AwaiterSlot>(),
            std::mem::size_of::<usize>()
        );
        let ex = Executor::new();
        // A task awaiting another: woken with the result.
        let (tx, rx) = oneshot::channel::<u32>();
        let first = ex.spawn(async move { rx.await.unwrap() });
        let second = ex.spawn(async move { first.await.unwrap() + 1 });
        ex.run_until_stalled();
        assert!(!second.is_finished());
        tx.send(4).unwrap();
        assert_eq!(ex.run_until_stalled(), 2);
        assert_eq!(ex.block_on(second).unwrap(), 5);

        // The awaiting task goes away first: the awaited one keeps its
        // waker (a reference) until it completes, then lets go of it.
        let drops = Rc::new(Cell::new(0));
        let (tx, rx) = oneshot::channel::<u32>();
        let first = ex.spawn(async move { rx.await.unwrap() });
        let token = Counted(drops.clone());
        let second = ex.spawn(async move {
            let _token = token;
            first.await
        });
        ex.run_until_stalled();
        second.abort();
        assert_eq!(drops.get(), 1);
        tx.send(1).unwrap();
        ex.run_until_stalled();
        assert_eq!(ex.task_count(), 0);

        // A handle a task registered on, then awaited by `block_on`: the
        // root's waker (also one word) replaces the task's, and is the one
        // woken. (Other wakers are boxed: see the next test.)
        let (tx, rx) = oneshot::channel::<u32>();
        let first = ex.spawn(async move { rx.await.unwrap() });
        let parked = Rc::new(RefCell::new(None));
        let out = parked.clone();
        let poller = ex.spawn(async move {
            let mut handle = first;
            assert!(futures::poll!(&mut handle).is_pending());
            *out.borrow_mut() = Some(handle);
        });
        ex.run_until_stalled();
        assert!(poller.is_finished());
        let handle = parked.borrow_mut().take().unwrap();
        let _sender = ex.spawn(async move { tx.send(9).unwrap() });
        assert_eq!(ex.block_on(handle).unwrap(), 9);
        assert_eq!(ex.task_count(), 0);
    }

    #[test]
    fn the_awaiter_slot_keeps_the_latest_waker_and_clones_only_when_it_changes() {
        use std::sync::Arc;
        use std::sync::atomic::{AtomicBool, Ordering};
        use std::task::{Context, Wake};

        struct Flag(AtomicBool);
        impl Wake for Flag {
            fn wake(self: Arc<Self>) {
                self.0.store(true, Ordering::SeqCst);
            }
        }
        let ex = Executor::new();
        let (tx, rx) = futures::channel::oneshot::channel::<()>();
        let mut handle = ex.spawn(async move {
            rx.await.unwrap();
            5
        });
        ex.run_until_stalled();
        let (a, b) = (
            Arc::new(Flag(AtomicBool::new(false))),
            Arc::new(Flag(AtomicBool::new(false))),
        );
        let (wa, wb) = (Waker::from(a.clone()), Waker::from(b.clone()));
        let mut poll =
            |waker: &Waker| std::pin::Pin::new(&mut handle).poll(&mut Context::from_waker(waker));
        assert!(poll(&wa).is_pending());
        assert_eq!(
            Arc::strong_count(&a),
            3,
            "registered: one clone in the slot"
        );
        assert!(poll(&wa).is_pending());
        assert_eq!(
            Arc::strong_count(&a),
            3,
            "the same waker again: no new clone"
        );
        assert!(poll(&wb).is_pending());
        assert_eq!(
            Arc::strong_count(&a),
            2,
            "replaced: the old clone is dropped"
        );
        assert_eq!(Arc::strong_count(&b), 3);
        tx.send(()).unwrap();
        ex.run_until_stalled();
        assert!(!a.0.load(Ordering::SeqCst));
        assert!(b.0.load(Ordering::SeqCst), "the latest waker is woken");
        assert_eq!(Arc::strong_count(&b), 2, "and taken out of the slot");
        assert!(matches!(poll(&wb), Poll::Ready(Ok(5))));
    }
}
