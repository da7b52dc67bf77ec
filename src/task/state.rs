//! A task's state word: the flags, the reference count in the bits above
//! them, and the transitions on the word that do not depend on the
//! future's type (scheduling a wake, counting a reference, recording an
//! abort, the checks the deadlock detection makes).
//!
//! There is no unsafe code here, but the unsafe code of every sibling rests
//! on what this word says (which part of the cell is live, who has the
//! future, how many references are left): review it as if it were unsafe.
//! The flags the siblings need beyond the crate-visible ones are
//! `pub(super)`; the lock bit of the awaiter's slot is taken and released
//! only in `awaiter.rs`.

use crate::sync::Ordering;

use super::cell::Header;
use crate::sched::ThisThread;

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
pub(super) const SEND_FUTURE: usize = 1 << 7;
/// Spawned from another thread and not yet adopted into its executor's
/// task list (set at creation, cleared on the owner thread by adoption).
pub(super) const UNADOPTED: usize = 1 << 8;
/// The awaiter's slot is locked (see `Header::lock_awaiter`).
pub(super) const AWAITER_LOCK: usize = 1 << 9;
/// The stored result is an error (set together with `COMPLETED`).
pub(super) const FAILED: usize = 1 << 10;
/// One reference; the count is the state word's bits above the flags.
pub(super) const REF_ONE: usize = 1 << 11;
/// The reference-count bits.
pub(super) const REF_MASK: usize = !(REF_ONE - 1);

/// What a wake through a kept reference did (`Header::schedule_by_ref`).
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

/// What became of the reference a wake by value owned.
#[must_use]
pub(super) enum Owned {
    /// It must go to a run queue.
    Queue,
    /// It was released; the state word it left (see `TaskRef::released`).
    Released(usize),
}

/// What an abort request found (`Header::request_cancel`).
#[must_use]
pub(crate) enum Cancel {
    /// The task had completed: its result stands, nothing changed.
    Completed,
    /// Its future is being polled further down the stack: it is cancelled
    /// when that poll returns (`Running::suspend`).
    Running,
    /// Neither: whoever asked may claim the future and drop it, or wake the
    /// task so that its executor does.
    Idle,
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
    pub(super) fn may_touch(&self, here: Option<ThisThread>) -> bool {
        here.is_some_and(|t| t.owns(&self.shared))
            || self.state.load(Ordering::Relaxed) & SEND_FUTURE != 0
    }

    /// Adds a reference.
    #[inline]
    pub(super) fn inc_ref(&self) {
        let prev = self.state.fetch_add(REF_ONE, Ordering::Relaxed);
        if prev > isize::MAX as usize {
            std::process::abort(); // billions of wakers: a leak somewhere
        }
    }

    /// Marks the task scheduled, for a wake through a reference it keeps.
    /// `Schedule::Queue` when it was neither queued, running nor completed:
    /// the reference for the queue is already added. A wake while it runs
    /// only sets the bit (`Schedule::Noted`); `Running::suspend` then
    /// requeues it.
    #[inline]
    pub(super) fn schedule_by_ref(&self) -> Schedule {
        self.transition(|s| {
            if s & (SCHEDULED | COMPLETED) != 0 {
                Err(Schedule::Ignored)
            } else if s & RUNNING == 0 {
                Ok(((s | SCHEDULED) + REF_ONE, Schedule::Queue))
            } else {
                Ok((s | SCHEDULED, Schedule::Noted))
            }
        })
    }

    /// Like `schedule_by_ref`, for a wake that owns a reference: either
    /// that reference goes to a run queue, or it is released here.
    #[inline]
    pub(super) fn schedule_owned(&self) -> Owned {
        self.transition(|s| {
            Ok(if s & (SCHEDULED | COMPLETED) != 0 {
                (s - REF_ONE, Owned::Released(s - REF_ONE))
            } else if s & RUNNING == 0 {
                (s | SCHEDULED, Owned::Queue)
            } else {
                let next = (s | SCHEDULED) - REF_ONE;
                (next, Owned::Released(next))
            })
        })
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

    /// Records an abort request (`CANCELLED`), unless the task already
    /// completed (the abort is then a no-op); says whether the future was
    /// on the stack at that moment.
    pub(crate) fn request_cancel(&self) -> Cancel {
        self.transition(|s| {
            if s & COMPLETED != 0 {
                Err(Cancel::Completed)
            } else if s & RUNNING != 0 {
                Ok((s | CANCELLED, Cancel::Running))
            } else {
                Ok((s | CANCELLED, Cancel::Idle))
            }
        })
    }

    /// The one compare-and-swap loop on the state word. `f` sees the
    /// current word and returns the next one with the outcome, or an
    /// outcome without a change (then nothing is written). Ordering:
    /// acquire-release on success, acquire for the loads, so each
    /// transition sees every change before it and publishes its own.
    #[inline]
    fn transition<R>(&self, mut f: impl FnMut(usize) -> Result<(usize, R), R>) -> R {
        let mut current = self.state.load(Ordering::Acquire);
        loop {
            let (next, outcome) = match f(current) {
                Ok(change) => change,
                Err(outcome) => return outcome,
            };
            match self.state.compare_exchange_weak(
                current,
                next,
                Ordering::AcqRel,
                Ordering::Acquire,
            ) {
                Ok(_) => return outcome,
                Err(actual) => current = actual,
            }
        }
    }
}
