#![allow(unsafe_code)]
//! The executor's task list ([`TaskList`]) and local run queue
//! ([`RunQueue`]), linked through the tasks themselves (the header's
//! `links` and `queue_next`), so neither has a side table or buffer to
//! grow.
//!
//! Invariant: a task's `links` and `queue_next` are touched only on its
//! executor's thread, by that executor's one list and one queue: both are
//! `!Send`, and a task is only ever pushed into its own executor's. That
//! last part is upheld by safe code: `sched/core.rs` and `harness.rs` push a
//! task only into the `Inner` that spawned it, adopted it from its injection
//! queue, or ran it, and `Shared::push_local_here` (`sched/local.rs`) only
//! into the `Inner` of the task's own `Shared`, on that executor's thread. `cell.rs`
//! sets both fields (`pub(super)`) only when it creates the task. Every
//! linked task holds a reference owned by the list or queue, so its
//! neighbours are alive; a task is in the run queue at most once (only the
//! wake that sets `SCHEDULED`, `State::schedule_by_ref`/`schedule_owned`
//! in `state.rs`, queues it).

use std::cell::Cell;
use std::mem::{self, ManuallyDrop};
use std::ptr::NonNull;

use super::cell::Header;
use super::task_ref::TaskRef;

/// A task's neighbours in its executor's task list.
pub(super) struct Links {
    /// The task before it, `None` at the head, `UNLISTED_MARK` when the
    /// task is in no list.
    prev: Option<NonNull<Header>>,
    /// The task after it, `None` at the tail.
    next: Option<NonNull<Header>>,
}

/// `Links::prev` of a task in no list: an address no task has.
const UNLISTED_MARK: NonNull<Header> = NonNull::dangling();

impl Links {
    /// In no list.
    pub(super) const UNLISTED: Links = Links {
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
    /// The most recently added task (`None`: the list is empty).
    head: Cell<Option<NonNull<Header>>>,
    /// How many tasks the list holds, for `Executor::task_count`.
    len: Cell<usize>,
}

impl TaskList {
    /// A list with no task, for a new executor.
    pub(crate) fn new() -> Self {
        TaskList {
            head: Cell::new(None),
            len: Cell::new(0),
        }
    }

    /// How many tasks are listed: the live tasks of the executor that
    /// were spawned on its thread or adopted.
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
        header.state.adopt();
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
                    .with_mut(|links| (*links).prev = Some(this.as_ptr()));
            }
        }
        self.head.set(Some(this.as_ptr()));
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
        // SAFETY: the list's count of the task, which it no longer holds.
        Some(unsafe { TaskRef::from_raw(task.as_ptr()) })
    }

    /// The most recent task for which `f` holds (a reference of its own),
    /// which `f` must not change.
    pub(crate) fn newest(&self, mut f: impl FnMut(&TaskRef) -> bool) -> Option<TaskRef> {
        let mut found = None;
        self.any(|task| {
            if f(task) {
                found = Some(task.clone());
            }
            found.is_some()
        });
        found
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
            // SAFETY: borrows the list's reference of a listed task.
            let task = ManuallyDrop::new(unsafe { TaskRef::from_raw(ptr) });
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
            // SAFETY: borrows the list's reference of its head.
            let task = ManuallyDrop::new(unsafe { TaskRef::from_raw(head) });
            drop(self.remove(&task));
        }
    }
}

/// The end of a run queue at some moment (see `RunQueue::end_mark`): only
/// compared, never dereferenced, so a mark whose task has been freed since
/// is harmless (at worst it counts a newer task at the same address).
#[derive(Clone, Copy, Debug)]
pub(crate) struct QueueMark(Option<NonNull<Header>>);

/// `Header::queue_next`: the next task in the run queue (`None` at the
/// tail), or `UNQUEUED`.
pub(super) type QueueNext = Option<NonNull<Header>>;

/// `Header::queue_next` of a task in no run queue: an address no task has.
pub(super) const UNQUEUED: QueueNext = Some(NonNull::dangling());

/// The tasks woken or spawned on an executor's thread, in wake order: a
/// queue linked through the tasks themselves (no buffer to grow), holding
/// one reference of each. A task is in it at most once: only the wake that
/// sets `SCHEDULED` (or the poll that finds it set, see `Running::suspend`)
/// queues it, and the bit stays set until the task is taken out and polled;
/// a task that completes while queued (shut down, aborted) is never queued
/// again. Like `TaskList`, only the executor's thread has it, so only that
/// thread touches a task's `queue_next`.
pub(crate) struct RunQueue {
    /// The task to run next (`None`: the queue is empty).
    head: Cell<Option<NonNull<Header>>>,
    /// The task queued last, where the next one is linked.
    tail: Cell<Option<NonNull<Header>>>,
}

impl RunQueue {
    /// A queue with no task, for a new executor.
    pub(crate) fn new() -> Self {
        RunQueue {
            head: Cell::new(None),
            tail: Cell::new(None),
        }
    }

    /// A mark of the queue's current end: `queued_through` counts the tasks
    /// from the head to it.
    #[inline]
    pub(crate) fn end_mark(&self) -> QueueMark {
        QueueMark(self.tail.get())
    }

    /// How many queued tasks were queued by the time `mark` was taken: those
    /// from the head up to the task that was last then (0 if that task has
    /// left the queue since, or the queue was empty). A walk: the loop asks
    /// once in a while, and never for more than `limit` tasks.
    pub(crate) fn queued_through(&self, mark: QueueMark, limit: usize) -> usize {
        let Some(end) = mark.0 else { return 0 };
        let mut count = 0;
        let mut cursor = self.head.get();
        while let Some(task) = cursor
            && count < limit
        {
            count += 1;
            if task == end {
                return count;
            }
            // SAFETY: as in `push`; the queue's reference keeps each queued
            // task alive (`end` is only compared, never dereferenced).
            cursor = unsafe { task.as_ref().queue_next.with_mut(|next| *next) };
        }
        // Not found within `limit`: it left the queue (popped by a nested
        // loop), or lies further than the caller needs.
        if cursor.is_none() { 0 } else { count }
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
                    .with_mut(|next| *next = Some(this.as_ptr())),
                None => self.head.set(Some(this.as_ptr())),
            }
        }
        self.tail.set(Some(this.as_ptr()));
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
        // SAFETY: the queue's count of its former head, handed over.
        Some(unsafe { TaskRef::from_raw(head) })
    }
}

impl Drop for RunQueue {
    fn drop(&mut self) {
        while let Some(task) = self.pop() {
            drop(task);
        }
    }
}
