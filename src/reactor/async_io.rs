//! Loops that run inside `async_io::block_on` (feature `async-io`).
//!
//! async-io has one reactor per process. A thread blocked in
//! `async_io::block_on` takes it and waits on it for events; when no thread
//! does, async-io's helper thread ("async-io") drives it, and every event
//! then reaches the loop through a cross-thread wake. So a `block_on` loop
//! that has to wait goes on as the future of an `async_io::block_on`: its
//! steps run in that future's polls, and it waits by returning `Pending`,
//! which lets async-io wait on the reactor on this thread.
//!
//! Why not wait in one `async_io::block_on` per park: each exit from
//! `block_on` hands the reactor back to the helper thread, which then
//! catches a third to three quarters of the events while the loop runs its
//! tasks.

use std::cell::Cell;
use std::future::{Future, poll_fn};
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Instant;

use async_io::Timer;

use crate::park::ThreadSignal;

thread_local! {
    /// Set once this thread's thread-locals are being destroyed, before
    /// async-io's (see `Sentinel`). Const and without a destructor: readable
    /// until the thread is gone.
    static EXITING: Cell<bool> = const { Cell::new(false) };
    /// Registered after async-io's own thread-locals (first touched inside
    /// `async_io::block_on`), so destroyed before them: thread-locals are
    /// destroyed in the reverse order of their registration.
    static SENTINEL: Sentinel = const { Sentinel };
}

/// See `SENTINEL`.
struct Sentinel;

impl Drop for Sentinel {
    fn drop(&mut self) {
        EXITING.set(true);
    }
}

/// Whether `async_io::block_on` may still be called on this thread: not
/// while its thread-locals are destroyed, as in the destructor of an
/// executor kept in a thread-local of the application's.
pub(crate) fn usable() -> bool {
    !EXITING.get()
}

/// Runs a loop inside `async_io::block_on`: `step_until_wait` is called on
/// every poll and returns `Pending` to wait (after registering with `Wait`).
pub(crate) fn block_on<R>(
    signal: &ThreadSignal,
    mut step_until_wait: impl FnMut(&mut Wait<'_, '_>) -> Poll<R>,
) -> R {
    /// Marks the loop running again however it leaves (an unwinding task
    /// panic included), so wakes on this thread stop reaching the reactor.
    struct Running<'a>(&'a ThreadSignal);
    impl Drop for Running<'_> {
        fn drop(&mut self) {
            self.0.reactor.running();
        }
    }
    let _running = Running(signal);
    let mut timer = Timer::never();
    let mut first = true;
    async_io::block_on(poll_fn(|cx| {
        if std::mem::take(&mut first) {
            // async-io's thread-locals are registered by now.
            SENTINEL.with(|_| ());
        }
        signal.reactor.running();
        step_until_wait(&mut Wait {
            signal,
            cx,
            timer: &mut timer,
        })
    }))
}

/// What a loop inside `block_on` uses to wait.
pub(crate) struct Wait<'a, 'b> {
    signal: &'a ThreadSignal,
    cx: &'a mut Context<'b>,
    /// Fires at the loop's next nestloop timer deadline.
    timer: &'a mut Timer,
}

impl Wait<'_, '_> {
    /// Registers the reactor's waker: from now on wakes reach the wait.
    /// The caller then checks for work once more.
    pub(crate) fn register(&mut self) {
        self.signal.reactor.register(self.cx.waker());
    }

    /// Work arrived after all: the loop steps on instead of waiting.
    pub(crate) fn resume(&mut self) {
        self.signal.reactor.running();
    }

    /// Arms the timer for `deadline`; false if it is already due.
    pub(crate) fn wake_at(&mut self, deadline: Instant) -> bool {
        self.timer.set_at(deadline);
        Pin::new(&mut *self.timer).poll(self.cx).is_pending()
    }

    /// The loop is busy: lets the reactor look for events, without
    /// waiting, before the next poll.
    pub(crate) fn yield_to_reactor(&mut self) {
        self.cx.waker().wake_by_ref();
    }
}
