//! The loop behind `block_on` and `run_until_stalled`.
//!
//! Each call pushes a frame (a plain `block_on` defers it: its first poll
//! runs with the frame lent, and the frame is made real only if that poll
//! is pending), polls its own future once, and then, until it is done,
//! repeats one step (`Driver::step`, whose outcome is a `Step`):
//!
//! 1. woken futures of outer `block_on` calls that are not on the stack (R3);
//! 2. due timers of the thread (R8);
//! 3. up to `BUDGET` ready tasks of the thread's run queue, which holds the
//!    tasks of every executor of the thread in wake order (R1, R6), after
//!    moving in wakes from other threads; a wake of the own future ends the
//!    batch early (`WakeOrder`);
//! 4. its own future, if woken (never while it is on the stack).
//!
//! So a woken `block_on` future is polled before any task that was woken
//! after it (a nested one before any task at all), and a future that wakes
//! itself (`yield_now`) lets the queued tasks run, up to `BUDGET`, before
//! its next poll (R11). With nothing to do, the loop parks until a wake or
//! the next timer deadline (R7, R8), or reports a deadlock (R9).
//!
//! Here: the calls, the loop (`drive`) and its step. Beside it: `block_on_future.rs`,
//! a `block_on` future as the loops poll it (R3, R4); `tasks.rs`, the
//! batch of tasks and the own future's place in it (R11);
//! `limits.rs`, how deep loops nest (R10); `deadlock.rs`, the check before
//! parking (R9); `interrupt.rs`, where an interrupt ends a `try_block_on`;
//! `waiting.rs`, how a loop waits: parked, or in a reactor (features
//! `async-io`, `tokio`).

use std::future::Future;
use std::ops::ControlFlow;
use std::panic::{AssertUnwindSafe, Location, catch_unwind, resume_unwind};
use std::pin::{Pin, pin};
use std::rc::Rc;
use std::task::Context;

use crate::context::PollBlockOn;
use crate::context::{self, BlockOnState, FrameGuard, LoopKind, ThreadState};
use crate::park::TimerHeap;
use crate::sched::{Executor, Interrupted};
use crate::task_local;

mod block_on_future;
mod deadlock;
mod fibers;
#[cfg(feature = "glib")]
mod glib;
mod interrupt;
mod limits;
mod tasks;
mod waiting;

use block_on_future::{BlockOnFuture, BlockOnPoll, explaining, poll_woken_block_on, resume_panic};
#[cfg(feature = "glib")]
pub(crate) use glib::drive_from_glib;
use interrupt::check_interrupt;
use limits::check_enter;
use tasks::{WakeOrder, run_tasks};

/// `Executor::block_on` (`interruptible == false`, never `Err`) and
/// `Executor::try_block_on`.
#[inline]
pub(crate) fn block_on<F: Future>(
    executor: &Executor,
    future: F,
    interruptible: bool,
    location: &'static Location<'static>,
) -> Result<F::Output, Interrupted> {
    #[cfg(feature = "tokio")]
    {
        if context::depth() == 0 {
            // The outermost loop may be blocking a thread that tokio runs on.
            return crate::tokio::blocking(|| {
                block_on_here(executor, future, interruptible, location)
            });
        }
        crate::reactor::tokio::check_not_in_park();
    }
    block_on_here(executor, future, interruptible, location)
}

/// `block_on` proper: pushes the frame, polls the future once, and drives
/// the loop if it is not done yet.
#[inline]
fn block_on_here<F: Future>(
    executor: &Executor,
    future: F,
    interruptible: bool,
    location: &'static Location<'static>,
) -> Result<F::Output, Interrupted> {
    let mark = context::stack_mark();
    let mut future = pin!(future);
    // A plain `block_on` polls its future once before anything else: its
    // frame is pushed only if something looks for it (most such futures are
    // ready at once, and then nothing else is needed), and the outermost
    // call borrows the thread's state instead of cloning it.
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
            if let Some(state) = ts.outermost_state() {
                let mut cx = Context::from_waker(&state.waker);
                return ts
                    .poll_deferred(executor, mark, location, || {
                        explaining(|| future.as_mut().poll(&mut cx))
                    })
                    .map_err(|frame| Begun {
                        frame,
                        state: Rc::clone(state),
                        index: 0,
                    });
            }
            let index = check_enter(executor, ts, mark);
            let state = ts.block_on_state(index);
            let _owner = executor.inner.enter_owner();
            let mut cx = Context::from_waker(&state.waker);
            ts.poll_deferred(executor, mark, location, || {
                explaining(|| future.as_mut().poll(&mut cx))
            })
            .map_err(|frame| Begun {
                frame,
                state: state.clone(),
                index,
            })
        });
        return match first {
            Ok(output) => Ok(output),
            Err(begun) => block_on_rest(executor, future, false, mark, location, Some(begun)),
        };
    }
    block_on_rest(executor, future, interruptible, mark, location, None)
}

/// A plain call whose first poll returned `Pending`: its frame is pushed.
struct Begun {
    /// Pops the frame.
    frame: FrameGuard,
    /// The state of the call's future (its waker, id, done flag).
    state: Rc<BlockOnState>,
    /// The frame's depth index.
    index: usize,
}

/// `block_on_here` after a plain call's first poll (`begun`), or from the
/// start for `try_block_on` (and for a plain call that may not run at all:
/// `max_depth` 0).
#[inline(never)]
fn block_on_rest<F: Future>(
    executor: &Executor,
    future: Pin<&mut F>,
    interruptible: bool,
    mark: usize,
    location: &'static Location<'static>,
    begun: Option<Begun>,
) -> Result<F::Output, Interrupted> {
    // Inside a fiber a plain call suspends it until the future is done
    // (R12); decided here, off the path of a future ready at once.
    let begun = match begun {
        Some(begun) if fibers::may_wait_in_fiber(executor) => {
            return Ok(context::with(|ts| {
                fibers::wait_in_fiber(ts, executor, future, location, begun)
            }));
        }
        begun => begun,
    };
    // Else its loop runs here (or on fibers, `drive_on_fibers`).
    let mut root = BlockOnFuture {
        future,
        outcome: None,
        caller: task_local::current_poll(),
        #[cfg(feature = "tracing")]
        span: tracing::Span::current(),
    };
    let (state, frame, index, ready_at_once) = match begun {
        Some(Begun {
            frame,
            state,
            index,
        }) => (state, frame, index, false),
        None => {
            let (state, frame, index) = context::with(|ts| {
                let index = check_enter(executor, ts, mark);
                let kind = if interruptible {
                    LoopKind::TryBlockOn
                } else {
                    LoopKind::BlockOn
                };
                let frame = ts.push_frame(executor, mark, kind, location);
                (ts.block_on_state(index), frame, index)
            });
            // The first poll happens before the future is registered for
            // other loops: it is on the stack meanwhile, so none of them
            // could poll it anyway, and a future that is ready at once
            // costs no registration.
            // Only `try_block_on` gets here (a plain call with `max_depth`
            // 0 panics in `check_enter`): its first poll turns an
            // `Interrupted` unwinding out of the future into `Err`.
            debug_assert!(interruptible);
            let _scope = executor.inner.enter_poll_block_on(location);
            let mut cx = Context::from_waker(&state.waker);
            let ready = root.poll(&mut cx).is_ready();
            (state, frame, index, ready)
        }
    };
    let exit = if ready_at_once {
        Ok(Ok(0))
    } else {
        context::with(|ts| {
            ts.block_ons.register(&mut root, |id| {
                state.id.set(id);
                ts.set_block_on(index, state.clone());
                let run = || {
                    if fibers::loops_on_fibers(executor) {
                        fibers::drive_on_fibers(ts, executor, &state, location, index)
                    } else {
                        drive(ts, executor, Some(&state), location, false)
                    }
                };
                if interruptible {
                    catch_unwind(AssertUnwindSafe(run))
                } else {
                    Ok(run())
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
        Some(Err(payload)) => resume_panic(payload),
        None if interrupted => Err(Interrupted::new()),
        None => {
            unreachable!("nestloop: internal error: block_on returned before its future finished")
        }
    }
}

/// `Executor::run_until_stalled`.
pub(crate) fn run_until_stalled(
    executor: &Executor,
    location: &'static Location<'static>,
) -> usize {
    let mark = context::stack_mark();
    let drove = context::with(|ts| {
        check_enter(executor, ts, mark);
        let _frame = ts.push_frame(executor, mark, LoopKind::RunUntilStalled, location);
        drive(ts, executor, None, location, false)
    });
    match drove {
        Ok(polls) => polls,
        Err(Interrupted { .. }) => {
            unreachable!("nestloop: internal error: run_until_stalled interrupted")
        }
    }
}

/// What one step of a loop came to.
enum Step {
    /// The loop's own future finished: the call returns.
    Done,
    /// Something ran or is ready: step again.
    Busy,
    /// Nothing is ready: park until a wake or the next timer, or for
    /// `run_until_stalled`, return.
    Idle,
}

/// Panics with `message`, one of the reports of the loop's checks (deadlock,
/// depth limit); with feature `tracing`, records it first as a debug event
/// of target `nestloop`.
#[cold]
fn report(message: String) -> ! {
    #[cfg(feature = "tracing")]
    tracing::debug!(target: "nestloop", "{message}");
    panic!("{message}")
}

/// Feature `tracing`: debug events of target `nestloop` when a nested loop
/// starts and when it ends (returns or unwinds), with its depth.
#[cfg(feature = "tracing")]
struct NestedLoopEvents {
    depth: usize,
}

#[cfg(feature = "tracing")]
impl NestedLoopEvents {
    fn enter(depth: usize, location: &'static Location<'static>) -> Self {
        tracing::debug!(
            target: "nestloop",
            depth,
            called_at = %location,
            "nested loop entered",
        );
        NestedLoopEvents { depth }
    }
}

#[cfg(feature = "tracing")]
impl Drop for NestedLoopEvents {
    fn drop(&mut self) {
        tracing::debug!(
            target: "nestloop",
            depth = self.depth,
            unwinding = std::thread::panicking(),
            "nested loop left",
        );
    }
}

/// Runs the loop of one frame, the call made at `location`, until its
/// future is done (`own` is `Some`) or nothing is ready
/// (`run_until_stalled`). Returns the number of polls, or `Err` when an
/// interrupt ends this (`try_block_on`) frame.
///
/// `fiber_body`: the loop is the body of a loop fiber (`fibers.rs`), whose
/// frame is on the thread's own stack: it also returns, with its own future
/// not done, once its fiber has handed the thread's loop on (after a call
/// on it waited) or when an interrupt is pending, which the call acts on
/// where its frame is.
fn drive(
    ts: &ThreadState,
    executor: &Executor,
    own: Option<&Rc<BlockOnState>>,
    location: &'static Location<'static>,
    fiber_body: bool,
) -> Result<usize, Interrupted> {
    let index = ts.depth() - 1;
    // What the loop runs besides tasks and `block_on` futures (a reactor's
    // tasks, wakers) sees no task-locals.
    let _locals = task_local::enter_new_poll();
    #[cfg(feature = "glib")]
    let _arm = glib::ArmNextTimer(ts);
    #[cfg(feature = "tracing")]
    let _traced = (index != 0).then(|| NestedLoopEvents::enter(index + 1, location));
    let mut driver = Driver {
        ts,
        executor,
        own,
        location,
        // The outermost loop has nothing to unwind: there the future
        // waits its turn in wake order, as in asyncio and tokio.
        nested: index != 0,
        own_yielded: false,
        polls: 0,
        fiber_body,
        #[cfg(any(feature = "async-io", feature = "tokio", feature = "glib"))]
        next_turn: crate::reactor::TURN_EVERY_POLLS,
    };
    // With feature async-io a `block_on` loop moves into
    // `async_io::block_on` the first time it would wait or owes the
    // reactor a turn: a call whose future is done before then (most nested
    // calls) costs nothing more.
    loop {
        if driver.stops(index)? {
            return Ok(driver.polls);
        }
        match driver.step() {
            Step::Done => return Ok(driver.polls),
            Step::Busy =>
            {
                #[cfg(any(feature = "async-io", feature = "tokio", feature = "glib"))]
                if driver.turn_due() {
                    #[cfg(feature = "async-io")]
                    if let Some(root) = own
                        && driver.waits_in_async_io()
                    {
                        return waiting::drive_in_async_io(&mut driver, root, index, true);
                    }
                    #[cfg(feature = "tokio")]
                    driver.turn_tokio();
                    #[cfg(feature = "glib")]
                    if let Some(glib) = driver.ts.glib_context() {
                        glib.turn();
                    }
                }
            }
            Step::Idle => match own {
                Some(_) if driver.shut_down_dormant() => {}
                Some(root) => {
                    #[cfg(feature = "async-io")]
                    if driver.waits_in_async_io() {
                        return waiting::drive_in_async_io(&mut driver, root, index, false);
                    }
                    driver.park(root);
                }
                None => return Ok(driver.polls), // run_until_stalled: stalled
            },
        }
    }
}

/// One loop's state between its steps (see `drive`).
struct Driver<'a> {
    ts: &'a ThreadState,
    /// Whose `block_on` or `run_until_stalled` this is.
    executor: &'a Executor,
    /// The call's own future (`None` for `run_until_stalled`).
    own: Option<&'a Rc<BlockOnState>>,
    /// Where the call was made.
    location: &'static Location<'static>,
    /// A nested loop: its woken future goes before the tasks, so that
    /// nested calls unwind as soon as they can and depth does not grow with
    /// the number of tasks that each nest one (R11).
    nested: bool,
    /// The own future woke itself in its last poll (it yielded), so the
    /// queued tasks go first. Not set by the call's first poll: a nested
    /// future that yields there goes on at once.
    own_yielded: bool,
    /// Polls so far, of tasks and of `block_on` futures.
    polls: usize,
    /// The loop is a loop fiber's body (see `drive`).
    fiber_body: bool,
    /// At this many polls a busy loop gives its reactor a turn.
    #[cfg(any(feature = "async-io", feature = "tokio", feature = "glib"))]
    next_turn: usize,
}

impl Driver<'_> {
    /// Before each step: acts on an interrupt for the frame at `index`
    /// (`Err` when it ends this one, see `check_interrupt`), and for a loop
    /// fiber's body says whether to stop (see `drive`).
    #[inline]
    fn stops(&self, index: usize) -> Result<bool, Interrupted> {
        if !self.fiber_body {
            check_interrupt(self.ts, index)?;
            return Ok(false);
        }
        Ok(self.ts.loop_handed_off() || self.ts.signal().interrupt_pending())
    }

    /// One step, in the order of the scheduling policy (R11):
    ///
    /// 1. woken futures of outer `block_on` calls that are not on the stack;
    /// 2. due timers;
    /// 3. up to `BUDGET` ready tasks in wake order, ended early for the own
    ///    future once it is woken on this thread (`WakeOrder`): in a nested
    ///    loop at once, so the call unwinds as soon as it can; in the
    ///    outermost loop, and for a future that woke itself (except in the
    ///    call's first poll), after the tasks queued before that wake (FIFO);
    /// 4. the own future, if woken.
    #[inline]
    fn step(&mut self) -> Step {
        let ts = self.ts;
        // Only a poll finishes the own future, and the step that polled
        // last returned `Done` if one did; but a fiber resumed outside the
        // step (R9 ending a call stuck in one, before a wait) may have run a
        // loop that polled it meanwhile.
        if self.own_done() {
            return Step::Done;
        }
        let ControlFlow::Continue(mut progressed) = self.outer_futures() else {
            return Step::Done;
        };
        progressed |= TimerHeap::fire_due(&ts.timers);

        // Work that only another thread made ready may wait a moment in a
        // `block_on` loop with nothing else to do (`BatchPause`).
        let may_pause = self.own.is_some() && !progressed;
        let order = WakeOrder::new(self.own.map(|r| &*r.wake), self.nested && !self.own_yielded);
        let ran = run_tasks(ts, may_pause, order);
        self.polls += ran;
        progressed |= ran > 0;

        if let Some(root) = self.own {
            if root.done.get() {
                return Step::Done;
            }
            if !progressed && root.wake.is_woken_remotely() {
                ts.batch_pause.before_remote_work();
            }
            if root.wake.is_woken() {
                match poll_woken_block_on(ts, &self.executor.inner, root, self.location) {
                    BlockOnPoll::Skipped => {}
                    BlockOnPoll::Finished => {
                        self.polls += 1;
                        return Step::Done;
                    }
                    BlockOnPoll::Pending => {
                        self.polls += 1;
                        progressed = true;
                    }
                }
            }
            self.own_yielded = root.wake.is_woken();
        }
        if progressed || self.work_waiting() {
            Step::Busy
        } else {
            Step::Idle
        }
    }

    /// Whether anything waits to be run: the own future woken, an outer
    /// future woken, an interrupt to deliver, a ready task. Asked at the
    /// end of a step, and again by a wait after it registers a reactor's
    /// waker (for wakes that came in between).
    #[inline]
    fn work_waiting(&self) -> bool {
        let ts = self.ts;
        let signal = ts.signal();
        self.own.is_some_and(|r| r.wake.is_woken())
            || signal.block_ons_woken()
            || signal.interrupt_pending()
            || !ts.queue().is_empty()
            || ts.queue().has_remote()
    }

    /// Whether the own future has finished (it may finish in any loop that
    /// polls it, R3).
    #[inline]
    fn own_done(&self) -> bool {
        self.own.is_some_and(|r| r.done.get())
    }

    /// Polls the woken futures of outer `block_on` calls that are not on the
    /// stack. Continues with whether it polled one; breaks as soon as the own
    /// future is done.
    fn outer_futures(&mut self) -> ControlFlow<(), bool> {
        let ts = self.ts;
        let mut polled = false;
        if !ts.signal().take_block_ons_woken() {
            return ControlFlow::Continue(polled);
        }
        // Calls suspended in fibers whose future was woken (R12), and
        // those whose task was aborted.
        if ts.signal().take_aborted() {
            ts.cancel_aborted_fibers();
        }
        let resumed = fibers::resume_woken_fibers(ts);
        if resumed != 0 {
            self.polls += resumed;
            polled = true;
            if self.own_done() {
                return ControlFlow::Break(());
            }
        }
        let mut index = 0;
        while let Some((owner, root, location)) = ts.next_woken_block_on(&mut index, self.own) {
            if poll_woken_block_on(ts, &owner.inner, &root, location) != BlockOnPoll::Skipped {
                self.polls += 1;
                polled = true;
                if root.wake.is_woken() && !root.done.get() {
                    // Woken during its poll: look again next step.
                    ts.signal().note_block_ons_woken();
                }
            }
            if self.own_done() {
                return ControlFlow::Break(());
            }
        }
        ControlFlow::Continue(polled)
    }
}
