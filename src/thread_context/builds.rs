#![allow(unsafe_code)]
//! The process's list of nestloop builds: one entry per build (not per
//! copy) loaded into the process, so a loop can tell that another build
//! has work waiting on its thread that only that build's loops run
//! ("stranded": copies of different builds share no state).
//!
//! The list is the one thing builds of different versions share, so its
//! layout is frozen: `#[repr(C)]`, a magic number and a layout version,
//! entries written once and published by an atomic count. A copy finds it
//! as it finds its hub (see `hub.rs`), through the environment variable
//! `NESTLOOP_BUILDS`, naming the process id and the list's address; the
//! first build to look creates it (leaked) and publishes it.
//!
//! Invariant: a list pointer is taken from the environment only from a
//! value with this process's id, which only `publish` of a nestloop copy in
//! this process writes, with the address of a leaked `Builds`; its magic
//! and version are checked before use. An entry below `count` was written
//! completely before `count` was raised past it (`Release`, read with
//! `Acquire`) and is never written again; its function pointer is that
//! build's, valid while that copy stays loaded (copies are not unloaded,
//! see the module docs of `thread_context`).

use std::sync::OnceLock;
use std::sync::atomic::{AtomicUsize, Ordering};

/// Tells a list of this layout.
#[cfg(not(any(miri, nestloop_loom)))]
const MAGIC: u64 = 0x6e65_7374_6c6f_6f70; // "nestloop"
/// The layout's version: raise it, and the magic with it, if it changes.
#[cfg(not(any(miri, nestloop_loom)))]
const LAYOUT: u64 = 1;
/// Builds the list holds at most (more are not listed).
const CAPACITY: usize = 16;

/// One build in the list.
#[repr(C)]
struct Entry {
    /// The build's fingerprint (see `hub.rs`).
    fingerprint: u64,
    /// The build's crate version, nul-padded.
    version: [u8; 16],
    /// How many of its tasks are ready and timers pending on the calling
    /// thread (0 where it has no state there).
    waiting_here: extern "C" fn() -> usize,
}

/// The list (see the module docs).
#[repr(C)]
struct Builds {
    /// `MAGIC`.
    magic: u64,
    /// `LAYOUT`.
    layout: u64,
    /// Entries written (`Release` after each is complete).
    count: AtomicUsize,
    /// A writer claims an entry here before writing it.
    claimed: AtomicUsize,
    /// The entries.
    entries: [std::mem::MaybeUninit<Entry>; CAPACITY],
}

/// The list, and this build's place in it.
static LIST: OnceLock<Option<(&'static Builds, usize)>> = OnceLock::new();

/// This build's count of its waiting work on the calling thread, set by
/// the `context` layer when it makes a thread's state.
static WAITING_HERE: OnceLock<fn() -> usize> = OnceLock::new();

/// Lists this build (once per copy; copies of a build share its entry),
/// with `waiting_here` as its count of waiting work on a thread.
pub(crate) fn register(fingerprint: u64, waiting_here: fn() -> usize) {
    let _ = WAITING_HERE.set(waiting_here);
    LIST.get_or_init(|| {
        let list = find_or_create()?;
        let count = list.count.load(Ordering::Acquire);
        let listed = (0..count).find(|&i| {
            // SAFETY: below `count`: written (see the module docs).
            unsafe { list.entries[i].assume_init_ref() }.fingerprint == fingerprint
        });
        if let Some(index) = listed {
            return Some((list, index));
        }
        let index = list.claimed.fetch_add(1, Ordering::AcqRel);
        if index >= CAPACITY {
            return None;
        }
        let mut version = [0; 16];
        let own = env!("CARGO_PKG_VERSION").as_bytes();
        version[..own.len().min(16)].copy_from_slice(&own[..own.len().min(16)]);
        let entry = Entry {
            fingerprint,
            version,
            waiting_here: waiting_here_c,
        };
        // SAFETY: the entry at `index` was claimed by this call alone, and
        // no reader looks at it before `count` passes it.
        unsafe {
            let slot = list.entries.as_ptr().add(index).cast_mut();
            (*slot).write(entry);
        }
        // Entries are published in order: wait for the ones claimed before.
        while list
            .count
            .compare_exchange_weak(index, index + 1, Ordering::AcqRel, Ordering::Acquire)
            .is_err()
        {
            std::hint::spin_loop();
        }
        Some((list, index))
    });
}

/// `WAITING_HERE` for the other builds, through the C ABI.
extern "C" fn waiting_here_c() -> usize {
    WAITING_HERE.get().map_or(0, |f| f())
}

/// Another build's work waiting on this thread: its version and how many
/// tasks and timers wait, for the first build that has any.
pub(crate) fn other_builds_waiting_here() -> Option<(String, usize)> {
    let (list, own) = (*LIST.get()?)?;
    let count = list.count.load(Ordering::Acquire);
    if count < 2 {
        return None; // the common case: this build alone
    }
    (0..count).filter(|&i| i != own).find_map(|i| {
        // SAFETY: below `count`: written and never written again (see the
        // module docs).
        let entry = unsafe { list.entries[i].assume_init_ref() };
        let waiting = (entry.waiting_here)();
        let end = entry.version.iter().position(|&b| b == 0).unwrap_or(16);
        let version = String::from_utf8_lossy(&entry.version[..end]).into_owned();
        (waiting != 0).then_some((version, waiting))
    })
}

/// Under Miri and loom: no list (one build).
#[cfg(any(miri, nestloop_loom))]
fn find_or_create() -> Option<&'static Builds> {
    None
}

/// The process's list, from the environment, or a new one published there.
#[cfg(not(any(miri, nestloop_loom)))]
fn find_or_create() -> Option<&'static Builds> {
    const NAME: &str = "NESTLOOP_BUILDS";
    if let Some(list) = published(NAME) {
        return Some(list);
    }
    let list: &'static Builds = Box::leak(Box::new(Builds {
        magic: MAGIC,
        layout: LAYOUT,
        count: AtomicUsize::new(0),
        claimed: AtomicUsize::new(0),
        entries: [const { std::mem::MaybeUninit::uninit() }; CAPACITY],
    }));
    super::hub::publish_address(NAME, (list as *const Builds).expose_provenance());
    Some(published(NAME).unwrap_or(list))
}

/// The list the variable `name` names for this process, if it does.
#[cfg(not(any(miri, nestloop_loom)))]
fn published(name: &str) -> Option<&'static Builds> {
    let address = super::hub::published_address(name)?;
    let list = std::ptr::with_exposed_provenance::<Builds>(address);
    // SAFETY: an address published for this process by a nestloop copy is
    // that of a leaked list (see the module docs), which begins with these
    // two words in every layout; they are read before anything else.
    let (magic, layout) = unsafe {
        (
            std::ptr::addr_of!((*list).magic).read(),
            std::ptr::addr_of!((*list).layout).read(),
        )
    };
    // SAFETY: as above, and of this layout.
    (magic == MAGIC && layout == LAYOUT).then(|| unsafe { &*list })
}
