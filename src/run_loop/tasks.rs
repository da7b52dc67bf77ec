//! A loop's batch of tasks: up to `BUDGET` ready tasks of the thread's run
//! queue (every executor's, R1), in wake order, and the place of the loop's
//! own `block_on` future in that order (R11).

use crate::context::ThreadState;
use crate::park::BlockOnWake;
use crate::sched::{ThisThread, ThreadQueue};
use crate::task::{QueueMark, TaskRef};

/// Task polls between two looks at the loop's own future.
const BUDGET: usize = 64;

/// Polls up to `BUDGET` ready tasks of the thread's run queue. Returns the
/// number of polls. With `may_pause`, tasks that only other threads made
/// ready may wait a moment first (`BatchPause`). Ends early when the loop's
/// own future has its turn (see `WakeOrder`).
pub(super) fn run_tasks(ts: &ThreadState, may_pause: bool, order: WakeOrder<'_>) -> usize {
    let queue = ts.queue();
    if may_pause && queue.is_empty() && queue.has_remote() {
        ts.batch_pause.before_remote_work();
    }
    let Some(here) = ThisThread::get() else {
        return 0;
    };
    queue.drain_remote(here);
    // Until the own future's wake is seen...
    let mut left = BUDGET;
    let mut before = queue.end_mark();
    let mut polls = run_batch(queue, here, &mut left, || order.is_woken(), &mut before);
    // ...then the tasks queued before the poll that woke it, within the
    // budget: those pushed during that poll (the task itself, requeued, a
    // task it woke after the wake) come after the own future.
    let mut ahead = order.ahead(|| queue.queued_through(before, left));
    polls += run_batch(queue, here, &mut ahead, || false, &mut before);
    polls
}

/// Polls up to `*left` tasks of `queue` until `stop` says so, counting
/// `*left` down and marking the queue's end in `*mark` after each task is
/// taken out (it may come back during its poll, a yield: then it goes
/// after a wake its poll made). Returns the number of polls.
///
/// The executor of a task is looked up once and kept for the tasks of the
/// same one that follow (most batches are of one executor): its `Rc`
/// keeps it alive while its tasks run, whatever they drop.
#[inline(always)]
fn run_batch(
    queue: &ThreadQueue,
    here: ThisThread,
    left: &mut usize,
    stop: impl Fn() -> bool,
    mark: &mut QueueMark,
) -> usize {
    let mut polls = 0;
    while *left > 0 && !stop() {
        let Some(task) = queue.pop() else {
            *left = 0;
            return polls;
        };
        *mark = queue.end_mark();
        *left -= 1;
        let Some(executor) = task.executor_here(here) else {
            continue; // gone: its tasks are finished
        };
        let id = task.executor_id();
        polls += usize::from(task.poll(&executor));
        while *left > 0 && !stop() {
            let Some(task) = queue.pop() else {
                *left = 0;
                return polls;
            };
            *mark = queue.end_mark();
            *left -= 1;
            polls += if task.executor_id() == id {
                usize::from(task.poll(&executor))
            } else {
                poll_elsewhere(task, here)
            };
        }
    }
    polls
}

/// Polls `task` with its executor, looked up through the task. Returns the
/// number of polls (0 for an executor that is gone, whose tasks are
/// finished).
#[inline(never)]
fn poll_elsewhere(task: TaskRef, here: ThisThread) -> usize {
    match task.executor_here(here) {
        Some(executor) => usize::from(task.poll(&executor)),
        None => 0,
    }
}

/// Where a loop's own `block_on` future stands in wake order while a batch
/// of tasks runs (R11). Once it is woken on this thread, either the batch
/// ends at once (`first`: a nested call, so that it unwinds as soon as it
/// can) or the tasks queued before its wake go first (FIFO, as asyncio's
/// ready queue holds its main task): the outermost loop, and a future that
/// woke itself (`yield_now` lets queued tasks run). Either way it is polled
/// before any task woken after it. A wake from another thread waits for the
/// end of the batch, so a stream from there is still taken in batches.
pub(super) struct WakeOrder<'a> {
    /// The own future's waker (`None` for `run_until_stalled`).
    own: Option<&'a BlockOnWake>,
    /// Whether the own future goes before the queued tasks.
    first: bool,
}

impl<'a> WakeOrder<'a> {
    /// Order for a batch of the loop whose own future wakes `own`.
    #[inline]
    pub(super) fn new(own: Option<&'a BlockOnWake>, first: bool) -> Self {
        WakeOrder { own, first }
    }

    /// Whether the own future is woken on this thread.
    #[inline(always)]
    fn is_woken(&self) -> bool {
        self.own.is_some_and(BlockOnWake::is_woken_here)
    }

    /// How many task polls still go before the own future, of the tasks
    /// queued before its wake (counted by `queued`): none in a nested call
    /// (or before it is woken), else all of them.
    #[inline]
    fn ahead(&self, queued: impl FnOnce() -> usize) -> usize {
        if self.first || !self.is_woken() {
            0
        } else {
            queued()
        }
    }
}
