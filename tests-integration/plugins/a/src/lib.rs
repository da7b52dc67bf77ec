//! A plugin: a shared object with a copy of nestloop of its own, used by
//! tests-integration's `copies` test through these C functions. plugin-b
//! is this same source, built as another shared object; plugin-c too, with
//! another feature of nestloop (a different build).
#![allow(clippy::missing_safety_doc)]

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use nestloop::JoinHandle;

/// Spawns, with this copy's free `spawn`, a task that sleeps 1 ms `count`
/// times, adding one to `*ticks` after each, and then returns `value`.
/// `ticks` must outlive the task.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn plugin_spawn(
    ticks: *const AtomicUsize,
    count: u32,
    value: u32,
) -> *mut JoinHandle<u32> {
    // SAFETY: the caller keeps it alive.
    let ticks = unsafe { &*ticks };
    let handle = nestloop::spawn(async move {
        for _ in 0..count {
            nestloop::time::sleep(Duration::from_millis(1)).await;
            ticks.fetch_add(1, Ordering::SeqCst);
        }
        value
    });
    Box::into_raw(Box::new(handle))
}

/// Waits, with this copy's `block_on`, for a handle `plugin_spawn` of a
/// copy of the same build made.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn plugin_join(handle: *mut JoinHandle<u32>) -> u32 {
    // SAFETY: made by `plugin_spawn`, given back once.
    let handle = unsafe { Box::from_raw(handle) };
    nestloop::block_on(*handle).unwrap()
}

/// Sleeps `ms` milliseconds in this copy's `block_on`: the thread's loop
/// runs meanwhile. Returns 0, or the length of the panic message written
/// to `message` (at most `capacity` bytes) if the call panicked.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn plugin_sleep(ms: u64, message: *mut u8, capacity: usize) -> usize {
    let slept = std::panic::catch_unwind(|| {
        nestloop::block_on(nestloop::time::sleep(Duration::from_millis(ms)));
    });
    let Err(payload) = slept else { return 0 };
    let text = payload
        .downcast_ref::<String>()
        .map(String::as_str)
        .or_else(|| payload.downcast_ref::<&str>().copied())
        .unwrap_or("<non-string panic>");
    let len = text.len().min(capacity);
    // SAFETY: the caller's buffer holds `capacity` bytes.
    unsafe { std::ptr::copy_nonoverlapping(text.as_ptr(), message, len) };
    len
}

/// The nesting depth of this copy's loops on this thread.
#[unsafe(no_mangle)]
pub extern "C" fn plugin_depth() -> usize {
    nestloop::depth()
}
