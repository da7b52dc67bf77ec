//! The only module with `unsafe` code.
//!
//! It holds two things whose safety rests on invariants that the borrow
//! checker cannot see:
//!
//! * [`TaskCore`]: a task's state word and the cell that holds its future and
//!   then its result. The future may be `!Send`, yet wakers that point at the
//!   task are `Send + Sync`; the state word's `RUNNING` bit and an owner-thread
//!   check make every access to the future exclusive and on the right thread.
//! * The root table: `block_on` futures live on the stack of the `block_on`
//!   call that owns them, yet a nested loop further up the stack must be able
//!   to poll them (rule R3). They are reached through lifetime-erased pointers
//!   that a guard removes before the owning call returns or unwinds.
//!
//! Everything here exposes a safe API; the rest of the crate has
//! `#![deny(unsafe_code)]`.
#![allow(unsafe_code)]

use std::cell::RefCell;
use std::future::Future;
use std::marker::PhantomData;
use std::mem;
use std::pin::Pin;
use std::ptr::NonNull;

use std::task::{Context, Poll};

use crate::join::JoinError;
use crate::park::thread_key;
use crate::sync::{AtomicUsize, Ordering, UnsafeCell, thread_locals};

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

/// What a task's cell holds over its life.
enum Stage<F: Future> {
    /// The future, not yet finished.
    Pending(F),
    /// The result, until the handle takes it.
    Done(Result<F::Output, JoinError>),
    /// Neither: between dropping the future and storing the result, or after
    /// the result was taken.
    Empty,
}

/// A task's state word and its future-then-result cell.
///
/// It is only ever created inside an `Arc` (see `TaskCell::new`) and never
/// moved out of it, so the future stays pinned where it is.
pub(crate) struct TaskCore<F: Future> {
    /// Bit set of the constants above.
    state: AtomicUsize,
    /// The thread whose executor polls the future.
    owner: u64,
    /// The future, then the result.
    stage: UnsafeCell<Stage<F>>,
}

// SAFETY: the future (possibly `!Send`) is only touched through `Running`,
// which `begin` hands out only on the owner thread (or any thread when the
// future is `Send`, see `new_send`) and only to whoever set the `RUNNING` bit,
// so at most one party ever touches it, on a thread where that is allowed.
// The result is written by the `Running` holder before `COMPLETED` is
// published with release ordering, and read or dropped by exactly one party:
// whoever wins the `TAKEN` bit after observing `COMPLETED` with acquire
// ordering. That party is the `JoinHandle`, which is `Send` only when the
// output is (its `PhantomData<T>`), or the owner thread.
unsafe impl<F: Future> Send for TaskCore<F> {}
// SAFETY: see `Send` above; `&TaskCore` only gives atomic access to the state
// and the guarded access to the cell described there.
unsafe impl<F: Future> Sync for TaskCore<F> {}

impl<F: Future> TaskCore<F> {
    /// A core for a future that must stay on the current thread.
    pub(crate) fn new(future: F, state: usize) -> Self {
        Self::with_owner(future, state, thread_key(), false)
    }

    /// A core for a `Send` future owned by the thread `owner`; it may be
    /// cancelled (dropped) on any thread.
    pub(crate) fn new_send(future: F, state: usize, owner: u64) -> Self
    where
        F: Send,
    {
        Self::with_owner(future, state, owner, true)
    }

    fn with_owner(future: F, state: usize, owner: u64, send_future: bool) -> Self {
        let state = if send_future {
            state | SEND_FUTURE
        } else {
            state
        };
        TaskCore {
            state: AtomicUsize::new(state),
            owner,
            stage: UnsafeCell::new(Stage::Pending(future)),
        }
    }

    /// Whether this thread may touch the future: it is the owner, or the
    /// future is `Send`.
    fn may_touch_here(&self) -> bool {
        self.owner == thread_key() || self.state.load(Ordering::Relaxed) & SEND_FUTURE != 0
    }

    /// The current state bits.
    pub(crate) fn state(&self) -> usize {
        self.state.load(Ordering::Acquire)
    }

    /// Marks the task scheduled. Returns true when the caller must put it in
    /// a run queue: it was neither queued, running nor completed. A wake
    /// while it runs only sets the bit; `Running::suspend` then requeues it.
    pub(crate) fn schedule(&self) -> bool {
        match self
            .state
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |s| {
                (s & (SCHEDULED | COMPLETED) == 0).then_some(s | SCHEDULED)
            }) {
            Ok(prev) => prev & RUNNING == 0,
            Err(_) => false,
        }
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

    /// Claims the future: sets `RUNNING`, clears `SCHEDULED`. `None` when it
    /// is running (on the stack), completed, or not ours to touch from this
    /// thread.
    pub(crate) fn begin(&self) -> Option<Running<'_, F>> {
        if !self.may_touch_here() {
            return None;
        }
        self.state
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |s| {
                (s & (RUNNING | COMPLETED) == 0).then_some((s | RUNNING) & !SCHEDULED)
            })
            .ok()?;
        Some(Running {
            core: self,
            _not_send: PhantomData,
        })
    }

    /// Notes that the `JoinHandle` registered a waker (see `AWAITER`).
    pub(crate) fn note_awaiter(&self) {
        // Once set it stays set: a handle polled again skips the write.
        if self.state.load(Ordering::Relaxed) & AWAITER == 0 {
            self.state.fetch_or(AWAITER, Ordering::AcqRel);
        }
    }

    /// Takes the result if the task completed and nobody took it yet.
    /// Called by the `JoinHandle`.
    pub(crate) fn take_result(&self) -> Option<Result<F::Output, JoinError>> {
        if self.state.load(Ordering::Acquire) & (COMPLETED | TAKEN) != COMPLETED {
            return None;
        }
        let prev = self
            .state
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |s| {
                (s & (COMPLETED | TAKEN) == COMPLETED).then_some(s | TAKEN)
            })
            .ok()?;
        debug_assert!(prev & COMPLETED != 0);
        Some(self.take_stage_result())
    }

    /// The `JoinHandle` goes away. Returns the result when it had completed
    /// and was never taken: the caller drops it.
    pub(crate) fn drop_handle(&self) -> Option<Result<F::Output, JoinError>> {
        if self.state.load(Ordering::Acquire) & TAKEN != 0 {
            // The handle took the result: nothing looks at HANDLE any more.
            // (The handle's `Arc` drop that follows orders its access to the
            // cell before the last drop; loom cannot see `std`'s `Arc`, so
            // model that release on the state word, see `Drop` below.)
            #[cfg(nestloop_loom)]
            self.state.fetch_or(0, Ordering::Release);
            return None;
        }
        let prev = self
            .state
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |s| {
                let mut next = s & !HANDLE;
                if s & (COMPLETED | TAKEN) == COMPLETED {
                    next |= TAKEN;
                }
                Some(next)
            })
            .unwrap_or_else(|s| s);
        (prev & (COMPLETED | TAKEN) == COMPLETED).then(|| self.take_stage_result())
    }

    /// Moves the result out of the cell. Only for whoever just set `TAKEN`
    /// on a completed task.
    fn take_stage_result(&self) -> Result<F::Output, JoinError> {
        // SAFETY: the caller set TAKEN on a COMPLETED task (acquire ordering
        // pairs with the release in `Running::complete`), which only one
        // party can do; after COMPLETED nobody else touches the cell.
        let stage = self
            .stage
            .with_mut(|stage| unsafe { mem::replace(&mut *stage, Stage::Empty) });
        match stage {
            Stage::Done(result) => result,
            _ => unreachable!("nestloop: internal error: completed task without a result"),
        }
    }
}

impl<F: Future> Drop for TaskCore<F> {
    fn drop(&mut self) {
        // The `Arc` that owns this core makes the last drop happen after
        // every other access; loom cannot see `std`'s `Arc`, so give it the
        // same edge through the state word (a read-modify-write reads the
        // latest write).
        #[cfg(nestloop_loom)]
        self.state.fetch_or(0, Ordering::AcqRel);
        let wrong_thread = !self.may_touch_here();
        // SAFETY: `&mut self`: no other reference to the cell exists.
        let stage = self
            .stage
            .with_mut(|stage| unsafe { mem::replace(&mut *stage, Stage::Empty) });
        if wrong_thread && !matches!(stage, Stage::Empty) {
            // The owner thread's executor always empties its tasks before it
            // goes away; if that ever did not happen, leaking a `!Send` value
            // is safe and dropping it here would not be.
            mem::forget(stage);
        }
    }
}

/// Exclusive access to a task's future, held while it is polled or dropped.
/// Obtained from `TaskCore::begin`; stays on the thread that claimed it.
pub(crate) struct Running<'a, F: Future> {
    core: &'a TaskCore<F>,
    _not_send: PhantomData<*const ()>,
}

impl<F: Future> Running<'_, F> {
    /// Runs `f` on the cell.
    fn with_stage<R>(&mut self, f: impl FnOnce(&mut Stage<F>) -> R) -> R {
        // SAFETY: `Running` exists only for the party that set RUNNING (see
        // `begin`), and `&mut self` makes this access unique among its uses.
        self.core.stage.with_mut(|stage| f(unsafe { &mut *stage }))
    }

    /// Whether `abort()` was requested.
    pub(crate) fn cancel_requested(&self) -> bool {
        self.core.state() & CANCELLED != 0
    }

    /// Polls the future once.
    pub(crate) fn poll(&mut self, cx: &mut Context<'_>) -> Poll<F::Output> {
        self.with_stage(|stage| match stage {
            // SAFETY: the future sits in the task's `Arc` allocation and is
            // never moved: it is only ever dropped in place (`drop_future`).
            Stage::Pending(future) => unsafe { Pin::new_unchecked(future) }.poll(cx),
            _ => unreachable!("nestloop: internal error: polled a finished task"),
        })
    }

    /// Drops the future (running its destructor, which may panic: the cell is
    /// already empty by then).
    pub(crate) fn drop_future(&mut self) {
        let old = self.with_stage(|stage| mem::replace(stage, Stage::Empty));
        drop(old);
    }

    /// Ends a poll that returned `Pending`. `Ok(true)` when the task was woken
    /// meanwhile and must be queued again; `Err(self)` when an abort arrived
    /// meanwhile: the caller keeps the claim and cancels.
    pub(crate) fn suspend(self) -> Result<bool, Self> {
        match self
            .core
            .state
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |s| {
                (s & CANCELLED == 0).then_some(s & !RUNNING)
            }) {
            Ok(prev) => Ok(prev & SCHEDULED != 0),
            Err(_) => Err(self),
        }
    }

    /// Stores the result and publishes completion. The future must have been
    /// dropped. Returns the result back when no `JoinHandle` exists (the
    /// caller drops it), and whether an awaiter's waker was registered.
    pub(crate) fn complete(
        mut self,
        result: Result<F::Output, JoinError>,
    ) -> (Option<Result<F::Output, JoinError>>, bool) {
        self.with_stage(|stage| {
            debug_assert!(matches!(stage, Stage::Empty));
            *stage = Stage::Done(result);
        });
        // RUNNING is set and COMPLETED clear: one flip sets them right. With
        // no handle, nobody else will ever look at the result.
        let prev = self
            .core
            .state
            .fetch_xor(RUNNING | COMPLETED, Ordering::AcqRel);
        debug_assert!(prev & RUNNING != 0 && prev & COMPLETED == 0);
        let orphan = (prev & HANDLE == 0).then(|| self.core.take_stage_result());
        (orphan, prev & AWAITER != 0)
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
