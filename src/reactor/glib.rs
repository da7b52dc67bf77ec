//! The thread's GLib main context as the loops' reactor (feature `glib`,
//! `Builder::glib`).
//!
//! Two directions, one context:
//!
//! * **nestloop waits in GLib.** A loop with nothing to do iterates the
//!   context (`GlibContext::park`) instead of parking its thread, at every
//!   depth, so GLib's sources (timeouts, idle handlers, I/O watches and,
//!   with GTK, window events) are dispatched while any `block_on` waits.
//!   The loop acquires the context for the wait (recursively, if the
//!   thread owns it already, as inside a running `MainLoop`).
//! * **GLib runs nestloop.** While no loop of nestloop runs (a
//!   `glib::MainLoop` or `gtk::Application` owns the thread), a wake of a
//!   task queues one idle source in the context, and the next nestloop
//!   timer is armed as a timeout source; either runs the thread's ready
//!   tasks and due timers (`drive`, a `run_until_stalled`) when GLib
//!   dispatches it. Both have GLib's default priority, as
//!   `MainContext::spawn_local` futures do: above redraws, with input.
//!
//! The sources never run nestloop from inside the loop's own wait: a
//! dispatch one level inside the iteration a parked loop made is left to
//! that loop (it sees the work when the iteration returns). From any other
//! dispatch, such as a GLib main loop nested in a task, they run a nested
//! loop, as `block_on` there would.
//!
//! Wakes reach the context from any thread: the waker registered with the
//! thread's `ReactorWaker` attaches the idle source, and attaching wakes a
//! thread blocked in the context's poll. GLib's timeouts have a resolution
//! of 1 ms, so nestloop timers fire up to 1 ms late while a loop waits in
//! GLib.

use std::cell::{Cell, RefCell};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::Waker;
use std::time::{Duration, Instant};

use glib::{ControlFlow, MainContext, Priority, Source};

use crate::park::{ThreadSignal, thread_key};

/// The GLib main context the loops of one thread wait in, and the sources
/// that run nestloop there (see the module docs).
pub(crate) struct GlibContext {
    context: MainContext,
    /// The thread's signal, whose `ReactorWaker` reaches the context.
    signal: Arc<ThreadSignal>,
    /// An idle source that runs `drive` is queued in the context (cleared
    /// when it runs).
    queued: Arc<AtomicBool>,
    /// The timeout source armed for a nestloop timer, and its deadline.
    timer: RefCell<Option<(Instant, Source)>>,
    /// `glib::main_depth()` outside the iteration of the innermost loop
    /// waiting in the context, if one waits.
    parked_at: Cell<Option<i32>>,
    /// Runs the thread's ready tasks and due timers (the `run_loop`
    /// layer's `drive_from_glib`).
    drive: fn(),
    /// Queues the idle source (see `listen`).
    waker: Waker,
}

impl std::fmt::Debug for GlibContext {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GlibContext")
            .field("queued", &self.queued.load(Ordering::Relaxed))
            .field("parked_at", &self.parked_at.get())
            .finish_non_exhaustive()
    }
}

/// The panic of a thread that would wait in a context another thread owns.
fn owned_elsewhere() -> ! {
    panic!(
        "nestloop: the GLib main context this executor waits in is owned by another thread \
         (a MainLoop runs it there, or that thread acquired it): a nestloop loop must iterate \
         the context its thread owns. Build the executor on the thread that runs the context's \
         main loop, or give Builder::glib_main_context a context of this thread (one pushed \
         with MainContext::with_thread_default)"
    )
}

impl GlibContext {
    /// The loops of the calling thread, whose signal is `signal`, wait in
    /// `context` from now on; `drive` runs the thread's work from GLib.
    /// Panics if another thread owns the context.
    pub(crate) fn new(context: MainContext, signal: Arc<ThreadSignal>, drive: fn()) -> Self {
        if context.acquire().is_err() {
            owned_elsewhere();
        }
        let queued = Arc::new(AtomicBool::new(false));
        let waker = waker(context.clone(), queued.clone(), drive);
        let glib = GlibContext {
            context,
            signal,
            queued,
            timer: RefCell::new(None),
            parked_at: Cell::new(None),
            drive,
            waker,
        };
        glib.listen();
        glib
    }

    /// Registers the waker with the thread's `ReactorWaker` (again: a wake
    /// takes it). Wakes on the thread reach GLib at any time, not only
    /// while a loop waits: with no loop running, GLib owns the thread.
    pub(crate) fn listen(&self) {
        self.signal.reactor.register(&self.waker);
    }

    /// Whether `context` is this one's.
    pub(crate) fn is(&self, context: &MainContext) -> bool {
        self.context == *context
    }

    /// Arms a timeout source for `deadline` (a nestloop timer's), unless
    /// one is armed for it or earlier.
    pub(crate) fn arm(&self, deadline: Option<Instant>) {
        let Some(deadline) = deadline else {
            return;
        };
        let mut timer = self.timer.borrow_mut();
        if let Some((at, source)) = &*timer {
            if *at <= deadline && !source.is_destroyed() {
                return;
            }
            source.destroy();
        }
        // GLib counts whole milliseconds: round up, so the timer is due
        // when the source fires.
        let wait = deadline.saturating_duration_since(Instant::now());
        let millis = wait.as_micros().div_ceil(1000) as u64;
        let (drive, key) = (self.drive, thread_key());
        let source = glib::timeout_source_new(
            Duration::from_millis(millis),
            Some("nestloop timer"),
            Priority::DEFAULT,
            move || {
                run_on(key, drive);
                ControlFlow::Break
            },
        );
        source.attach(Some(&self.context));
        *timer = Some((deadline, source));
    }

    /// Waits in the context until `work_arrived`, until `deadline` (a
    /// nestloop timer's) or until `turn_by` (other reactors' turn).
    /// Panics if another thread owns the context.
    pub(crate) fn park(
        &self,
        deadline: Option<Instant>,
        turn_by: Option<Instant>,
        mut work_arrived: impl FnMut() -> bool,
    ) {
        let Ok(_owner) = self.context.acquire() else {
            owned_elsewhere();
        };
        let _parked = self.parked();
        let until = super::earliest(deadline, turn_by);
        loop {
            // Registered before the check, so a wake from another thread
            // after it queues the idle source that ends the iteration.
            self.listen();
            if work_arrived() || until.is_some_and(|until| Instant::now() >= until) {
                return;
            }
            self.arm(until);
            self.context.iteration(true);
        }
    }

    /// Lets GLib dispatch what is ready, without waiting (a busy loop's
    /// turn). Panics if another thread owns the context.
    pub(crate) fn turn(&self) {
        let Ok(_owner) = self.context.acquire() else {
            owned_elsewhere();
        };
        let _parked = self.parked();
        self.context.iteration(false);
    }

    /// Marks the dispatches of the next iteration as the waiting loop's
    /// own until the guard drops (see `in_own_wait`).
    fn parked(&self) -> Parked<'_> {
        Parked(
            &self.parked_at,
            self.parked_at.replace(Some(glib::main_depth())),
        )
    }

    /// Whether a dispatch now is one of the iteration a waiting loop made
    /// (that loop sees the work when the iteration returns).
    pub(crate) fn in_own_wait(&self) -> bool {
        self.parked_at
            .get()
            .is_some_and(|depth| glib::main_depth() == depth + 1)
    }
}

/// Restores the outer wait's mark however a wait ends.
struct Parked<'a>(&'a Cell<Option<i32>>, Option<i32>);

impl Drop for Parked<'_> {
    fn drop(&mut self) {
        self.0.set(self.1);
    }
}

impl Drop for GlibContext {
    /// The last executor waiting in the context is gone: its timer source
    /// is removed and wakes no longer reach the context (a queued idle
    /// source finds nothing to run).
    fn drop(&mut self) {
        if let Some((_, source)) = self.timer.take() {
            source.destroy();
        }
        self.signal.reactor.clear();
    }
}

/// A waker that queues the idle source running `drive` in `context`, once
/// until it runs (`queued`), from any thread.
fn waker(context: MainContext, queued: Arc<AtomicBool>, drive: fn()) -> Waker {
    let key = thread_key();
    waker_fn::waker_fn(move || {
        if queued.swap(true, Ordering::AcqRel) {
            return;
        }
        let queued = queued.clone();
        let source = glib::idle_source_new(Some("nestloop"), Priority::DEFAULT, move || {
            queued.store(false, Ordering::Release);
            run_on(key, drive);
            ControlFlow::Break
        });
        source.attach(Some(&context));
    })
}

/// Runs `drive` if the calling thread is the one keyed `key` (the sources
/// run where the context is iterated).
fn run_on(key: u64, drive: fn()) {
    if thread_key() == key {
        drive();
    }
}
