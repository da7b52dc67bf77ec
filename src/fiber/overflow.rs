#![allow(unsafe_code)]
//! A message instead of a bare SIGSEGV when code overflows a fiber's stack
//! (R10: recursion through `block_on` ends in a clean panic before that;
//! plain recursion in user code hits the guard page below the stack).
//!
//! Each thread keeps the guard range of the fiber running on it (`GUARD`,
//! set around every resume, restored after it); a SIGSEGV/SIGBUS handler,
//! installed once when the first fiber is made, writes a `nestloop:`
//! message naming the stack size setting and aborts when the fault is in
//! that range, and otherwise puts the handler it replaced (std's, which
//! reports the thread's own stack overflows) back and returns, so the
//! fault repeats under it.
//!
//! Invariant: the handler touches only `GUARD` (a const thread-local
//! without a destructor, so readable in a signal handler on its thread),
//! `PREVIOUS` (written once, before the handler is installed) and
//! async-signal-safe functions (`write`, `sigaction`, `abort`). It runs
//! on the alternate signal stack std gives its threads (`SA_ONSTACK`), so
//! it does not need the overflowed one.

use std::cell::Cell;
use std::sync::Once;
use std::sync::atomic::{AtomicBool, Ordering};

/// Bytes below a fiber's guard where a fault still counts as its
/// overflow: what a large frame skips past the guard page.
const GUARD_SPAN: usize = 64 * 1024;

std::thread_local! {
    /// The guard range (start, end) of the fiber running on this thread,
    /// and its stack size; zeros on the thread's own stack.
    static GUARD: Cell<(usize, usize, usize)> = const { Cell::new((0, 0, 0)) };
}

/// The handlers replaced, for SIGSEGV and SIGBUS.
static mut PREVIOUS: [std::mem::MaybeUninit<libc::sigaction>; 2] = [
    std::mem::MaybeUninit::uninit(),
    std::mem::MaybeUninit::uninit(),
];
/// Whether `PREVIOUS` holds them.
static INSTALLED: AtomicBool = AtomicBool::new(false);
static INSTALL: Once = Once::new();

/// Installs the handler (once per process).
pub(super) fn install() {
    INSTALL.call_once(|| {
        for (at, signal) in [libc::SIGSEGV, libc::SIGBUS].into_iter().enumerate() {
            // SAFETY: a zeroed `sigaction` is a valid value to fill in;
            // `sigaction` is called with valid pointers; `PREVIOUS` is
            // written here, once, before any handler of ours can read it
            // (ours is installed by this very call), under `INSTALL`.
            unsafe {
                let mut action: libc::sigaction = std::mem::zeroed();
                let handler: extern "C" fn(libc::c_int, *mut libc::siginfo_t, *mut libc::c_void) =
                    handler;
                action.sa_sigaction = handler as *const () as usize;
                action.sa_flags = libc::SA_SIGINFO | libc::SA_ONSTACK;
                libc::sigemptyset(&mut action.sa_mask);
                let previous = &raw mut PREVIOUS[at];
                libc::sigaction(signal, &action, (*previous).as_mut_ptr());
            }
        }
        INSTALLED.store(true, Ordering::Release);
    });
}

/// Runs `f` with the fiber whose lowest usable address is `limit` (its
/// guard, `switch::GUARD` bytes, just below) and whose stack is `size`
/// bytes noted as the running one.
pub(super) fn running<R>(limit: usize, size: usize, f: impl FnOnce() -> R) -> R {
    struct Restore((usize, usize, usize));
    impl Drop for Restore {
        fn drop(&mut self) {
            let _ = GUARD.try_with(|g| g.set(self.0));
        }
    }
    let range = (
        limit.saturating_sub(super::switch::GUARD + GUARD_SPAN),
        limit,
        size,
    );
    let _restore = Restore(GUARD.with(|g| g.replace(range)));
    f()
}

/// The signal handler (see the module docs).
extern "C" fn handler(signal: libc::c_int, info: *mut libc::siginfo_t, _: *mut libc::c_void) {
    // SAFETY: the kernel passes a valid `siginfo_t` for SA_SIGINFO handlers.
    let addr = unsafe { (*info).si_addr() } as usize;
    let (start, end, size) = GUARD.try_with(Cell::get).unwrap_or((0, 0, 0));
    if start <= addr && addr < end && end != 0 {
        let mut message = *b"\nnestloop: a fiber's stack overflowed (its stack is ____ KiB: raise Executor::builder().fiber_stack_size, or move the deep recursion off the task); aborting\n";
        // The size, in KiB, into the four underscores (right-aligned).
        let mut kib = size / 1024;
        let at = message.iter().position(|&b| b == b'_').unwrap_or(0);
        for slot in message[at..at + 4].iter_mut().rev() {
            *slot = if kib == 0 {
                b' '
            } else {
                b'0' + (kib % 10) as u8
            };
            kib /= 10;
        }
        // SAFETY: `write` and `abort` are async-signal-safe; the buffer is
        // valid for its length.
        unsafe {
            libc::write(2, message.as_ptr().cast(), message.len());
            libc::abort();
        }
    }
    // Not a fiber's overflow: the handler this one replaced takes the
    // fault when it repeats on return.
    if INSTALLED.load(Ordering::Acquire) {
        let at = usize::from(signal == libc::SIGBUS);
        // SAFETY: `PREVIOUS` was written before `INSTALLED` was set and is
        // never written again; `sigaction` is async-signal-safe.
        unsafe {
            let previous = &raw const PREVIOUS[at];
            libc::sigaction(signal, (*previous).as_ptr(), std::ptr::null_mut());
        }
    }
}
