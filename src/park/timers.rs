//! The thread's timers: the heap of deadlines that every loop of the thread
//! fires, and whose earliest deadline bounds how long the thread parks.
//! `Sleep` (in `time/sleep.rs`) registers its timers here.
//!
//! Timers use `std`'s `Arc` and atomics (and `AtomicWaker`), not the sync
//! shim's: loom does not model time, so no model reaches them.

use std::cell::RefCell;
use std::cmp::{Ordering as CmpOrdering, Reverse};
use std::collections::BinaryHeap;
use std::panic::{AssertUnwindSafe, catch_unwind, resume_unwind};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use futures::task::AtomicWaker;

/// Heaps smaller than this are never compacted.
const MIN_COMPACT: usize = 64;

/// The part of a timer shared between its `Sleep` and the heap.
#[derive(Debug)]
pub(crate) struct TimerShared {
    /// The waker of the future awaiting the timer.
    pub(crate) waker: AtomicWaker,
    /// Set by the loop that found the deadline passed.
    pub(crate) fired: AtomicBool,
    /// The thread whose heap holds this timer.
    pub(crate) thread: u64,
}

impl TimerShared {
    /// Marks the timer fired and wakes its future.
    pub(crate) fn fire(&self) {
        self.fired.store(true, Ordering::Release);
        self.waker.wake();
    }
}

/// One registration, ordered by deadline, then by registration order.
#[derive(Debug)]
struct Entry {
    /// When it fires.
    deadline: Instant,
    /// Registration order, so equal deadlines fire first-come first-served.
    seq: u64,
    /// The timer; the heap's reference is the only one once its `Sleep` is
    /// gone, which is how cancellation is seen.
    timer: Arc<TimerShared>,
}

impl Entry {
    fn cancelled(&self) -> bool {
        Arc::strong_count(&self.timer) == 1
    }
}

impl PartialEq for Entry {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == CmpOrdering::Equal
    }
}

impl Eq for Entry {}

impl PartialOrd for Entry {
    fn partial_cmp(&self, other: &Self) -> Option<CmpOrdering> {
        Some(self.cmp(other))
    }
}

impl Ord for Entry {
    fn cmp(&self, other: &Self) -> CmpOrdering {
        (self.deadline, self.seq).cmp(&(other.deadline, other.seq))
    }
}

/// A thread's pending timers, ordered by deadline, then by registration.
#[derive(Debug, Default)]
pub(crate) struct TimerHeap {
    /// Pending registrations, earliest first.
    heap: BinaryHeap<Reverse<Entry>>,
    /// `seq` of the next registration (ties between equal deadlines go
    /// in registration order).
    next_seq: u64,
    /// Size at which to drop cancelled entries from the whole heap.
    compact_at: usize,
    /// Reused buffer for the timers that fire in one step.
    scratch: Vec<Arc<TimerShared>>,
}

impl TimerHeap {
    /// Registers `timer` to fire at `deadline`.
    pub(crate) fn insert(&mut self, deadline: Instant, timer: Arc<TimerShared>) {
        if self.heap.len() >= self.compact_at.max(MIN_COMPACT) {
            self.heap.retain(|Reverse(e)| !e.cancelled());
            self.compact_at = 2 * self.heap.len();
        }
        let seq = self.next_seq;
        self.next_seq += 1;
        self.heap.push(Reverse(Entry {
            deadline,
            seq,
            timer,
        }));
    }

    /// Drops cancelled entries at the top.
    fn purge_top(&mut self) {
        while self.heap.peek().is_some_and(|Reverse(e)| e.cancelled()) {
            self.heap.pop();
        }
    }

    /// The earliest deadline of a timer not cancelled: how long the thread
    /// may park.
    pub(crate) fn next_deadline(&mut self) -> Option<Instant> {
        self.purge_top();
        self.heap.peek().map(|Reverse(e)| e.deadline)
    }

    /// Fires the due timers of `heap`. Returns whether any fired.
    ///
    /// A waker that panics does not keep the other due timers from firing;
    /// the first such panic is resumed once they all have.
    pub(crate) fn fire_due(heap: &RefCell<TimerHeap>) -> bool {
        let due = heap.borrow_mut().take_due();
        let Some(mut due) = due else { return false };
        let fired = !due.is_empty();
        let mut first_panic = None;
        for timer in due.drain(..) {
            if let Err(payload) = catch_unwind(AssertUnwindSafe(|| timer.fire())) {
                first_panic.get_or_insert(payload);
            }
        }
        heap.borrow_mut().return_scratch(due);
        if let Some(payload) = first_panic {
            resume_unwind(payload);
        }
        fired
    }

    /// Removes the timers that are due, in deadline order, for the caller to
    /// fire once the heap is no longer borrowed. `None` when none is due.
    fn take_due(&mut self) -> Option<Vec<Arc<TimerShared>>> {
        self.purge_top();
        let first = self.heap.peek()?.0.deadline;
        let now = Instant::now();
        if first > now {
            return None;
        }
        let mut due = std::mem::take(&mut self.scratch);
        while self.heap.peek().is_some_and(|Reverse(e)| e.deadline <= now) {
            let Reverse(entry) = self.heap.pop().expect("peeked");
            if !entry.cancelled() {
                due.push(entry.timer);
            }
        }
        Some(due)
    }

    /// Gives back the buffer lent by `take_due`.
    fn return_scratch(&mut self, scratch: Vec<Arc<TimerShared>>) {
        debug_assert!(scratch.is_empty());
        self.scratch = scratch;
    }

    /// Number of entries (live or cancelled) held.
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.heap.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn timer() -> Arc<TimerShared> {
        Arc::new(TimerShared {
            waker: AtomicWaker::new(),
            fired: AtomicBool::new(false),
            thread: 0,
        })
    }

    #[test]
    fn due_timers_come_out_in_deadline_then_registration_order() {
        let mut heap = TimerHeap::default();
        let base = Instant::now() - Duration::from_secs(1);
        let (a, b, c) = (timer(), timer(), timer());
        heap.insert(base + Duration::from_millis(20), a.clone());
        heap.insert(base + Duration::from_millis(10), b.clone());
        heap.insert(base + Duration::from_millis(10), c.clone());
        let due = heap.take_due().unwrap();
        assert_eq!(due.len(), 3);
        assert!(Arc::ptr_eq(&due[0], &b));
        assert!(Arc::ptr_eq(&due[1], &c));
        assert!(Arc::ptr_eq(&due[2], &a));
    }

    #[test]
    fn cancelled_timers_are_skipped_and_compacted() {
        let mut heap = TimerHeap::default();
        let far = Instant::now() + Duration::from_secs(3600);
        let keep = timer();
        heap.insert(far, keep.clone());
        for _ in 0..1000 {
            heap.insert(far - Duration::from_secs(1), timer()); // dropped at once
        }
        assert!(
            heap.len() < 200,
            "cancelled entries pile up: {}",
            heap.len()
        );
        assert_eq!(heap.next_deadline(), Some(far));
    }
}
