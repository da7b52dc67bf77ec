//! The primitives of the cross-thread protocol, through one shim so the same
//! code runs under the loom model checker (`RUSTFLAGS="--cfg nestloop_loom"`, see
//! `tests/loom.rs`): atomics and fences, the `Arc`s that cross threads,
//! spinning, the injection queue, the task cell, thread parking and
//! thread-locals.
//!
//! Two of them are not loom's own types under loom, because those give
//! more ordering than `std` does and so would hide a missing fence: `Arc`
//! (`loom_arc.rs`: loom's `strong_count` acquires, std's is `Relaxed`, and
//! loom does not treat a drop as racing a `strong_count`) and parking
//! (`thread`: loom's unpark orders at once, std's only for the park that
//! takes its token).
//!
//! Under loom, timers are not modeled: parking ignores its deadline.

#[cfg(nestloop_loom)]
pub(crate) use loom::sync::atomic::{AtomicBool, AtomicUsize, Ordering, fence};
#[cfg(not(nestloop_loom))]
pub(crate) use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering, fence};

/// The `Arc`s that cross threads: a task's executor (`Arc<Shared>`, see
/// `sched::hold`), a thread's `Arc<ThreadSignal>` and a `block_on` future's
/// `Arc<BlockOnWake>`, whose strong count the deadlock check (R9) reads.
/// Under loom, `loom::sync::Arc` with a strong count that orders as
/// `std`'s does (see `loom_arc.rs`).
#[cfg(nestloop_loom)]
pub(crate) use loom_arc::Arc;
#[cfg(not(nestloop_loom))]
pub(crate) use std::sync::Arc;

#[cfg(nestloop_loom)]
mod loom_arc;

/// Declares thread-locals: `std`'s (with `const` initialisers where given)
/// normally, loom's under loom, so each modeled thread has its own.
macro_rules! thread_locals {
    () => {};
    ($(#[$attr:meta])* static $name:ident: $t:ty = const $init:block; $($rest:tt)*) => {
        #[cfg(not(nestloop_loom))]
        std::thread_local! { $(#[$attr])* static $name: $t = const $init; }
        #[cfg(nestloop_loom)]
        loom::thread_local! { $(#[$attr])* static $name: $t = $init; }
        $crate::sync::thread_locals! { $($rest)* }
    };
    ($(#[$attr:meta])* static $name:ident: $t:ty = $init:expr; $($rest:tt)*) => {
        #[cfg(not(nestloop_loom))]
        std::thread_local! { $(#[$attr])* static $name: $t = $init; }
        #[cfg(nestloop_loom)]
        loom::thread_local! { $(#[$attr])* static $name: $t = $init; }
        $crate::sync::thread_locals! { $($rest)* }
    };
}
pub(crate) use thread_locals;

/// A hint inside a spin loop; under loom, a yield so the model moves on.
#[inline]
pub(crate) fn spin_hint() {
    #[cfg(nestloop_loom)]
    loom::thread::yield_now();
    #[cfg(not(nestloop_loom))]
    std::hint::spin_loop();
}

/// The queue other threads push wakes and spawns into.
#[cfg(not(nestloop_loom))]
pub(crate) type InjectQueue<T> = crossbeam_queue::SegQueue<T>;

/// Under loom: a modeled mutex around a deque, with `SegQueue`'s methods.
#[cfg(nestloop_loom)]
#[derive(Debug, Default)]
pub(crate) struct InjectQueue<T>(loom::sync::Mutex<std::collections::VecDeque<T>>);

#[cfg(nestloop_loom)]
impl<T> InjectQueue<T> {
    pub(crate) fn new() -> Self {
        InjectQueue(loom::sync::Mutex::new(std::collections::VecDeque::new()))
    }
    pub(crate) fn push(&self, value: T) {
        self.0.lock().unwrap().push_back(value);
    }
    pub(crate) fn pop(&self) -> Option<T> {
        self.0.lock().unwrap().pop_front()
    }
    pub(crate) fn is_empty(&self) -> bool {
        self.0.lock().unwrap().is_empty()
    }
    pub(crate) fn len(&self) -> usize {
        self.0.lock().unwrap().len()
    }
}

/// An `UnsafeCell` with loom's closure API, so loom can check every access.
#[cfg(not(nestloop_loom))]
#[derive(Debug)]
pub(crate) struct UnsafeCell<T>(std::cell::UnsafeCell<T>);

#[cfg(not(nestloop_loom))]
impl<T> UnsafeCell<T> {
    pub(crate) const fn new(value: T) -> Self {
        UnsafeCell(std::cell::UnsafeCell::new(value))
    }

    /// Runs `f` with a raw pointer to the contents; dereferencing it is the
    /// caller's responsibility.
    #[inline]
    pub(crate) fn with_mut<R>(&self, f: impl FnOnce(*mut T) -> R) -> R {
        f(self.0.get())
    }

    /// Runs `f` with a raw pointer to the contents, for reading.
    #[inline]
    pub(crate) fn with<R>(&self, f: impl FnOnce(*const T) -> R) -> R {
        f(self.0.get())
    }
}

#[cfg(nestloop_loom)]
pub(crate) use loom::cell::UnsafeCell;

/// Thread handles and parking.
pub(crate) mod thread {
    #[cfg(nestloop_loom)]
    pub(crate) use loom_parker::{Thread, current};
    #[cfg(not(nestloop_loom))]
    pub(crate) use std::thread::{Thread, current};

    use std::time::{Duration, Instant};

    /// Gives the CPU to other threads for about `duration`, yielding rather
    /// than spinning so that a thread sharing this core gets to run.
    pub(crate) fn pause(duration: Duration) {
        // Under loom: nothing. The pause is only a delay (it takes and
        // publishes nothing), loom does not model time, and a yield this
        // deep in a loop overflows the stack loom gives the model's thread.
        #[cfg(nestloop_loom)]
        let _ = duration;
        #[cfg(not(nestloop_loom))]
        {
            let start = Instant::now();
            loop {
                std::thread::yield_now();
                if start.elapsed() >= duration {
                    break;
                }
            }
        }
    }

    /// Under loom: `std`'s park token, kept behind a modeled mutex and
    /// condition variable, one per thread. An unpark then shows what its
    /// thread did only to the `park` that takes the token, as with `std`.
    /// loom's own `Thread::unpark` shows it to the unparked thread at once,
    /// even one that is running and never parks: a wake from another thread
    /// unparks before it drops its waker, so with it the loop (and its
    /// deadlock check) would see the wake from then on whatever orderings
    /// it used, and the models could not tell a needed fence is missing.
    #[cfg(nestloop_loom)]
    mod loom_parker {
        use loom::sync::{Condvar, Mutex};

        /// A thread's park token.
        #[derive(Default)]
        struct Parker {
            /// Set by an unpark, taken by a park.
            token: Mutex<bool>,
            /// Wakes the parked thread.
            unparked: Condvar,
        }

        /// A handle for unparking a thread. Its `Arc` is `std`'s: loom drops
        /// a thread's thread-locals in no fixed order, and a modeled `Arc`
        /// dropped there would make executions of the same model differ.
        #[derive(Clone)]
        pub(crate) struct Thread(std::sync::Arc<Parker>);

        impl std::fmt::Debug for Thread {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("Thread { .. }")
            }
        }

        impl Thread {
            /// Gives the thread its token, waking it if it is parked.
            pub(crate) fn unpark(&self) {
                *self.0.token.lock().unwrap() = true;
                self.0.unparked.notify_one();
            }
        }

        loom::thread_local! {
            static PARKER: std::sync::Arc<Parker> = std::sync::Arc::new(Parker::default());
        }

        /// A handle of the calling thread.
        pub(crate) fn current() -> Thread {
            PARKER.with(|p| Thread(p.clone()))
        }

        /// Waits for the calling thread's token and takes it.
        pub(crate) fn park() {
            PARKER.with(|p| {
                let mut token = p.token.lock().unwrap();
                while !*token {
                    token = p.unparked.wait(token).unwrap();
                }
                *token = false;
            });
        }
    }

    /// Parks the calling thread until it is unparked or `deadline` passes.
    pub(crate) fn park(deadline: Option<Instant>) {
        #[cfg(nestloop_loom)]
        {
            let _ = deadline; // timers are not modeled
            loom_parker::park();
        }
        #[cfg(not(nestloop_loom))]
        match deadline {
            None => std::thread::park(),
            Some(deadline) => {
                let now = Instant::now();
                if deadline > now {
                    std::thread::park_timeout(deadline - now);
                }
            }
        }
    }
}
