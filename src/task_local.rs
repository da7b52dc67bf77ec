//! Task-local storage that stays with its task across nested loops:
//! [`task_local!`](crate::task_local!), [`LocalKey`], [`TaskLocalFuture`].
//!
//! tokio's `task_local!` keeps a scope's value in a thread-local for the
//! duration of the scope's poll. In nestloop that poll can run a nested
//! loop, which polls other tasks while it is still on the stack: they would
//! see the value. So every value here is tagged with the *poll* it was
//! entered in, and a lookup sees only values of the poll that is running:
//!
//! * every loop runs under a fresh mark of its own (`enter_new_poll`), and
//!   so do the tasks it polls. A loop polls one thing at a time, so while a
//!   task's poll is on the stack, the only code that runs under its loop's
//!   mark is that task's own; anything a nested loop polls meanwhile runs
//!   under the nested loop's mark. (No per-task mark: the task poll path
//!   stays as it was.) Dropping an aborted task's future gets a fresh mark
//!   too, so its destructors do not see the aborting code's values;
//! * a `block_on` future is the code of whoever called `block_on`: its
//!   first poll runs inline, under the caller's mark, and every later poll,
//!   by its own loop or a deeper one, runs under that same mark again
//!   (`enter_poll_of`), so it sees the caller's values throughout;
//! * a scope pushes `(mark, value)` on its key's stack for the duration of
//!   its poll and pops it when the poll returns or unwinds; a lookup takes
//!   the innermost entry with the current mark.
//!
//! This module names no other: the loops (`task`, `run_loop`) call down
//! into its marks.

use std::cell::Cell;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use pin_project_lite::pin_project;

use crate::thread_context::{self, ThreadContext};

/// Which poll is running on this thread (see the module docs): the running
/// poll's mark (0: none of nestloop's, e.g. `main`), and the last mark
/// handed out. They live in the thread's context (the running mark in the
/// running stack's `StackContext`), and only this module
/// touches them.
fn marks(cx: &ThreadContext) -> (&Cell<u64>, &Cell<u64>) {
    (&cx.stack.mark, &cx.mark_last)
}

/// The mark of a poll (see the module docs).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct PollMark(u64);

/// Restores the previous mark when the poll it was made for returns or
/// unwinds.
#[derive(Debug)]
#[must_use = "the mark is restored when the guard drops"]
pub(crate) struct MarkGuard {
    /// The mark to restore.
    previous: u64,
    /// The mark it set, which must be the running one when it drops (its
    /// poll's, on its own stack).
    #[cfg(debug_assertions)]
    own: u64,
}

impl MarkGuard {
    /// Sets `mark` as the running poll's, until the guard drops.
    #[inline]
    fn enter(cx: &ThreadContext, mark: u64) -> MarkGuard {
        MarkGuard {
            previous: marks(cx).0.replace(mark),
            #[cfg(debug_assertions)]
            own: mark,
        }
    }
}

impl Drop for MarkGuard {
    #[inline]
    fn drop(&mut self) {
        thread_context::with(|cx| {
            let running = marks(cx).0.replace(self.previous);
            #[cfg(debug_assertions)]
            debug_assert_eq!(
                running, self.own,
                "nestloop: internal error: a poll's task-local mark ended on another poll"
            );
            let _ = running;
        });
    }
}

/// The running poll's mark.
#[inline]
pub(crate) fn current_poll() -> PollMark {
    PollMark(thread_context::with(|cx| marks(cx).0.get()))
}

/// Runs under a fresh mark until the guard drops: a loop, an aborted
/// task's drop.
#[inline]
pub(crate) fn enter_new_poll() -> MarkGuard {
    thread_context::with(|cx| MarkGuard::enter(cx, next_mark(cx)))
}

/// A fresh mark, for a new stack's first poll (see `context/stack.rs`).
#[cfg_attr(
    not(test),
    allow(dead_code, reason = "the stack switch of R12 (fiber layer) calls it")
)]
pub(crate) fn new_mark() -> u64 {
    thread_context::with(next_mark)
}

/// Hands out the next mark.
#[inline]
fn next_mark(cx: &ThreadContext) -> u64 {
    let last = marks(cx).1;
    let mark = last.get() + 1;
    last.set(mark);
    mark
}

/// Runs under `mark` until the guard drops: a `block_on` future polled
/// again, under its caller's mark.
#[inline]
pub(crate) fn enter_poll_of(mark: PollMark) -> MarkGuard {
    thread_context::with(|cx| MarkGuard::enter(cx, mark.0))
}

/// Declares task-local keys: [`LocalKey`]s whose value is set for a future
/// with [`LocalKey::scope`] (or for a closure with
/// [`LocalKey::sync_scope`]) and read with [`LocalKey::with`] inside it.
/// The same syntax as tokio's `task_local!`.
///
/// # Examples
///
/// ```
/// nestloop::task_local! {
///     static REQUEST_ID: u64;
///     pub static USER: String;
/// }
///
/// nestloop::block_on(REQUEST_ID.scope(7, async {
///     assert_eq!(REQUEST_ID.get(), 7);
///     assert!(USER.try_with(|_| ()).is_err());
/// }));
/// ```
#[macro_export]
macro_rules! task_local {
    () => {};
    ($(#[$attr:meta])* $vis:vis static $name:ident: $t:ty; $($rest:tt)*) => {
        $crate::__task_local_key!($(#[$attr])* $vis $name, $t);
        $crate::task_local!($($rest)*);
    };
    ($(#[$attr:meta])* $vis:vis static $name:ident: $t:ty) => {
        $crate::__task_local_key!($(#[$attr])* $vis $name, $t);
    };
}

/// One key of `task_local!`.
#[doc(hidden)]
#[macro_export]
macro_rules! __task_local_key {
    ($(#[$attr:meta])* $vis:vis $name:ident, $t:ty) => {
        $(#[$attr])*
        $vis static $name: $crate::task_local::LocalKey<$t> = {
            ::std::thread_local! {
                static __NESTLOOP_TASK_LOCAL: $crate::task_local::__private::Entries<$t> =
                    const { $crate::task_local::__private::Entries::new() };
            }
            $crate::task_local::LocalKey {
                __entries: __NESTLOOP_TASK_LOCAL,
            }
        };
    };
}

/// What `task_local!` expands to; not public API.
#[doc(hidden)]
pub mod __private {
    use std::cell::RefCell;
    use std::fmt;
    use std::sync::Arc;

    /// A key's entries on this thread, innermost last: the mark of the poll
    /// each scope was entered in, and its value.
    pub struct Entries<T>(pub(super) RefCell<Vec<(u64, Arc<T>)>>);

    impl<T> Entries<T> {
        /// No entries.
        pub const fn new() -> Self {
            Entries(RefCell::new(Vec::new()))
        }
    }

    impl<T> Default for Entries<T> {
        fn default() -> Self {
            Entries::new()
        }
    }

    impl<T> fmt::Debug for Entries<T> {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.pad("Entries { .. }")
        }
    }
}

use __private::Entries;

/// A key for task-local storage, declared with
/// [`task_local!`](crate::task_local!). Like tokio's `LocalKey`, with one
/// difference that matters for nesting: a value belongs to the task (or
/// `block_on` future) whose code entered the scope, also while that code
/// runs a nested `block_on`: the tasks the nested loop polls meanwhile do
/// not see it (with tokio's `task_local!` they would).
///
/// Values are kept behind an `Arc` (so [`with`](LocalKey::with) can lend
/// one while other scopes of the same key come and go in nested loops):
/// a [`TaskLocalFuture`] is `Send` when the value is `Send + Sync` and the
/// future is `Send` (tokio asks only `Send` of the value).
///
/// # Examples
///
/// ```
/// use std::time::Duration;
///
/// nestloop::task_local! {
///     static NAME: &'static str;
/// }
///
/// /// Synchronous code that runs a nested loop.
/// fn helper() {
///     nestloop::block_on(nestloop::time::sleep(Duration::from_millis(1)));
///     assert_eq!(NAME.get(), "a"); // still task a's value
/// }
///
/// nestloop::block_on(async {
///     let a = nestloop::spawn(NAME.scope("a", async { helper() }));
///     let b = nestloop::spawn(NAME.scope("b", async {
///         // b may run during a's nested block_on: it sees its own value.
///         assert_eq!(NAME.get(), "b");
///     }));
///     let c = nestloop::spawn(async { assert!(NAME.try_with(|_| ()).is_err()) });
///     a.await.unwrap();
///     b.await.unwrap();
///     c.await.unwrap();
/// });
/// ```
pub struct LocalKey<T: 'static> {
    /// The key's entries, per thread; made by `task_local!`.
    #[doc(hidden)]
    pub __entries: std::thread::LocalKey<Entries<T>>,
}

impl<T: 'static> LocalKey<T> {
    /// Sets the key to `value` while `future` is polled (and dropped), and
    /// for nothing else: code that `future`'s polls run, including
    /// `block_on` futures it nests, sees the value; other tasks, also those
    /// a nested loop polls meanwhile, do not.
    ///
    /// # Cancel safety
    ///
    /// The returned future is as cancel safe as `future`; dropping it drops
    /// `future` with the key set, as tokio does.
    ///
    /// # Examples
    ///
    /// ```
    /// nestloop::task_local! { static DEPTH: u32; }
    ///
    /// let seen = nestloop::block_on(DEPTH.scope(1, async {
    ///     DEPTH.scope(2, async { DEPTH.get() }).await + DEPTH.get()
    /// }));
    /// assert_eq!(seen, 3);
    /// ```
    pub fn scope<F: Future>(&'static self, value: T, future: F) -> TaskLocalFuture<T, F> {
        TaskLocalFuture {
            key: self,
            value: Some(Arc::new(value)),
            future: Some(future),
        }
    }

    /// Sets the key to `value` while `f` runs, synchronously.
    ///
    /// # Examples
    ///
    /// ```
    /// nestloop::task_local! { static LEVEL: u8; }
    ///
    /// assert_eq!(LEVEL.sync_scope(3, || LEVEL.get()), 3);
    /// assert!(LEVEL.try_with(|_| ()).is_err());
    /// ```
    pub fn sync_scope<F, R>(&'static self, value: T, f: F) -> R
    where
        F: FnOnce() -> R,
    {
        self.enter(&mut Some(Arc::new(value)), f)
    }

    /// Calls `f` with the value the current task (or `block_on` future) set
    /// in a [`scope`](LocalKey::scope).
    ///
    /// # Panics
    ///
    /// Outside a scope of this key (use [`try_with`](LocalKey::try_with) to
    /// find out), with a `nestloop:` message.
    ///
    /// # Examples
    ///
    /// ```
    /// nestloop::task_local! { static NAME: String; }
    ///
    /// nestloop::block_on(NAME.scope("ann".to_string(), async {
    ///     assert_eq!(NAME.with(|name| name.len()), 3);
    /// }));
    /// ```
    pub fn with<F, R>(&'static self, f: F) -> R
    where
        F: FnOnce(&T) -> R,
    {
        self.try_with(f).unwrap_or_else(|AccessError { .. }| {
            panic!(
                "nestloop: task-local value of type `{}` read outside a scope of its key; \
                 run the code in `KEY.scope(value, future)` or `KEY.sync_scope(value, f)`, \
                 or use `try_with`",
                std::any::type_name::<T>()
            )
        })
    }

    /// Calls `f` with the value the current task set, or returns
    /// [`AccessError`] outside a scope of this key (or while the thread's
    /// storage is being destroyed).
    ///
    /// # Examples
    ///
    /// ```
    /// nestloop::task_local! { static ID: u32; }
    ///
    /// assert!(ID.try_with(|id| *id).is_err());
    /// assert_eq!(nestloop::block_on(ID.scope(9, async { ID.try_with(|id| *id) })), Ok(9));
    /// ```
    pub fn try_with<F, R>(&'static self, f: F) -> Result<R, AccessError>
    where
        F: FnOnce(&T) -> R,
    {
        let PollMark(mark) = current_poll();
        // Lent out of the borrow, so `f` may enter scopes of this key
        // (a nested loop polls tasks that do).
        let value = self.__entries.try_with(|entries| {
            let entries = entries.0.borrow();
            let found = entries.iter().rev().find(|(m, _)| *m == mark);
            found.map(|(_, value)| Arc::clone(value))
        });
        match value {
            Ok(Some(value)) => Ok(f(&value)),
            _ => Err(AccessError { _private: () }),
        }
    }

    /// Runs `f` with `value` pushed for the running poll; `value` is back
    /// in its slot afterwards, also when `f` unwinds.
    ///
    /// # Panics
    ///
    /// When the thread's storage is gone (a scope polled by a destructor
    /// at thread exit).
    fn enter<R>(&'static self, value: &mut Option<Arc<T>>, f: impl FnOnce() -> R) -> R {
        self.try_enter(value, f).unwrap_or_else(|_| {
            panic!(
                "nestloop: task-local scope polled while the thread is exiting (its storage is \
                 gone); finish such futures before the thread's main function returns"
            )
        })
    }

    /// `enter`, or `f` back when the thread's storage is gone.
    fn try_enter<R, G: FnOnce() -> R>(
        &'static self,
        value: &mut Option<Arc<T>>,
        f: G,
    ) -> Result<R, G> {
        /// Takes its own entry (this mark, this value) back into its slot:
        /// the innermost one while scopes end in the reverse order they
        /// began on one stack, any one of them when scopes of suspended
        /// stacks (R12) are interleaved with it.
        struct Pop<'a, T: 'static> {
            key: &'static LocalKey<T>,
            slot: &'a mut Option<Arc<T>>,
            mark: u64,
            value: *const T,
        }
        impl<T> Drop for Pop<'_, T> {
            fn drop(&mut self) {
                let popped = self.key.__entries.try_with(|e| {
                    let mut entries = e.0.borrow_mut();
                    let own =
                        |(m, v): &(u64, Arc<T>)| *m == self.mark && Arc::as_ptr(v) == self.value;
                    match entries.last() {
                        Some(last) if own(last) => entries.pop(),
                        _ => {
                            let at = entries.iter().rposition(own);
                            at.map(|at| entries.remove(at))
                        }
                    }
                });
                *self.slot = popped.ok().flatten().map(|(_, value)| value);
            }
        }
        let mark = current_poll().0;
        let pushed = self.__entries.try_with(|e| {
            let value = value
                .take()
                .expect("nestloop: internal error: scope value missing");
            let ptr = Arc::as_ptr(&value);
            e.0.borrow_mut().push((mark, value));
            ptr
        });
        let Ok(ptr) = pushed else {
            return Err(f);
        };
        let _pop = Pop {
            key: self,
            slot: value,
            mark,
            value: ptr,
        };
        Ok(f())
    }
}

impl<T: Clone + 'static> LocalKey<T> {
    /// A clone of the current task's value.
    ///
    /// # Panics
    ///
    /// Outside a scope of this key, like [`with`](LocalKey::with).
    ///
    /// # Examples
    ///
    /// ```
    /// nestloop::task_local! { static N: u32; }
    ///
    /// assert_eq!(nestloop::block_on(N.scope(4, async { N.get() })), 4);
    /// ```
    pub fn get(&'static self) -> T {
        self.with(T::clone)
    }
}

impl<T: 'static> fmt::Debug for LocalKey<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad("LocalKey { .. }")
    }
}

pin_project! {
    /// The future of [`LocalKey::scope`]: polls (and drops) `F` with the
    /// key set. `Send` when `T` is `Send + Sync` and `F` is `Send`.
    ///
    /// # Panics
    ///
    /// When polled again after it completed.
    ///
    /// # Examples
    ///
    /// ```
    /// nestloop::task_local! { static X: u8; }
    ///
    /// let fut: nestloop::task_local::TaskLocalFuture<u8, _> = X.scope(1, async { X.get() });
    /// assert_eq!(nestloop::block_on(fut), 1);
    /// ```
    #[must_use = "futures do nothing unless polled"]
    pub struct TaskLocalFuture<T: 'static, F> {
        key: &'static LocalKey<T>,
        // The value, while no poll of `future` runs (it is on the key's
        // stack meanwhile).
        value: Option<Arc<T>>,
        // `None` once it completed.
        #[pin]
        future: Option<F>,
    }

    impl<T: 'static, F> PinnedDrop for TaskLocalFuture<T, F> {
        fn drop(this: Pin<&mut Self>) {
            let this = this.project();
            let mut future = this.future;
            if !std::mem::needs_drop::<F>() || future.is_none() {
                return;
            }
            // Dropped with the key set, as tokio does; at thread exit, when
            // the storage is gone, without it.
            let drop_future = move || future.set(None);
            if let Err(mut drop_future) = this.key.try_enter(this.value, drop_future) {
                drop_future();
            }
        }
    }
}

impl<T: 'static, F: Future> Future for TaskLocalFuture<T, F> {
    type Output = F::Output;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        let this = self.project();
        let mut future = this.future;
        if future.is_none() {
            panic!("nestloop: TaskLocalFuture polled again after it completed");
        }
        this.key.enter(this.value, || {
            let Some(inner) = future.as_mut().as_pin_mut() else {
                unreachable!("checked above");
            };
            let poll = inner.poll(cx);
            if poll.is_ready() {
                // Dropped with the key set, as tokio does.
                future.set(None);
            }
            poll
        })
    }
}

impl<T: 'static + fmt::Debug, F> fmt::Debug for TaskLocalFuture<T, F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TaskLocalFuture")
            .field("value", &self.value)
            .finish_non_exhaustive()
    }
}

/// The error of [`LocalKey::try_with`]: the key has no value for the
/// running task (no scope of it is entered), or the thread's storage is
/// being destroyed.
///
/// # Examples
///
/// ```
/// nestloop::task_local! { static K: u8; }
///
/// let err = K.try_with(|_| ()).unwrap_err();
/// assert_eq!(err.to_string(), "task-local value read outside a scope of its key");
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccessError {
    _private: (),
}

impl fmt::Display for AccessError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("task-local value read outside a scope of its key")
    }
}

impl std::error::Error for AccessError {}
