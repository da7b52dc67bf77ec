//! The reactors a loop drives on its own thread while it waits (features
//! `async-io` and `tokio`).
//!
//! Without them a loop with nothing to do parks its thread, and I/O is
//! driven elsewhere: by async-io's helper thread, or by the workers of a
//! multi-thread tokio runtime. With them the loop's thread processes the
//! I/O events itself, at every nesting depth:
//!
//! * **async-io** (`async_io.rs`): a `block_on` loop moves into
//!   `async_io::block_on` the first time it would wait (or owes the reactor
//!   a turn), and from then on waits by returning `Pending` to it. Nested
//!   loops nest `async_io::block_on`, and the innermost one waits on the
//!   reactor, as smol's `block_on` does. A call whose future is done before
//!   it would wait (most nested calls) never enters it.
//! * **tokio** (`tokio.rs`): an executor built with
//!   `Builder::tokio_current_thread` owns a current_thread runtime. A loop
//!   that waits, with that executor active, waits in the runtime's
//!   `block_on` of a future that completes when work arrives for the loop,
//!   so the runtime's I/O driver, timers and tasks run meanwhile.
//!
//! Either way the loop registers the reactor's waker with its thread's
//! `ReactorWaker` (see `park`) and checks for work once more before it
//! waits, so wakes from other threads and from the reactor's own events end
//! the wait. A loop busy with ready tasks hands the reactor a turn after at
//! most `TURN_EVERY_POLLS` polls.

#[cfg(feature = "async-io")]
pub(crate) mod async_io;
#[cfg(feature = "glib")]
pub(crate) mod glib;
#[cfg(feature = "tokio")]
pub(crate) mod tokio;

/// The earlier of two optional deadlines (`None`: none).
#[cfg(any(feature = "tokio", feature = "glib"))]
pub(crate) fn earliest(
    a: Option<std::time::Instant>,
    b: Option<std::time::Instant>,
) -> Option<std::time::Instant> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

/// Polls after which a busy loop lets its reactor look for events without
/// waiting. A turn costs about half a microsecond (a system call), so at
/// this interval it adds a few percent to the cheapest polls.
pub(crate) const TURN_EVERY_POLLS: usize = 256;
