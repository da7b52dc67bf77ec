//! Memory per spawned pending task, for futures of 0, 64 and 256 bytes, on
//! nestloop and its peers: bytes and allocations counted by a global
//! allocator (including the amortized growth of the executors' queues and
//! task lists). Prints a table.
//!
//! ```sh
//! cargo bench --bench memory
//! ```

use std::alloc::{GlobalAlloc, Layout, System};
use std::future::pending;
use std::hint::black_box;
use std::sync::atomic::{AtomicUsize, Ordering};

#[path = "common/peers.rs"]
mod peers;

use peers::{AsyncExecutor, LocalPool, Nestloop, Peer, TokioCurrentThread, TokioLocalSet};

/// Counts bytes and allocations made through it.
struct Counting;

static BYTES: AtomicUsize = AtomicUsize::new(0);
static ALLOCATIONS: AtomicUsize = AtomicUsize::new(0);

// SAFETY: forwards to the system allocator unchanged; only counts.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        BYTES.fetch_add(layout.size(), Ordering::Relaxed);
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        // SAFETY: same contract as ours.
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: same contract as ours.
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        BYTES.fetch_add(new_size.saturating_sub(layout.size()), Ordering::Relaxed);
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        // SAFETY: same contract as ours.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

const TASKS: usize = 10_000;

/// A pending future holding `N` bytes.
async fn holding<const N: usize>() {
    let payload = black_box([0u8; N]);
    pending::<()>().await;
    black_box(payload);
}

/// Bytes and allocations per task for spawning `TASKS` pending tasks of
/// `N`-byte futures (handles dropped: the tasks stay).
fn measure<P: Peer, const N: usize>() -> (f64, f64) {
    let peer = P::new();
    peer.block_on(async {
        // Warm up: let lazily created per-thread state exist first.
        drop(peer.spawn(holding::<N>()));
        let (bytes, allocations) = (
            BYTES.load(Ordering::Relaxed),
            ALLOCATIONS.load(Ordering::Relaxed),
        );
        for _ in 0..TASKS {
            drop(peer.spawn(holding::<N>()));
        }
        let bytes = BYTES.load(Ordering::Relaxed) - bytes;
        let allocations = ALLOCATIONS.load(Ordering::Relaxed) - allocations;
        (
            bytes as f64 / TASKS as f64,
            allocations as f64 / TASKS as f64,
        )
    })
}

fn row<P: Peer>() {
    let (b0, a0) = measure::<P, 0>();
    let (b64, a64) = measure::<P, 64>();
    let (b256, a256) = measure::<P, 256>();
    println!(
        "| {} | {b0:.0} B ({a0:.2}) | {b64:.0} B ({a64:.2}) | {b256:.0} B ({a256:.2}) |",
        P::name()
    );
}

fn main() {
    // `cargo bench` passes `--bench`; `cargo test --benches` would pass
    // nothing: run either way, it is quick.
    println!("bytes (allocations) per spawned pending task, {TASKS} tasks:");
    println!();
    println!("| executor | empty future | 64-byte future | 256-byte future |");
    println!("|---|---|---|---|");
    row::<Nestloop>();
    row::<TokioCurrentThread>();
    row::<TokioLocalSet>();
    row::<LocalPool>();
    row::<AsyncExecutor>();
}
