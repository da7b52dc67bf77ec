//! The loop behind `block_on` and `run_until_stalled`.
//!
//! Each call pushes a frame, polls its own future once, and then, until it
//! is done, repeats one step (see `drive` for the details):
//!
//! 1. woken futures of outer `block_on` calls that are not on the stack (R3);
//! 2. due timers of the thread (R8);
//! 3. up to `BUDGET` ready tasks of every executor with a frame on this
//!    thread and of the thread's default executor, round-robin (R1, R6),
//!    after moving in wakes from other threads; a wake of the own future
//!    ends the batch early (`WakeOrder`);
//! 4. its own future, if woken (never while it is on the stack).
//!
//! So a woken `block_on` future is polled before any task that was woken
//! after it (a nested one before any task at all), and a future that wakes
//! itself (`yield_now`) lets the queued tasks run, up to `BUDGET`, before
//! its next poll (R11). With nothing to do, the loop parks until a wake or
//! the next timer deadline (R7, R8), or reports a deadlock (R9).
//!
//! Here: the calls and the loop's step (`drive`). Beside it: `tasks.rs`,
//! the batch of tasks and the own future's place in it (R11);
//! `limits.rs`, how deep loops nest (R10); `deadlock.rs`, the check before
//! parking (R9); `interrupt.rs`, where an interrupt ends a `try_block_on`.

use std::any::Any;
use std::future::Future;
use std::panic::{AssertUnwindSafe, catch_unwind, resume_unwind};
use std::pin::{Pin, pin};
use std::rc::Rc;
use std::task::{Context, Poll};

use crate::context::PollRoot;
use crate::context::{self, FrameGuard, RootState, ThreadState};
use crate::park::{self, TimerHeap};
use crate::sched::{Executor, Inner, Interrupted};

mod deadlock;
mod interrupt;
mod limits;
mod tasks;

use deadlock::{check_deadlock, check_exiting};
use interrupt::check_interrupt;
use limits::check_enter;
use tasks::{WakeOrder, run_tasks};

/// A `block_on` future and what became of it.
struct Root<'a, F: Future> {
    /// The caller's future, pinned on the caller's stack.
    future: Pin<&'a mut F>,
    /// Its output, or the payload of its panic, once finished.
    outcome: Option<Result<F::Output, Box<dyn Any + Send>>>,
}

impl<F: Future> PollRoot for Root<'_, F> {
    fn poll(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        if self.outcome.is_some() {
            return Poll::Ready(());
        }
        match catch_unwind(AssertUnwindSafe(|| self.future.as_mut().poll(cx))) {
            Ok(Poll::Pending) => Poll::Pending,
            Ok(Poll::Ready(output)) => {
                self.outcome = Some(Ok(output));
                Poll::Ready(())
            }
            Err(payload) => {
                // Kept for the owning `block_on`, which may be further down
                // the stack than the loop that polled it (R4).
                self.outcome = Some(Err(payload));
                Poll::Ready(())
            }
        }
    }
}

/// `Executor::block_on` (`interruptible == false`, never `Err`) and
/// `Executor::try_block_on`.
#[inline]
pub(crate) fn block_on<F: Future>(
    executor: &Executor,
    future: F,
    interruptible: bool,
) -> Result<F::Output, Interrupted> {
    #[cfg(feature = "tokio")]
    if context::depth() == 0 {
        // The outermost loop may be blocking a thread that tokio runs on.
        return crate::tokio::blocking(|| block_on_here(executor, future, interruptible));
    }
    block_on_here(executor, future, interruptible)
}

/// `block_on` proper: pushes the frame, polls the future once, and drives
/// the loop if it is not done yet.
#[inline]
fn block_on_here<F: Future>(
    executor: &Executor,
    future: F,
    interruptible: bool,
) -> Result<F::Output, Interrupted> {
    let mark = context::stack_mark();
    let mut future = pin!(future);
    // A plain `block_on` polls its future once before anything else: its
    // frame is pushed only if something looks for it (most such futures are
    // ready at once, and then nothing else is needed), and the outermost
    // call borrows the thread's root state instead of cloning it.
    // `try_block_on` goes the general way: an `Interrupted` unwinding out of
    // its first poll must become `Err(Interrupted)`.
    if !interruptible && executor.inner.max_depth != 0 {
        let first = context::with(|ts| {
            let _context = executor.inner.poll_context();
            // Polled by this call itself: a panic unwinds straight out (the
            // frame is ended on the way), as it would after `resume_unwind`.
            // Two copies of the poll on purpose: one closure for both made
            // the outermost call 70% slower (3.2 vs 1.9 ns per ready future)
            // at the same instruction count.
            if let Some(state) = ts.outermost_root() {
                let mut cx = Context::from_waker(&state.handle);
                return ts
                    .first_poll(executor, mark, || future.as_mut().poll(&mut cx))
                    .map_err(|frame| (frame, Rc::clone(state), 0));
            }
            let index = check_enter(executor, ts, mark);
            let state = ts.root_state(index);
            let _owner = executor.inner.enter_owner();
            let mut cx = Context::from_waker(&state.handle);
            ts.first_poll(executor, mark, || future.as_mut().poll(&mut cx))
                .map_err(|frame| (frame, state.clone(), index))
        });
        return match first {
            Ok(output) => Ok(output),
            Err(begun) => run_rest(executor, future, false, mark, Some(begun)),
        };
    }
    run_rest(executor, future, interruptible, mark, None)
}

/// `run` after a plain call's first poll (`begun`: its frame, root state
/// and index), or from the start for `try_block_on` (and for a plain call
/// that may not run at all: `max_depth` 0).
#[inline(never)]
fn run_rest<F: Future>(
    executor: &Executor,
    future: Pin<&mut F>,
    interruptible: bool,
    mark: usize,
    begun: Option<(FrameGuard, Rc<RootState>, usize)>,
) -> Result<F::Output, Interrupted> {
    let mut root = Root {
        future,
        outcome: None,
    };
    let (state, frame, index, ready_at_once) = match begun {
        Some((frame, state, index)) => (state, frame, index, false),
        None => {
            let (state, frame, index) = context::with(|ts| {
                let index = check_enter(executor, ts, mark);
                let frame = ts.push_frame(executor, mark, interruptible);
                (ts.root_state(index), frame, index)
            });
            // The first poll happens before the future is registered for
            // other loops: it is on the stack meanwhile, so none of them
            // could poll it anyway, and a future that is ready at once
            // costs no registration.
            // Only `try_block_on` gets here (a plain call with `max_depth`
            // 0 panics in `check_enter`): its first poll turns an
            // `Interrupted` unwinding out of the future into `Err`.
            debug_assert!(interruptible);
            let _scope = executor.inner.enter_poll();
            let mut cx = Context::from_waker(&state.handle);
            let ready = root.poll(&mut cx).is_ready();
            (state, frame, index, ready)
        }
    };
    let exit = if ready_at_once {
        Ok(Ok(0))
    } else {
        context::with(|ts| {
            ts.roots.with_root(&mut root, |id| {
                state.id.set(id);
                ts.set_root(index, state.clone());
                if interruptible {
                    catch_unwind(AssertUnwindSafe(|| drive(executor, Some(&state))))
                } else {
                    Ok(drive(executor, Some(&state)))
                }
            })
        })
    };
    // An interrupt aimed at this call ends it, however it gets here:
    // delivered by this loop, unwound into its future from a nested call, or
    // unwound out of a task this loop was polling. It is used up either way,
    // even if the future finished.
    let aimed_here = interruptible && context::with(|ts| ts.is_interrupted(index));
    if aimed_here {
        context::with(|ts| ts.consume_interrupt(index));
    }
    let interrupted = match exit {
        Ok(exit) => exit.is_err() || aimed_here,
        Err(payload) if aimed_here && payload.is::<Interrupted>() => true,
        Err(payload) => resume_unwind(payload),
    };
    drop(frame);
    match root.outcome.take() {
        Some(Ok(output)) => Ok(output),
        Some(Err(payload)) if interrupted && payload.is::<Interrupted>() => Err(Interrupted::new()),
        Some(Err(payload)) => resume_unwind(payload),
        None if interrupted => Err(Interrupted::new()),
        None => {
            unreachable!("nestloop: internal error: block_on returned before its future finished")
        }
    }
}

/// `Executor::run_until_stalled`.
pub(crate) fn run_until_stalled(executor: &Executor) -> usize {
    let mark = context::stack_mark();
    let _frame = context::with(|ts| {
        check_enter(executor, ts, mark);
        ts.push_frame(executor, mark, false)
    });
    match drive(executor, None) {
        Ok(polls) => polls,
        Err(Interrupted { .. }) => {
            unreachable!("nestloop: internal error: run_until_stalled interrupted")
        }
    }
}

/// What became of a `block_on` future a loop found woken.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum RootPoll {
    /// Not polled: it had finished, or it is on the stack (its wake stays).
    Skipped,
    /// Polled, and still pending.
    Pending,
    /// Polled, and finished (with its output or a panic).
    Finished,
}

/// Polls a `block_on` future for whichever loop found it woken.
fn poll_woken_root(ts: &ThreadState, owner: &Inner, root: &RootState) -> RootPoll {
    if root.done.get() {
        return RootPoll::Skipped;
    }
    let woken = root.waker.take_woken();
    let polled = {
        let _scope = owner.enter_poll();
        let mut cx = Context::from_waker(&root.handle);
        ts.roots.poll_registered(root.id.get(), &mut cx)
    };
    match polled {
        None => {
            // On the stack: the wake stays for the loop that polls it.
            if woken {
                root.waker.set_woken();
            }
            RootPoll::Skipped
        }
        Some(Poll::Ready(())) => {
            root.done.set(true);
            RootPoll::Finished
        }
        Some(Poll::Pending) => RootPoll::Pending,
    }
}

/// Runs the loop of one frame until its future is done (`own` is `Some`) or
/// nothing is ready (`run_until_stalled`). Returns the number of polls, or
/// `Err` when an interrupt ends this (`try_block_on`) frame.
///
/// The scheduling policy (R11), step by step:
///
/// 1. woken futures of outer `block_on` calls that are not on the stack;
/// 2. due timers;
/// 3. up to `BUDGET` ready tasks in wake order, ended early for the own
///    future once it is woken on this thread (`WakeOrder`): in a nested
///    loop at once, so the call unwinds as soon as it can; in the outermost
///    loop, and for a future that woke itself (except in the call's first
///    poll), after the tasks queued before that wake (FIFO);
/// 4. the own future, if woken.
fn drive(executor: &Executor, own: Option<&Rc<RootState>>) -> Result<usize, Interrupted> {
    context::with(|ts| {
        let index = ts.depth() - 1;
        let mut polls = 0;
        // A nested call's woken future goes before the tasks, so that nested
        // calls unwind as soon as they can and depth does not grow with the
        // number of tasks that each nest one (R11). The outermost loop has
        // nothing to unwind: there the future waits its turn in wake order,
        // as in asyncio and tokio.
        let nested = index != 0;
        // The own future woke itself in its last poll (it yielded), so the
        // queued tasks go first. Not counted for the call's first poll: a
        // nested future that yields there goes on at once.
        let mut own_yielded = false;
        loop {
            check_interrupt(ts, index)?;
            let mut progressed = false;
            if own.is_some_and(|r| r.done.get()) {
                return Ok(polls);
            }

            if ts.signal().take_roots_woken() {
                let mut index = 0;
                while let Some((owner, root)) = ts.next_woken_root(&mut index, own) {
                    if poll_woken_root(ts, &owner.inner, &root) != RootPoll::Skipped {
                        polls += 1;
                        progressed = true;
                        if root.waker.is_woken() && !root.done.get() {
                            // Woken during its poll: look again next step.
                            ts.signal().note_roots_woken();
                        }
                    }
                    if own.is_some_and(|r| r.done.get()) {
                        return Ok(polls);
                    }
                }
            }

            progressed |= TimerHeap::fire_due(&ts.timers);

            let active = ts.active_executors();
            // Work that only another thread made ready may wait a moment in
            // a `block_on` loop with nothing else to do (`BatchPause`).
            let may_pause = own.is_some() && !progressed;
            let order = WakeOrder::new(own.map(|r| &*r.waker), nested && !own_yielded);
            let ran = run_tasks(ts, &active, may_pause, order);
            polls += ran;
            progressed |= ran > 0;

            if let Some(root) = own {
                if root.done.get() {
                    return Ok(polls);
                }
                if !progressed && root.waker.is_woken_remotely() {
                    ts.batch_pause.before_remote_work();
                }
                if root.waker.is_woken()
                    && own_turn(ts, executor, root, &mut polls, &mut progressed)
                {
                    return Ok(polls);
                }
                own_yielded = root.waker.is_woken();
            }
            if progressed
                || own.is_some_and(|r| r.waker.is_woken())
                || ts.signal().roots_woken()
                || ts.signal().interrupt_pending()
                || active.iter().any(|e| e.inner.has_ready())
            {
                continue;
            }

            let Some(root) = own else {
                return Ok(polls); // run_until_stalled: stalled
            };
            let deadline = ts.timers.borrow_mut().next_deadline();
            if deadline.is_none() && ts.is_exiting() {
                check_exiting(ts, root);
            } else if deadline.is_none() && executor.inner.detect_deadlock {
                check_deadlock(ts, root, &active);
            }
            ts.batch_pause.parking();
            park::park(deadline);
        }
    })
}

/// Polls a loop's own `block_on` future, counting the poll. Returns whether
/// it finished.
#[inline]
fn own_turn(
    ts: &ThreadState,
    executor: &Executor,
    root: &RootState,
    polls: &mut usize,
    progressed: &mut bool,
) -> bool {
    match poll_woken_root(ts, &executor.inner, root) {
        RootPoll::Skipped => false,
        polled => {
            *polls += 1;
            *progressed = true;
            polled == RootPoll::Finished
        }
    }
}
