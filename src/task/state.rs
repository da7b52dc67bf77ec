//! A task's state word ([`State`]): the flags, the reference count in the
//! bits above them, and every change made to the word: claiming the future
//! for a poll and giving it back, completing, claiming the result,
//! scheduling a wake, counting references, recording an abort, adopting a
//! task, locking the awaiter's slot.
//!
//! There is no unsafe code here, but the unsafe code of every sibling rests
//! on what this word says (which part of the cell is live, who has the
//! future, who may take the result, how many references are left, who
//! holds the awaiter's slot): review it as if it were unsafe. The bits are
//! private to this file. The siblings read the word through a [`Snapshot`]
//! and change it only through the named transitions of `State`, whose
//! outcomes are named types they cannot drop unread. Every transition that
//! decides from the word it finds goes through one compare-and-swap loop,
//! `State::transition`; the awaiter's lock spins on its own (see
//! `State::lock_awaiter`), and the changes that cannot fail are single
//! read-modify-write operations.

use std::fmt;

use crate::sync::{AtomicUsize, Ordering};

use super::cell::Header;
use crate::sched::ThisThread;

/// In a run queue, or to be queued again when the current poll returns.
const SCHEDULED: usize = 1 << 0;
/// Claimed for a poll (or a drop): whoever set it has the future to itself.
/// A claimed task is being polled on this thread's stack, or (R12) on a
/// stack of its own, suspended while a `block_on` in it waits: "on this
/// stack" is not the same thing, and the frames tell it (see
/// `ThreadState::on_this_stack`).
const CLAIMED: usize = 1 << 1;
/// The future is gone and the result is stored (or was taken).
const COMPLETED: usize = 1 << 2;
/// `abort()` was called; honoured when the task is next claimed.
const CANCELLED: usize = 1 << 3;
/// A `JoinHandle` for the task exists.
const HANDLE: usize = 1 << 4;
/// The result was taken by the handle or dropped.
const TAKEN: usize = 1 << 5;
/// The `JoinHandle` registered a waker to wake at completion.
const AWAITER: usize = 1 << 6;
/// The future is `Send`: it may be dropped on any thread (set at creation
/// for tasks of a `Spawner`, which may be cancelled before the owner thread
/// ever sees them).
const SEND_FUTURE: usize = 1 << 7;
/// Spawned from another thread and not yet adopted into its executor's
/// task list (set at creation, cleared on the owner thread by adoption).
const UNADOPTED: usize = 1 << 8;
/// The awaiter's slot is locked (see `State::lock_awaiter`).
const AWAITER_LOCK: usize = 1 << 9;
/// The stored result is an error (set together with `COMPLETED`).
const FAILED: usize = 1 << 10;
/// One reference; the count is the state word's bits above the flags.
const REF_ONE: usize = 1 << 11;
/// Masks the reference count out of the word.
const REF_MASK: usize = !(REF_ONE - 1);

/// A task's state word, in its header: the flags above and the reference
/// count. Only this file touches the atomic.
pub(super) struct State(AtomicUsize);

/// The state word as one load or transition saw it, to ask about with the
/// methods below (which read no atomic).
#[derive(Clone, Copy)]
#[must_use]
pub(super) struct Snapshot(usize);

impl Snapshot {
    /// Whether any of `bits` is set.
    #[inline]
    fn any(self, bits: usize) -> bool {
        self.0 & bits != 0
    }

    /// This word with `bits` set.
    #[inline]
    fn set(self, bits: usize) -> Snapshot {
        Snapshot(self.0 | bits)
    }

    /// This word with `bits` clear.
    #[inline]
    fn clear(self, bits: usize) -> Snapshot {
        Snapshot(self.0 & !bits)
    }

    /// This word with one reference more.
    #[inline]
    fn add_ref(self) -> Snapshot {
        Snapshot(self.0 + REF_ONE)
    }

    /// This word with one reference less.
    #[inline]
    fn sub_ref(self) -> Snapshot {
        Snapshot(self.0 - REF_ONE)
    }

    /// Whether someone holds the claim on the future (`CLAIMED`): it is
    /// being polled or dropped, on its executor's thread.
    #[inline]
    pub(super) fn is_claimed(self) -> bool {
        self.any(CLAIMED)
    }

    /// Whether the future is gone and the result stored (`COMPLETED`; the
    /// result may have been taken since).
    #[inline]
    pub(super) fn is_completed(self) -> bool {
        self.any(COMPLETED)
    }

    /// Whether `abort()` was requested (`CANCELLED`).
    #[inline]
    pub(super) fn is_cancelled(self) -> bool {
        self.any(CANCELLED)
    }

    /// Whether the stored result is an error (`FAILED`); meaningful once
    /// completed.
    #[inline]
    pub(super) fn is_failed(self) -> bool {
        self.any(FAILED)
    }

    /// Whether the result was taken by the handle or dropped (`TAKEN`).
    #[inline]
    pub(super) fn result_taken(self) -> bool {
        self.any(TAKEN)
    }

    /// Whether completed with the result still in the cell, for nobody has
    /// claimed it (`COMPLETED` without `TAKEN`).
    #[inline]
    pub(super) fn has_unclaimed_result(self) -> bool {
        self.0 & (COMPLETED | TAKEN) == COMPLETED
    }

    /// Whether a `JoinHandle` exists (`HANDLE`).
    #[inline]
    pub(super) fn has_handle(self) -> bool {
        self.any(HANDLE)
    }

    /// Whether the `JoinHandle` ever registered a waker (`AWAITER`; never
    /// cleared, so the slot may be empty again by now).
    #[inline]
    pub(super) fn has_awaiter(self) -> bool {
        self.any(AWAITER)
    }

    /// How many references to the task exist.
    #[inline]
    pub(super) fn ref_count(self) -> usize {
        self.0 / REF_ONE
    }
}

impl fmt::Debug for Snapshot {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        const NAMES: [(usize, &str); 11] = [
            (SCHEDULED, "SCHEDULED"),
            (CLAIMED, "CLAIMED"),
            (COMPLETED, "COMPLETED"),
            (CANCELLED, "CANCELLED"),
            (HANDLE, "HANDLE"),
            (TAKEN, "TAKEN"),
            (AWAITER, "AWAITER"),
            (SEND_FUTURE, "SEND_FUTURE"),
            (UNADOPTED, "UNADOPTED"),
            (AWAITER_LOCK, "AWAITER_LOCK"),
            (FAILED, "FAILED"),
        ];
        let mut flags = f.debug_set();
        for (bit, name) in NAMES {
            if self.any(bit) {
                flags.entry(&format_args!("{name}"));
            }
        }
        flags.finish()?;
        write!(f, " refs: {}", self.ref_count())
    }
}

/// What a wake through a kept reference did (`State::schedule_by_ref`).
#[must_use]
pub(super) enum Schedule {
    /// The task was idle: it is marked scheduled, and a new reference for
    /// the run queue was counted, which the caller must queue.
    Queue,
    /// The task is being polled: it is marked scheduled, and the poll
    /// requeues it when it returns (`Running::suspend`).
    Noted,
    /// Already queued or completed: nothing changed.
    Ignored,
}

/// What became of the reference a wake by value owned
/// (`State::schedule_owned`).
#[must_use]
pub(super) enum Owned {
    /// It must go to a run queue.
    Queue,
    /// It was released; the state word it left (see `TaskRef::released`).
    Released(Snapshot),
}

/// What an abort request found (`State::request_cancel`).
#[must_use]
pub(super) enum Cancel {
    /// The task had completed: its result stands, nothing changed.
    Completed,
    /// Its future is being polled further down the stack: it is cancelled
    /// when that poll returns (`Running::suspend`).
    Running,
    /// Neither: whoever asked may claim the future and drop it, or wake the
    /// task so that its executor does.
    Idle,
}

/// Whether a claim (on the future, `State::claim_future`, or on the
/// result, `State::claim_result`) was won: the winner alone may touch what
/// it claimed.
#[must_use]
pub(super) enum Claim {
    /// The caller has it to itself until it gives it back.
    Won,
    /// Someone else has it, or there is nothing to claim.
    Lost,
}

/// How a poll that returned `Pending` ended (`State::suspend`).
#[must_use]
pub(super) enum Suspend {
    /// Woken during the poll: the claimer's reference must be queued again.
    Requeue,
    /// The claimer's reference was released, leaving this word (see
    /// `TaskRef::released`).
    Released(Snapshot),
    /// An abort arrived: nothing changed, the claimer keeps the future and
    /// cancels.
    Cancelled,
}

/// What the `JoinHandle`'s going away did (`State::drop_handle`).
#[must_use]
pub(super) enum DropHandle {
    /// The result was never claimed: `TAKEN` is now set, and the caller
    /// must drop the result, then release the handle's reference (still
    /// counted).
    DropResult,
    /// The handle's reference was released, leaving this word (see
    /// `TaskRef::released`).
    Released(Snapshot),
}

/// The lock bit of the awaiter's slot (`AWAITER_LOCK`), held: made only by
/// `State::lock_awaiter` as it sets the bit, which only this value's drop
/// or `unlock_registered` clears (its fields are private), so the bit is
/// cleared once, by its holder.
#[must_use]
pub(super) struct AwaiterLock<'a> {
    /// Whose `AWAITER_LOCK` bit is held.
    state: &'a State,
    /// `AWAITER` was set when the lock was taken (only the lock holder sets
    /// it, and it is never cleared).
    registered: bool,
}

impl AwaiterLock<'_> {
    /// Unlocks, noting that a waker is registered (`AWAITER`), in one step.
    #[inline]
    pub(super) fn unlock_registered(self) {
        let this = std::mem::ManuallyDrop::new(self);
        if this.registered {
            this.state.0.fetch_sub(AWAITER_LOCK, Ordering::Release);
        } else {
            // AWAITER is clear and AWAITER_LOCK set: one addition flips
            // both.
            this.state
                .0
                .fetch_add(AWAITER.wrapping_sub(AWAITER_LOCK), Ordering::Release);
        }
    }
}

impl Drop for AwaiterLock<'_> {
    #[inline]
    fn drop(&mut self) {
        self.state.0.fetch_sub(AWAITER_LOCK, Ordering::Release);
    }
}

impl State {
    /// The word of a task spawned on its executor's thread: scheduled (it
    /// starts in the run queue), with a handle, and `refs` references.
    pub(super) fn new_local(refs: usize) -> State {
        State(AtomicUsize::new(SCHEDULED | HANDLE | (refs * REF_ONE)))
    }

    /// The word of a task spawned from another thread: scheduled (it starts
    /// in the injection queue), with a handle, its future `Send` and not yet
    /// adopted, and `refs` references.
    pub(super) fn new_remote(refs: usize) -> State {
        State(AtomicUsize::new(
            SCHEDULED | HANDLE | SEND_FUTURE | UNADOPTED | (refs * REF_ONE),
        ))
    }

    /// The word now (acquire: whatever the transition that wrote it
    /// published is visible).
    #[inline]
    pub(super) fn load(&self) -> Snapshot {
        Snapshot(self.0.load(Ordering::Acquire))
    }

    /// The word now, without synchronising: only for a caller that already
    /// has seen (through an acquire load or a transition) the change it
    /// looks for, or that needs no memory behind the bit.
    #[inline]
    pub(super) fn load_relaxed(&self) -> Snapshot {
        Snapshot(self.0.load(Ordering::Relaxed))
    }

    /// Adds a reference (relaxed: whoever adds one already holds one).
    #[inline]
    pub(super) fn inc_ref(&self) {
        let prev = self.0.fetch_add(REF_ONE, Ordering::Relaxed);
        if prev > isize::MAX as usize {
            std::process::abort(); // billions of wakers: a leak somewhere
        }
    }

    /// Releases `count` references at once; returns the word left (see
    /// `TaskRef::released`).
    #[inline]
    pub(super) fn release(&self, count: usize) -> Snapshot {
        let prev = self.0.fetch_sub(count * REF_ONE, Ordering::AcqRel);
        debug_assert!((prev & REF_MASK) >= count * REF_ONE);
        Snapshot(prev - count * REF_ONE)
    }

    /// Marks the task scheduled, for a wake through a reference it keeps.
    /// `Schedule::Queue` when it was neither queued, running nor completed:
    /// the reference for the queue is already added. A wake while it runs
    /// only sets the bit (`Schedule::Noted`); `Running::suspend` then
    /// requeues it.
    #[inline]
    pub(super) fn schedule_by_ref(&self) -> Schedule {
        let changed = self.transition(|s| {
            if s.any(SCHEDULED | COMPLETED) {
                None
            } else if !s.any(CLAIMED) {
                Some(s.set(SCHEDULED).add_ref())
            } else {
                Some(s.set(SCHEDULED))
            }
        });
        match changed {
            Err(_) => Schedule::Ignored,
            Ok((before, _)) if before.any(CLAIMED) => Schedule::Noted,
            Ok(_) => Schedule::Queue,
        }
    }

    /// Like `schedule_by_ref`, for a wake that owns a reference: either
    /// that reference goes to a run queue, or it is released here.
    #[inline]
    pub(super) fn schedule_owned(&self) -> Owned {
        let (before, after) = self.update(|s| {
            if s.any(SCHEDULED | COMPLETED) {
                s.sub_ref()
            } else if !s.any(CLAIMED) {
                s.set(SCHEDULED)
            } else {
                s.set(SCHEDULED).sub_ref()
            }
        });
        if before.any(SCHEDULED | COMPLETED | CLAIMED) {
            Owned::Released(after)
        } else {
            Owned::Queue
        }
    }

    /// Claims the future for a poll or a drop: sets `CLAIMED` and clears
    /// `SCHEDULED`, unless the task is running (on the stack) or completed.
    /// The caller must be on a thread that may touch the future
    /// (`Header::may_touch`).
    #[inline]
    pub(super) fn claim_future(&self) -> Claim {
        let changed = self
            .transition(|s| (!s.any(CLAIMED | COMPLETED)).then(|| s.set(CLAIMED).clear(SCHEDULED)));
        match changed {
            Ok(_) => Claim::Won,
            Err(_) => Claim::Lost,
        }
    }

    /// Gives the claim on the future back after a poll that returned
    /// `Pending`, with the claimer's reference: it is kept for the run
    /// queue if the task was woken meanwhile (`SCHEDULED`), else released.
    /// Changes nothing if an abort arrived meanwhile.
    #[inline]
    pub(super) fn suspend(&self) -> Suspend {
        let changed = self.transition(|s| {
            if s.any(CANCELLED) {
                None
            } else if s.any(SCHEDULED) {
                Some(s.clear(CLAIMED))
            } else {
                Some(s.clear(CLAIMED).sub_ref())
            }
        });
        match changed {
            Err(_) => Suspend::Cancelled,
            Ok((before, _)) if before.any(SCHEDULED) => Suspend::Requeue,
            Ok((_, after)) => Suspend::Released(after),
        }
    }

    /// Publishes completion, by the claimer of the future, which stored the
    /// result (an error if `failed`): clears `CLAIMED`, sets `COMPLETED`
    /// (and `FAILED`). Returns the word before.
    #[inline]
    pub(super) fn complete(&self, failed: bool) -> Snapshot {
        let failed = if failed { FAILED } else { 0 };
        // CLAIMED is set, COMPLETED and FAILED clear: one flip sets them
        // right.
        let prev = Snapshot(
            self.0
                .fetch_xor(CLAIMED | COMPLETED | failed, Ordering::AcqRel),
        );
        debug_assert!(prev.is_claimed() && !prev.is_completed());
        prev
    }

    /// Claims the stored result for the `JoinHandle`: sets `TAKEN` if the
    /// task completed and nobody claimed the result yet.
    #[inline]
    pub(super) fn claim_result(&self) -> Claim {
        let changed = self.transition(|s| s.has_unclaimed_result().then(|| s.set(TAKEN)));
        match changed {
            Ok(_) => Claim::Won,
            Err(_) => Claim::Lost,
        }
    }

    /// The `JoinHandle` goes away: clears `HANDLE` and releases its
    /// reference in one step, unless a result nobody claimed must be
    /// dropped first (then it claims it, and keeps the reference).
    #[inline]
    pub(super) fn drop_handle(&self) -> DropHandle {
        let (before, after) = self.update(|s| {
            if s.has_unclaimed_result() {
                s.clear(HANDLE).set(TAKEN)
            } else {
                s.clear(HANDLE).sub_ref()
            }
        });
        if before.has_unclaimed_result() {
            DropHandle::DropResult
        } else {
            DropHandle::Released(after)
        }
    }

    /// Records an abort request (`CANCELLED`), unless the task already
    /// completed (the abort is then a no-op); says whether the future was
    /// on the stack at that moment.
    pub(super) fn request_cancel(&self) -> Cancel {
        match self.transition(|s| (!s.any(COMPLETED)).then(|| s.set(CANCELLED))) {
            Err(_) => Cancel::Completed,
            Ok((before, _)) if before.any(CLAIMED) => Cancel::Running,
            Ok(_) => Cancel::Idle,
        }
    }

    /// Adopts a task spawned from another thread into its executor's task
    /// list: clears `UNADOPTED` (on the owner thread, which alone clears
    /// it, so a relaxed look first spares the common case a write).
    #[inline]
    pub(super) fn adopt(&self) {
        if self.0.load(Ordering::Relaxed) & UNADOPTED != 0 {
            self.0.fetch_and(!UNADOPTED, Ordering::AcqRel);
        }
    }

    /// Takes the lock bit of the awaiter's slot (`AWAITER_LOCK`), for
    /// `Header::lock_awaiter`, spinning while another holds it (briefly:
    /// it is never held across user code).
    ///
    /// Not through `transition`: while the bit is set this waits (relaxed
    /// loads and a spin hint) instead of deciding from the word, and a lock
    /// needs only acquire on success and nothing on failure, where the
    /// transitions use acquire-release and acquire.
    #[inline]
    pub(super) fn lock_awaiter(&self) -> AwaiterLock<'_> {
        let mut s = self.0.load(Ordering::Relaxed);
        loop {
            if s & AWAITER_LOCK != 0 {
                crate::sync::spin_hint();
                s = self.0.load(Ordering::Relaxed);
                continue;
            }
            match self.0.compare_exchange_weak(
                s,
                s | AWAITER_LOCK,
                Ordering::Acquire,
                Ordering::Relaxed,
            ) {
                Ok(_) => {
                    return AwaiterLock {
                        state: self,
                        registered: s & AWAITER != 0,
                    };
                }
                Err(actual) => s = actual,
            }
        }
    }

    /// The one compare-and-swap loop on the state word. `next` sees the
    /// current word and returns the word to replace it with, or `None` to
    /// leave it. Returns the word before and after the change, or the word
    /// left unchanged. Each transition names its outcome from those (plain
    /// words, which stay in registers: an outcome built inside `next` went
    /// through the stack, 6 instructions per poll). Ordering:
    /// acquire-release on success, acquire for the loads, so each transition
    /// sees every change before it and publishes its own.
    #[inline]
    fn transition(
        &self,
        mut next: impl FnMut(Snapshot) -> Option<Snapshot>,
    ) -> Result<(Snapshot, Snapshot), Snapshot> {
        let mut current = self.0.load(Ordering::Acquire);
        loop {
            let Some(after) = next(Snapshot(current)) else {
                return Err(Snapshot(current));
            };
            match self.0.compare_exchange_weak(
                current,
                after.0,
                Ordering::AcqRel,
                Ordering::Acquire,
            ) {
                Ok(_) => return Ok((Snapshot(current), after)),
                Err(actual) => current = actual,
            }
        }
    }

    /// `transition` for a change that always happens: returns the word
    /// before and after it.
    #[inline]
    fn update(&self, mut next: impl FnMut(Snapshot) -> Snapshot) -> (Snapshot, Snapshot) {
        match self.transition(|s| Some(next(s))) {
            Ok(change) => change,
            Err(_) => unreachable!("nestloop: internal error: an update was refused"),
        }
    }
}

impl Header {
    /// Whether the task was ever in its executor's task list (false only
    /// for a task spawned from another thread and not yet adopted).
    #[inline]
    pub(crate) fn is_adopted(&self) -> bool {
        self.state.0.load(Ordering::Acquire) & UNADOPTED == 0
    }

    /// Whether the thread `here` may touch the future: it is the owner, or
    /// the future is `Send`.
    #[inline]
    pub(super) fn may_touch(&self, here: Option<ThisThread>) -> bool {
        here.is_some_and(|t| t.owns(&self.shared))
            || self.state.0.load(Ordering::Relaxed) & SEND_FUTURE != 0
    }

    /// For an idle task (neither running nor completed), whether it may
    /// still be woken by something outside its executor (`None` for any
    /// other task): it is queued, or has more references than its
    /// executor's task list and its `JoinHandle` hold, so a waker of it
    /// exists somewhere (or an `AbortHandle`, which counts the same: it can
    /// end the task). No waker of an idle task can be made before it runs
    /// again, so a `Some(false)`, a dormant task, stays so until then (R9).
    pub(crate) fn wakeable_if_idle(&self) -> Option<bool> {
        let s = self.state.load();
        if s.any(COMPLETED | CLAIMED) {
            return None;
        }
        let held = 1 + usize::from(s.has_handle());
        Some(s.any(SCHEDULED) || s.ref_count() > held)
    }
}
