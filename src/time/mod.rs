//! Timers: [`sleep`], [`sleep_until`], [`timeout`] and [`interval`].
//!
//! Timers belong to the thread that polls them: each registers in a heap of
//! that thread, and every nestloop loop on the thread (at any depth, of any
//! executor) fires the timers that are due. A loop with nothing to do sleeps
//! until the next deadline; there is no timer thread and no spinning.
//!
//! A timer must be polled inside a nestloop loop (`block_on`,
//! `run_until_stalled`, or a task they run); polled anywhere else it panics,
//! since nothing there would ever fire it. A timer moved to another thread
//! registers with the loops of the thread that polls it next.
//!
//! A timer polled by some other executor's `block_on` called from inside a
//! nestloop task registers, but fires only once a nestloop loop runs again:
//! use `nestloop::block_on` there instead, which keeps the timers going.
//!
//! # Examples
//!
//! ```
//! use std::time::Duration;
//! use nestloop::time;
//!
//! nestloop::block_on(async {
//!     time::sleep(Duration::from_millis(5)).await;
//!     let slow = time::timeout(Duration::from_millis(5), std::future::pending::<()>()).await;
//!     assert!(slow.is_err());
//! });
//! ```

mod interval;
mod sleep;
mod timeout;

pub use interval::{Interval, MissedTickBehavior, interval, interval_at};
pub use sleep::{Sleep, sleep, sleep_until};
pub use timeout::{Elapsed, Timeout, timeout, timeout_at};
