//! A loop's batch of tasks: up to `BUDGET` ready tasks of the executors the
//! loop drives, in wake order, and the place of the loop's own `block_on`
//! future in that order (R11).

use crate::context::ThreadState;
use crate::park::RootWaker;
use crate::sched::Executor;

/// Task polls between two looks at the loop's own future.
const BUDGET: usize = 64;

/// Polls up to `BUDGET` ready tasks of the active executors. Returns the
/// number of polls. With `may_pause`, tasks that only other threads made
/// ready may wait a moment first (`BatchPause`). Ends early when the loop's
/// own future has its turn (see `WakeOrder`).
pub(super) fn run_tasks(
    ts: &ThreadState,
    active: &[Executor],
    may_pause: bool,
    order: WakeOrder<'_>,
) -> usize {
    if may_pause
        && active.iter().all(|e| !e.inner.has_local_ready())
        && active.iter().any(|e| e.inner.has_remote_ready())
    {
        ts.batch_pause.before_remote_work();
    }
    for executor in active {
        executor.inner.drain_inject();
    }
    let mut polls = 0;
    if let [executor] = active {
        let inner = &executor.inner;
        // Until the own future's wake is seen...
        let mut left = BUDGET;
        while left > 0 && !order.is_woken() {
            let Some(task) = inner.pop() else {
                return polls;
            };
            left -= 1;
            polls += usize::from(task.poll(inner));
        }
        // ...then the tasks queued before it, within the budget.
        for _ in 0..order.ahead(active, left) {
            let Some(task) = inner.pop() else { break };
            polls += usize::from(task.poll(inner));
        }
        return polls;
    }
    let mut idle = 0;
    let mut attempts = 0;
    let mut index = 0;
    let mut ahead = None;
    while attempts < BUDGET && idle < active.len() {
        if ahead.is_none() && order.is_woken() {
            ahead = Some(order.ahead(active, BUDGET - attempts));
        }
        if ahead == Some(0) {
            break;
        }
        let inner = &active[index % active.len()].inner;
        index += 1;
        match inner.pop() {
            Some(task) => {
                idle = 0;
                attempts += 1;
                if let Some(ahead) = &mut ahead {
                    *ahead -= 1;
                }
                polls += usize::from(task.poll(inner));
            }
            None => idle += 1,
        }
    }
    polls
}

/// Where a loop's own `block_on` future stands in wake order while a batch
/// of tasks runs (R11). Once it is woken on this thread, either the batch
/// ends at once (`first`: a nested call, so that it unwinds as soon as it
/// can) or the tasks queued at that moment go first (FIFO, as asyncio's
/// ready queue holds its main task): the outermost loop, and a future that
/// woke itself (`yield_now` lets queued tasks run). Either way it is polled
/// before any task woken after it. A wake from another thread waits for the
/// end of the batch, so a stream from there is still taken in batches.
pub(super) struct WakeOrder<'a> {
    /// The own future's waker (`None` for `run_until_stalled`).
    own: Option<&'a RootWaker>,
    /// Whether the own future goes before the queued tasks.
    first: bool,
}

impl<'a> WakeOrder<'a> {
    /// Order for a batch of the loop whose own future wakes `own`.
    #[inline]
    pub(super) fn new(own: Option<&'a RootWaker>, first: bool) -> Self {
        WakeOrder { own, first }
    }

    /// Whether the own future is woken on this thread.
    #[inline(always)]
    fn is_woken(&self) -> bool {
        self.own.is_some_and(RootWaker::is_woken_here)
    }

    /// How many task polls, of the `left` in the batch, still go before the
    /// own future now that its wake is seen: none in a nested call, else
    /// the tasks queued now.
    #[cold]
    #[inline(never)]
    fn ahead(&self, active: &[Executor], left: usize) -> usize {
        if self.first || !self.is_woken() {
            return 0;
        }
        active
            .iter()
            .map(|e| e.inner.local_ready_up_to(left))
            .sum::<usize>()
            .min(left)
    }
}
