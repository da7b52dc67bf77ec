#![allow(unsafe_code)]
//! The process's hub: what the copies of one nestloop build loaded into a
//! process share. It hands out the per-thread context of the copy that
//! created it, and keeps the process-wide counters (thread keys, executor
//! and task ids), so every copy sees one state per thread and ids that are
//! unique in the process.
//!
//! A copy finds the hub through an environment variable (the environment
//! is the one registry every copy of a process sees, whatever each links
//! statically): `NESTLOOP_HUB_<fingerprint>`, whose value is the process
//! id and the hub's address. The fingerprint tells builds apart (crate
//! version, cargo's build hash as it shows in `TypeId`, debug assertions,
//! layouts), so copies of different builds never share a hub; the process
//! id makes a variable inherited from a parent process count for nothing.
//! The first copy to look creates the hub and sets the variable; the rest
//! read it. Two copies making their first lookup at the same instant on
//! two threads could each keep a hub of their own; plugins and notebook
//! cells load one after another.
//!
//! Under Miri and loom there is no environment to share: each copy (the
//! only one) keeps a hub of its own.
//!
//! Invariant: a hub is created by `create` and leaked, so it lives for the
//! rest of the process; an address is taken from the environment only
//! from a variable named with this build's fingerprint whose process id is
//! this process's, which only `publish` of a copy of this build in this
//! process writes, with the address of such a leaked hub. Such a hub has
//! this build's layout and its `context` is a function of a copy of this
//! build. `HUB` keeps the pointer.

use std::any::TypeId;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};

use super::ThreadContext;

/// What the copies of a build share (see the module docs).
struct Hub {
    /// The creator's `own_base`: this thread's context, in the creator.
    context: fn() -> *const ThreadContext,
    /// Source of thread keys (`ThreadContext::key`).
    next_thread_key: AtomicU64,
    /// Source of executor ids.
    next_executor_id: AtomicU64,
    /// Source of task ids.
    next_task_id: AtomicU64,
}

/// This copy's hub, found or created on first use.
static HUB: OnceLock<&'static Hub> = OnceLock::new();

/// The hub.
#[inline]
fn hub() -> &'static Hub {
    HUB.get_or_init(find_or_create)
}

/// The calling thread's context shared by this build's copies: the hub
/// creator's (this copy's own when it created the hub).
pub(super) fn shared_context() -> Option<*const ThreadContext> {
    Some((hub().context)())
}

/// A fresh thread key (never 0).
pub(super) fn next_thread_key() -> u64 {
    hub().next_thread_key.fetch_add(1, Ordering::Relaxed)
}

/// A fresh executor id (never 0), unique in the process.
pub(crate) fn next_executor_id() -> u64 {
    hub().next_executor_id.fetch_add(1, Ordering::Relaxed)
}

/// The first of `count` fresh task ids (never 0), unique in the process.
#[cold]
pub(super) fn take_task_ids(count: u64) -> u64 {
    hub().next_task_id.fetch_add(count, Ordering::Relaxed)
}

/// A new hub, leaked, handing out this copy's contexts.
fn create() -> &'static Hub {
    Box::leak(Box::new(Hub {
        context: super::own_base,
        next_thread_key: AtomicU64::new(1),
        next_executor_id: AtomicU64::new(1),
        next_task_id: AtomicU64::new(1),
    }))
}

/// Under Miri and loom: a hub of this copy's own.
#[cfg(any(miri, nestloop_loom))]
fn find_or_create() -> &'static Hub {
    create()
}

/// The hub of this build in this process, from the environment, or a new
/// one published there.
#[cfg(not(any(miri, nestloop_loom)))]
fn find_or_create() -> &'static Hub {
    let name = variable_name();
    if let Some(hub) = published(&name) {
        return hub;
    }
    let hub = create();
    publish(&name, hub);
    // Another copy may have published at the same time: the last value
    // written is the one every later lookup finds, so take it too.
    published(&name).unwrap_or(hub)
}

/// `NESTLOOP_HUB_<fingerprint>`.
#[cfg(not(any(miri, nestloop_loom)))]
fn variable_name() -> String {
    format!("NESTLOOP_HUB_{:016x}", fingerprint())
}

/// What tells builds apart: cargo's hash of the build (in the crate's
/// `TypeId`s: version, features, profile, compiler, dependencies), the
/// version and debug assertions again, and the layouts the copies share.
pub(super) fn fingerprint() -> u64 {
    static FINGERPRINT: OnceLock<u64> = OnceLock::new();
    *FINGERPRINT.get_or_init(compute_fingerprint)
}

/// See `fingerprint`.
fn compute_fingerprint() -> u64 {
    let facts = format!(
        "{}|{:?}|{:?}|{}|{}/{}|{}",
        env!("CARGO_PKG_VERSION"),
        TypeId::of::<Hub>(),
        TypeId::of::<ThreadContext>(),
        cfg!(debug_assertions),
        size_of::<ThreadContext>(),
        align_of::<ThreadContext>(),
        size_of::<Hub>(),
    );
    // FNV-1a: the same in every copy (std's hashers may be seeded).
    facts.bytes().fold(0xcbf2_9ce4_8422_2325, |hash, byte| {
        (hash ^ u64::from(byte)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

/// The hub the variable `name` names for this process, if it does.
#[cfg(not(any(miri, nestloop_loom)))]
fn published(name: &str) -> Option<&'static Hub> {
    let address = published_address(name)?;
    let hub = std::ptr::with_exposed_provenance::<Hub>(address);
    // SAFETY: a variable of this build's fingerprint and this process's id
    // was written by `publish` of a copy of this build in this process,
    // with the address of a hub leaked by `create` (see the module docs),
    // whose provenance `publish_address` exposed.
    (!hub.is_null()).then(|| unsafe { &*hub })
}

/// Writes the variable `name` naming `hub` for this process.
#[cfg(not(any(miri, nestloop_loom)))]
fn publish(name: &str, hub: &'static Hub) {
    publish_address(name, (hub as *const Hub).expose_provenance());
}

/// The address the variable `name` names for this process, if it does
/// (one inherited from the process that started this one names another
/// process's).
#[cfg(not(any(miri, nestloop_loom)))]
pub(super) fn published_address(name: &str) -> Option<usize> {
    let value = std::env::var(name).ok()?;
    let (pid, address) = value.split_once(':')?;
    if pid.parse::<u32>().ok()? != std::process::id() {
        return None;
    }
    usize::from_str_radix(address, 16).ok()
}

/// Writes the variable `name` naming `address` (exposed) for this
/// process.
#[cfg(not(any(miri, nestloop_loom)))]
pub(super) fn publish_address(name: &str, address: usize) {
    let value = format!("{}:{address:x}", std::process::id());
    // SAFETY: `set_var` requires that no other thread reads or writes the
    // environment meanwhile other than through `std::env` (whose lock this
    // call takes). This runs at most twice per process (the hub of a build,
    // the list of builds), at the first nestloop call of the first copy,
    // typically before the program starts threads of its own; it is the
    // documented cost of sharing one state between copies (see "Several
    // copies in one process" in the crate docs).
    unsafe { std::env::set_var(name, value) };
}
