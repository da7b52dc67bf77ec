//! [`Timeout`]: a future with a deadline, and its [`Elapsed`] error.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use pin_project_lite::pin_project;

use super::sleep::{Sleep, sleep, sleep_until};

/// Runs `future` with a time limit: `Ok(output)` if it completes within
/// `duration`, else `Err(Elapsed)` (and `future` is dropped with the
/// `Timeout`).
///
/// `future` is polled first, so a future that is ready at once wins even
/// with a zero duration.
///
/// # Panics
///
/// When the timer part is polled outside any nestloop loop.
///
/// # Cancel safety
///
/// As cancel safe as `future`: dropping the `Timeout` (also after it
/// returned `Err(Elapsed)`) drops `future` where it stands. To keep a future's progress after an
/// `Err(Elapsed)` and try again, pass it by reference
/// (`timeout(d, &mut fut)`, pinned first if it is not `Unpin`). As in tokio.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use nestloop::time::timeout;
///
/// nestloop::block_on(async {
///     assert_eq!(timeout(Duration::ZERO, async { 1 }).await, Ok(1));
///     assert!(timeout(Duration::from_millis(1), std::future::pending::<()>()).await.is_err());
/// });
/// ```
pub fn timeout<F: Future>(duration: Duration, future: F) -> Timeout<F> {
    Timeout {
        future,
        sleep: sleep(duration),
    }
}

/// Like [`timeout`], with a deadline instead of a duration.
///
/// # Examples
///
/// ```
/// use std::time::{Duration, Instant};
///
/// let deadline = Instant::now() + Duration::from_millis(1);
/// let result = nestloop::block_on(nestloop::time::timeout_at(deadline, std::future::pending::<()>()));
/// assert!(result.is_err());
/// ```
pub fn timeout_at<F: Future>(deadline: Instant, future: F) -> Timeout<F> {
    Timeout {
        future,
        sleep: sleep_until(deadline),
    }
}

pin_project! {
    /// The future of [`timeout`]. `Send` when the inner future is.
    ///
    /// # Cancel safety
    ///
    /// See [`timeout`]: as cancel safe as the inner future.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    ///
    /// let limited = nestloop::time::timeout(Duration::from_secs(1), async { "fast" });
    /// assert_eq!(nestloop::block_on(limited), Ok("fast"));
    /// ```
    #[must_use = "futures do nothing unless polled"]
    pub struct Timeout<F> {
        #[pin]
        future: F,
        sleep: Sleep,
    }
}

impl<F> Timeout<F> {
    /// The inner future.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    ///
    /// let limited = nestloop::time::timeout(Duration::from_secs(1), std::future::ready(5));
    /// assert_eq!(limited.get_ref().clone().into_inner(), 5);
    /// ```
    pub fn get_ref(&self) -> &F {
        &self.future
    }

    /// The inner future, mutably.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    ///
    /// let mut limited = nestloop::time::timeout(Duration::from_secs(1), std::future::ready(5));
    /// let inner: &mut std::future::Ready<i32> = limited.get_mut();
    /// assert_eq!(nestloop::block_on(inner), 5);
    /// ```
    pub fn get_mut(&mut self) -> &mut F {
        &mut self.future
    }

    /// The inner future.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    ///
    /// let limited = nestloop::time::timeout(Duration::from_secs(1), async { 3 });
    /// assert_eq!(nestloop::block_on(limited.into_inner()), 3);
    /// ```
    pub fn into_inner(self) -> F {
        self.future
    }

    /// When the time limit expires.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::{Duration, Instant};
    ///
    /// let at = Instant::now() + Duration::from_secs(1);
    /// assert_eq!(nestloop::time::timeout_at(at, async {}).deadline(), at);
    /// ```
    pub fn deadline(&self) -> Instant {
        self.sleep.deadline()
    }
}

impl<F: Future> Future for Timeout<F> {
    type Output = Result<F::Output, Elapsed>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        if let Poll::Ready(output) = this.future.poll(cx) {
            return Poll::Ready(Ok(output));
        }
        match Pin::new(this.sleep).poll(cx) {
            Poll::Ready(()) => Poll::Ready(Err(Elapsed(()))),
            Poll::Pending => Poll::Pending,
        }
    }
}

impl<F: fmt::Debug> fmt::Debug for Timeout<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Timeout")
            .field("future", &self.future)
            .field("deadline", &self.sleep.deadline())
            .finish()
    }
}

/// The error of a [`timeout`] whose time ran out.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
///
/// let err = nestloop::block_on(nestloop::time::timeout(
///     Duration::ZERO,
///     std::future::pending::<()>(),
/// ))
/// .unwrap_err();
/// assert_eq!(err.to_string(), "deadline has elapsed");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Elapsed(());

impl fmt::Display for Elapsed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("deadline has elapsed")
    }
}

impl std::error::Error for Elapsed {}

impl From<Elapsed> for std::io::Error {
    fn from(_: Elapsed) -> Self {
        std::io::ErrorKind::TimedOut.into()
    }
}
