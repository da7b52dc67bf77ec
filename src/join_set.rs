//! [`JoinSet`]: a set of tasks whose results come back in the order they
//! finish (tokio's `JoinSet`).
//!
//! Each handle is polled with a waker of its own from the moment it joins
//! the set, so a finishing task's wake queues just its entry (in the order
//! the tasks finish) and wakes the set's waiter: `join_next` polls the
//! entries that were woken, never a scan of the set.

use std::collections::VecDeque;
use std::fmt;
use std::future::{Future, poll_fn};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, Waker};

use futures::task::AtomicWaker;
use parking_lot::Mutex;
use slab::Slab;

use crate::sched::Executor;
use crate::task::{AbortHandle, JoinError, JoinHandle};

/// A set of tasks, joined in the order they finish. Like tokio's
/// `tokio::task::JoinSet`.
///
/// All tasks have the same output type `T`. [`spawn`](JoinSet::spawn) puts
/// a task on the current executor (as [`crate::spawn`] does),
/// [`spawn_on`](JoinSet::spawn_on) on a given one, and
/// [`push`](JoinSet::push) adopts a [`JoinHandle`] made any other way, such
/// as by [`Spawner::spawn`](crate::Spawner::spawn) from another thread.
/// [`join_next`](JoinSet::join_next) waits for the next task to finish and
/// returns its result.
///
/// **Dropping a `JoinSet` aborts every task still in it** (see
/// [`JoinHandle::abort`]): their futures are dropped before `drop`
/// returns, unless a task is being polled further down the stack (then as
/// soon as that poll returns). [`detach_all`](JoinSet::detach_all) lets
/// them run on instead.
///
/// It works at any nesting depth: a nested `block_on` can wait on a set of
/// tasks that the outer loops keep running.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use nestloop::JoinSet;
///
/// nestloop::block_on(async {
///     let mut set = JoinSet::new();
///     for ms in [30, 10, 20] {
///         set.spawn(async move {
///             nestloop::time::sleep(Duration::from_millis(ms)).await;
///             ms
///         });
///     }
///     let mut order = Vec::new();
///     while let Some(result) = set.join_next().await {
///         order.push(result.unwrap());
///     }
///     assert_eq!(order, [10, 20, 30]);
/// });
/// ```
pub struct JoinSet<T> {
    /// The tasks, by index (indexes are reused).
    entries: Slab<Entry<T>>,
    /// Stamps each new entry, so a wake meant for an entry that left tells
    /// itself apart from the one now at its index.
    next_generation: u64,
    /// Where the entries' wakers queue them.
    woken: Arc<Woken>,
}

/// Which entry: its index and generation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Key {
    /// The index in `entries`.
    index: usize,
    /// The entry's stamp (`next_generation` when it joined).
    generation: u64,
}

/// One task of the set.
struct Entry<T> {
    /// Its stamp (see `Key`).
    generation: u64,
    /// Its handle, or the result the handle gave when it joined.
    slot: Slot<T>,
    /// The entry's waker, which the handle holds while the task runs.
    waker: Waker,
}

/// A task's handle, or its result once taken.
enum Slot<T> {
    /// Running, or finished with the result still in the task.
    Waiting(JoinHandle<T>),
    /// The task had finished when it joined the set: its result.
    Done(Option<Result<T, JoinError>>),
}

impl<T> Slot<T> {
    /// The result, if the task has finished (`waker` is woken when it does).
    fn poll(&mut self, waker: &Waker) -> Option<Result<T, JoinError>> {
        match self {
            Slot::Waiting(handle) => match Pin::new(handle).poll(&mut Context::from_waker(waker)) {
                Poll::Ready(result) => Some(result),
                Poll::Pending => None,
            },
            Slot::Done(result) => result.take(),
        }
    }
}

/// The entries woken since the set last looked, shared with their wakers
/// (which may run on other threads: tasks spawned with a `Spawner`).
#[derive(Default)]
struct Woken {
    /// The woken entries, in the order of their wakes.
    queue: Mutex<VecDeque<Key>>,
    /// Whoever waits in `join_next`.
    waiter: AtomicWaker,
}

impl Woken {
    /// Queues `key` and wakes the waiter.
    fn push(&self, key: Key) {
        self.queue.lock().push_back(key);
        self.waiter.wake();
    }

    /// The next woken entry.
    fn pop(&self) -> Option<Key> {
        self.queue.lock().pop_front()
    }
}

impl<T> JoinSet<T> {
    /// An empty set.
    ///
    /// # Examples
    ///
    /// ```
    /// let set = nestloop::JoinSet::<()>::new();
    /// assert!(set.is_empty());
    /// ```
    pub fn new() -> Self {
        JoinSet {
            entries: Slab::new(),
            next_generation: 0,
            woken: Arc::default(),
        }
    }

    /// How many tasks are in the set: spawned and not yet returned by
    /// `join_next` (finished ones included).
    ///
    /// # Examples
    ///
    /// ```
    /// let mut set = nestloop::JoinSet::new();
    /// set.spawn(async { 1 });
    /// assert_eq!(set.len(), 1);
    /// nestloop::block_on(set.join_next());
    /// assert_eq!(set.len(), 0);
    /// ```
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether the set holds no task.
    ///
    /// # Examples
    ///
    /// ```
    /// let set = nestloop::JoinSet::<u8>::default();
    /// assert!(set.is_empty());
    /// ```
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Adds a task spawned some other way, such as with
    /// [`Spawner::spawn`](crate::Spawner::spawn) onto another thread's
    /// executor: the set now owns it (it is aborted with the set). Returns a
    /// handle that aborts it.
    ///
    /// # Examples
    ///
    /// ```
    /// let ex = nestloop::Executor::new();
    /// let mut set = nestloop::JoinSet::new();
    /// set.push(ex.spawner().spawn(async { 5 }));
    /// assert_eq!(ex.block_on(set.join_next()).unwrap().unwrap(), 5);
    /// ```
    pub fn push(&mut self, handle: JoinHandle<T>) -> AbortHandle {
        let aborter = handle.abort_handle();
        let key = Key {
            index: self.entries.vacant_key(),
            generation: self.next_generation,
        };
        self.next_generation += 1;
        let woken = Arc::clone(&self.woken);
        let waker = waker_fn::waker_fn(move || woken.push(key));
        // Polled now, so the handle holds the entry's waker from the start
        // and results come back in the order the tasks finish.
        let mut slot = Slot::Waiting(handle);
        if let Some(result) = slot.poll(&waker) {
            slot = Slot::Done(Some(result));
            self.woken.push(key);
        }
        self.entries.insert(Entry {
            generation: key.generation,
            slot,
            waker,
        });
        aborter
    }

    /// The next result among the woken entries; registers `waiter` (when
    /// given) if there is none.
    fn next_finished(&mut self, waiter: Option<&Waker>) -> Poll<Option<Result<T, JoinError>>> {
        if self.entries.is_empty() {
            return Poll::Ready(None);
        }
        loop {
            let key = match self.woken.pop() {
                Some(key) => key,
                None => {
                    let Some(waiter) = waiter else {
                        return Poll::Pending;
                    };
                    self.woken.waiter.register(waiter);
                    // A wake between the first look and the registration.
                    match self.woken.pop() {
                        Some(key) => key,
                        None => return Poll::Pending,
                    }
                }
            };
            // A wake of an entry that has left (its index may be reused).
            let Some(entry) = self.entries.get_mut(key.index) else {
                continue;
            };
            if entry.generation != key.generation {
                continue;
            }
            if let Some(result) = entry.slot.poll(&entry.waker) {
                self.entries.remove(key.index);
                return Poll::Ready(Some(result));
            }
        }
    }

    /// Waits for the next task to finish and returns its result; `None`
    /// when the set is empty. Tasks come back in the order they finish,
    /// whatever the order they were spawned in. A task that panicked or was
    /// aborted comes back as `Err` ([`JoinError::is_panic`],
    /// [`JoinError::is_cancelled`]); `join_next` itself does not panic.
    ///
    /// # Cancel safety
    ///
    /// Cancel safe: the result is taken out of the set only in the poll that
    /// returns it, so dropping a `join_next` future that has not completed
    /// (it lost a `select`, a `timeout` elapsed) loses no result; the next
    /// call returns it. Same as tokio's.
    ///
    /// # Examples
    ///
    /// ```
    /// let mut set = nestloop::JoinSet::new();
    /// set.spawn(async { panic!("boom") });
    /// let err = nestloop::block_on(set.join_next()).unwrap().unwrap_err();
    /// assert!(err.is_panic());
    /// assert!(nestloop::block_on(set.join_next()).is_none());
    /// ```
    pub async fn join_next(&mut self) -> Option<Result<T, JoinError>> {
        poll_fn(|cx| self.poll_join_next(cx)).await
    }

    /// Polls for the next task to finish: the poll form of
    /// [`join_next`](JoinSet::join_next). `Ready(None)` when the set is
    /// empty; `Pending` registers `cx`'s waker for the next task to finish
    /// (only the latest waker is kept).
    ///
    /// # Examples
    ///
    /// ```
    /// use std::future::poll_fn;
    ///
    /// let mut set = nestloop::JoinSet::new();
    /// set.spawn(async { 3 });
    /// let first = nestloop::block_on(poll_fn(|cx| set.poll_join_next(cx)));
    /// assert_eq!(first.unwrap().unwrap(), 3);
    /// ```
    pub fn poll_join_next(&mut self, cx: &mut Context<'_>) -> Poll<Option<Result<T, JoinError>>> {
        self.next_finished(Some(cx.waker()))
    }

    /// Returns the result of a task that has already finished, without
    /// waiting; `None` when none has (or the set is empty).
    ///
    /// # Examples
    ///
    /// ```
    /// let ex = nestloop::Executor::new();
    /// let mut set = nestloop::JoinSet::new();
    /// set.spawn_on(async { 1 }, &ex);
    /// assert!(set.try_join_next().is_none()); // not run yet
    /// ex.run_until_stalled();
    /// assert_eq!(set.try_join_next().unwrap().unwrap(), 1);
    /// ```
    pub fn try_join_next(&mut self) -> Option<Result<T, JoinError>> {
        match self.next_finished(None) {
            Poll::Ready(result) => result,
            Poll::Pending => None,
        }
    }

    /// Aborts every task in the set (see [`JoinHandle::abort`]). They stay
    /// in the set: `join_next` returns each one's result, a cancelled
    /// `JoinError` or, for a task that had finished already, its output.
    /// As in tokio.
    ///
    /// # Examples
    ///
    /// ```
    /// let mut set = nestloop::JoinSet::new();
    /// for _ in 0..3 {
    ///     set.spawn(std::future::pending::<()>());
    /// }
    /// set.abort_all();
    /// assert_eq!(set.len(), 3);
    /// nestloop::block_on(async {
    ///     while let Some(result) = set.join_next().await {
    ///         assert!(result.unwrap_err().is_cancelled());
    ///     }
    /// });
    /// ```
    pub fn abort_all(&mut self) {
        for (_, entry) in &self.entries {
            if let Slot::Waiting(handle) = &entry.slot {
                handle.abort();
            }
        }
    }

    /// Empties the set without aborting its tasks: they run on, detached,
    /// as when a [`JoinHandle`] is dropped.
    ///
    /// # Examples
    ///
    /// ```
    /// let mut set = nestloop::JoinSet::new();
    /// let aborter = set.spawn(async {});
    /// set.detach_all();
    /// assert!(set.is_empty());
    /// nestloop::block_on(nestloop::yield_now());
    /// assert!(aborter.is_finished());
    /// ```
    pub fn detach_all(&mut self) {
        self.entries.clear();
        self.woken.queue.lock().clear();
    }

    /// Aborts every task and waits until each one is gone, dropping their
    /// results. The set is empty afterwards.
    ///
    /// # Cancel safety
    ///
    /// Dropped before it completes, it has aborted every task already, and
    /// the results not yet taken stay in the set for `join_next`.
    ///
    /// # Examples
    ///
    /// ```
    /// let mut set = nestloop::JoinSet::new();
    /// set.spawn(std::future::pending::<()>());
    /// nestloop::block_on(set.shutdown());
    /// assert!(set.is_empty());
    /// ```
    pub async fn shutdown(&mut self) {
        self.abort_all();
        while self.join_next().await.is_some() {}
    }
}

impl<T: 'static> JoinSet<T> {
    /// Spawns a task on the current executor, as [`crate::spawn`] does, and
    /// adds it to the set. Returns a handle that aborts it.
    ///
    /// # Examples
    ///
    /// ```
    /// let mut set = nestloop::JoinSet::new();
    /// let aborter = set.spawn(std::future::pending::<()>());
    /// aborter.abort();
    /// let result = nestloop::block_on(set.join_next()).unwrap();
    /// assert!(result.unwrap_err().is_cancelled());
    /// ```
    #[track_caller]
    pub fn spawn<F>(&mut self, future: F) -> AbortHandle
    where
        F: Future<Output = T> + 'static,
    {
        self.push(crate::spawn(future))
    }

    /// Spawns a task on `executor` and adds it to the set. Returns a handle
    /// that aborts it. (tokio's `spawn_on` takes a runtime handle in the
    /// same place.)
    ///
    /// # Examples
    ///
    /// ```
    /// let ex = nestloop::Executor::new();
    /// let mut set = nestloop::JoinSet::new();
    /// set.spawn_on(async { "on ex" }, &ex);
    /// assert_eq!(ex.block_on(set.join_next()).unwrap().unwrap(), "on ex");
    /// ```
    #[track_caller]
    pub fn spawn_on<F>(&mut self, future: F, executor: &Executor) -> AbortHandle
    where
        F: Future<Output = T> + 'static,
    {
        self.push(executor.spawn(future))
    }
}

impl<T> Default for JoinSet<T> {
    fn default() -> Self {
        JoinSet::new()
    }
}

impl<T> Drop for JoinSet<T> {
    /// Aborts every task still in the set.
    fn drop(&mut self) {
        self.abort_all();
    }
}

impl<T> fmt::Debug for JoinSet<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("JoinSet").field("len", &self.len()).finish()
    }
}
