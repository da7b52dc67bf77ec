#![allow(unsafe_code)]
//! [`Fiber`] over corosensei's `Coroutine`, the thread's [`StackPool`], and
//! [`suspend`], which reaches the running fiber's `Yielder` from anywhere on
//! its stack through the running stack's `StackContext::fiber`.
//!
//! Invariant: a non-null `StackContext::fiber` points at the `Yielder` of
//! the fiber that is running now, on this thread. The `Yielder` lives at
//! the base of its fiber's stack for as long as the fiber's closure runs.
//! Only `Fiber::new`'s wrapper stores the pointer, on entry to the fiber,
//! into the running stack's context (the fiber's own: whoever resumes a
//! fiber first makes its stack state the running one, `context/fibers.rs`),
//! and clears it when the closure returns or unwinds. A switch away from a
//! fiber moves the pointer out of the thread's context, with the rest of
//! the fiber's stack state, so no thread-local points into a suspended
//! stack; a `Coroutine` is `!Send`, so a fiber is resumed only on its own
//! thread. `suspend` is never called while the thread is panicking (its
//! callers check), so a stack is never switched during an unwind. A
//! pooled stack belongs to no fiber (its coroutine is done), so its pages
//! may be dropped (`release_pages`).

use std::cell::RefCell;
use std::marker::PhantomData;

use corosensei::stack::{DefaultStack, Stack};
use corosensei::{Coroutine, CoroutineResult, Yielder};

use super::{Outcome, Resume, Suspend};
use crate::thread_context;

/// The `Yielder` of the fibers here.
type Back = Yielder<Resume, Suspend>;

/// Bytes at the bottom of a fiber's mapping counted as its guard: the
/// guard page (4 KiB on Linux x86_64, 16 KiB on Apple silicon) and room
/// above it that R10 does not count as usable.
pub(super) const GUARD: usize = 64 * 1024;

/// A closure running on a stack of its own (see the module docs of
/// `fiber`).
pub(crate) struct Fiber<R> {
    coroutine: Coroutine<Resume, Suspend, R, DefaultStack>,
    /// The lowest address of its stack that may be used (above the guard
    /// page).
    limit: usize,
    /// Its stack's size, in bytes.
    size: usize,
    /// Not `Send`: resumed on its own thread only.
    _thread: PhantomData<*const ()>,
}

impl<R> std::fmt::Debug for Fiber<R> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Fiber")
            .field("started", &self.coroutine.started())
            .field("done", &self.coroutine.done())
            .finish_non_exhaustive()
    }
}

impl<R: 'static> Fiber<R> {
    /// A fiber that runs `body` on a stack of `size` bytes from `pool`
    /// when first resumed (with what that resume hands it).
    ///
    /// # Panics
    ///
    /// When no stack can be mapped (out of memory or address space).
    pub(crate) fn new(
        pool: &StackPool,
        size: usize,
        body: impl FnOnce(Resume) -> R + 'static,
    ) -> Self {
        let stack = pool.take(size);
        // corosensei's limit is the bottom of the mapping, guard page
        // included; the guard is one page (at most `GUARD` bytes here).
        let limit = stack.limit().get() + GUARD;
        let coroutine = Coroutine::with_stack(stack, move |back: &Back, first: Resume| {
            /// Clears the pointer when the closure returns or unwinds.
            struct Leave;
            impl Drop for Leave {
                fn drop(&mut self) {
                    thread_context::with(|cx| cx.stack.fiber.set(std::ptr::null()));
                }
            }
            let back: *const Back = back;
            thread_context::with(|cx| cx.stack.fiber.set(back.cast()));
            let _leave = Leave;
            body(first)
        });
        #[cfg(unix)]
        super::overflow::install();
        Fiber {
            coroutine,
            limit,
            size,
            _thread: PhantomData,
        }
    }

    /// Runs the fiber until it suspends itself or its closure returns; a
    /// panic in it unwinds out of this call. The caller makes the fiber's
    /// stack state the running one first (`context/fibers.rs`).
    pub(crate) fn resume(&mut self, input: Resume) -> Outcome<R> {
        #[cfg(unix)]
        let resumed =
            super::overflow::running(self.limit, self.size, || self.coroutine.resume(input));
        #[cfg(not(unix))]
        let resumed = self.coroutine.resume(input);
        match resumed {
            CoroutineResult::Yield(why) => Outcome::Suspended(why),
            CoroutineResult::Return(value) => Outcome::Finished(value),
        }
    }

    /// The lowest address its stack may use (R10's bound on a fiber).
    pub(crate) fn stack_limit(&self) -> usize {
        self.limit
    }

    /// Gives a finished fiber's stack back to `pool`. A fiber dropped
    /// unfinished is unwound by corosensei first.
    pub(crate) fn recycle(self, pool: &StackPool) {
        if self.coroutine.done() {
            pool.give(self.coroutine.into_stack());
        }
    }
}

/// Suspends the running fiber (see `fiber::suspend`).
pub(super) fn suspend(why: Suspend) -> Resume {
    debug_assert!(
        !std::thread::panicking(),
        "nestloop: internal error: a stack switch while unwinding"
    );
    let back = thread_context::with(|cx| cx.stack.fiber.get());
    assert!(
        !back.is_null(),
        "nestloop: internal error: suspend on the thread's own stack"
    );
    // SAFETY: a non-null pointer in the running stack's context is the
    // running fiber's `Yielder`, alive at the base of this very stack while
    // its closure runs (see the invariant); the reference is used only for
    // this call, on this thread.
    let back = unsafe { &*back.cast::<Back>() };
    back.suspend(why)
}

/// Stacks kept for the thread's next fibers (at most `fiber::POOL_CAP`).
#[derive(Default)]
pub(crate) struct StackPool(RefCell<Vec<DefaultStack>>);

impl std::fmt::Debug for StackPool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StackPool")
            .field("stacks", &self.0.borrow().len())
            .finish()
    }
}

impl StackPool {
    /// A stack of at least `size` usable bytes: a pooled one of that size,
    /// or a new mapping.
    fn take(&self, size: usize) -> DefaultStack {
        let mut stacks = self.0.borrow_mut();
        let fits = |s: &DefaultStack| {
            let extra = usable(s).checked_sub(size);
            extra.is_some_and(|extra| extra < super::MIN_STACK_SIZE)
        };
        if let Some(at) = stacks.iter().rposition(fits) {
            return stacks.swap_remove(at);
        }
        drop(stacks);
        DefaultStack::new(size).unwrap_or_else(|error| {
            panic!(
                "nestloop: could not map a stack of {} KiB for a fiber ({error}); lower \
                 Executor::builder().fiber_stack_size, or turn fibers off with \
                 Executor::builder().fibers(false)",
                size / 1024
            )
        })
    }

    /// Keeps `stack` for reuse, or unmaps it when the pool is full. Past
    /// the first `fiber::POOL_WARM` pooled stacks, the pages the fiber
    /// touched are handed back to the OS first: a burst of waiting calls
    /// leaves address space behind, not memory.
    fn give(&self, stack: DefaultStack) {
        let mut stacks = self.0.borrow_mut();
        if stacks.len() < super::POOL_CAP {
            if stacks.len() >= super::POOL_WARM {
                release_pages(&stack);
            }
            stacks.push(stack);
        }
    }
}

/// Hands the pages of `stack` back to the OS (they read as zeros when
/// touched again); nothing where that is not done (not Unix).
fn release_pages(stack: &DefaultStack) {
    #[cfg(unix)]
    {
        let limit = stack.limit().get();
        // SAFETY: `[limit, base)` is the stack's own mapping (guard page
        // included), private and anonymous, and no fiber runs on it: a
        // stack is pooled only once its coroutine is done, so nothing
        // refers to what it holds. `MADV_DONTNEED` only drops its pages.
        let result = unsafe {
            libc::madvise(
                limit as *mut libc::c_void,
                stack.base().get() - limit,
                libc::MADV_DONTNEED,
            )
        };
        debug_assert_eq!(result, 0, "nestloop: internal error: madvise failed");
    }
    #[cfg(not(unix))]
    let _ = stack;
}

/// The usable bytes of `stack`.
fn usable(stack: &DefaultStack) -> usize {
    stack.base().get() - stack.limit().get()
}

#[cfg(all(test, unix))]
mod tests {
    use super::*;

    /// A stack given back while `POOL_WARM` others are pooled loses its
    /// pages (they read as zeros again); the warm ones keep theirs.
    #[test]
    fn pooled_stacks_past_the_warm_ones_hand_their_pages_back() {
        const SIZE: usize = crate::fiber::MIN_STACK_SIZE;
        let pool = StackPool::default();
        let stacks: Vec<DefaultStack> = (0..=crate::fiber::POOL_WARM)
            .map(|_| pool.take(SIZE))
            .collect();
        // The byte just below each stack's base, as a fiber's first frame
        // would touch it.
        let top = |s: &DefaultStack| (s.base().get() - 1) as *mut u8;
        for stack in &stacks {
            // SAFETY: the stack's own mapping, readable and writable below
            // its base, and no fiber runs on it.
            unsafe { top(stack).write(0xAB) };
        }
        let tops: Vec<*mut u8> = stacks.iter().map(top).collect();
        for stack in stacks {
            pool.give(stack);
        }
        // SAFETY: as above: the pool keeps the mappings, and nothing runs
        // on them.
        let bytes: Vec<u8> = tops.iter().map(|&t| unsafe { t.read() }).collect();
        let mut expected = vec![0xAB; crate::fiber::POOL_WARM];
        expected.push(0);
        assert_eq!(bytes, expected);
    }
}
