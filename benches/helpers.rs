//! Synchronous helpers that wait (R12): a `block_on` inside a task, with
//! fibers on (the call suspends its task's stack) and off (the call nests a
//! loop on the caller's stack), against the same work awaited directly.
//! Prints three tables:
//!
//! 1. the server scenario: connections arriving at a fixed interval, each
//!    handler waiting 20-50 ms in a helper or awaiting it directly; client
//!    latency p50 / p99 and the deepest `depth()` seen;
//! 2. a blocked-and-resumed call: a helper waiting for a sibling task, per
//!    call;
//! 3. resident memory per waiting call, 10,000 helpers waiting at once.
//!
//! ```sh
//! cargo bench -p nestloop-benches --bench helpers
//! ```

use std::cell::{Cell, RefCell};
use std::rc::Rc;
use std::time::{Duration, Instant};

use nestloop::Executor;

/// How the handler waits.
#[derive(Clone, Copy, PartialEq)]
enum Mode {
    /// `block_on` in a synchronous helper, on an executor with fibers.
    HelperFibers,
    /// `block_on` in a synchronous helper, nested loops (fibers off).
    HelperNested,
    /// `.await`, no helper.
    Direct,
}

impl Mode {
    fn name(self) -> &'static str {
        match self {
            Mode::HelperFibers => "helper, fibers",
            Mode::HelperNested => "helper, nested loops",
            Mode::Direct => "awaited directly",
        }
    }

    fn executor(self) -> Executor {
        Executor::builder()
            .fibers(self == Mode::HelperFibers)
            .build()
    }
}

/// The synchronous helper: waits `d` in a nested `block_on`.
fn helper(d: Duration) {
    nestloop::block_on(nestloop::time::sleep(d));
}

/// `n` connections arriving `every` apart; returns (p50, p99, deepest
/// depth), or the panic message.
fn server(mode: Mode, n: usize, every: Duration) -> Result<(Duration, Duration, usize), String> {
    let run = move || {
        let ex = mode.executor();
        let deepest = Rc::new(Cell::new(0));
        let latencies = Rc::new(RefCell::new(Vec::with_capacity(n)));
        ex.block_on(async {
            let start = Instant::now();
            let mut handlers = Vec::with_capacity(n);
            for i in 0..n {
                let arrival = start + every * i as u32;
                nestloop::time::sleep_until(arrival).await;
                let (deepest, latencies) = (deepest.clone(), latencies.clone());
                handlers.push(nestloop::spawn(async move {
                    // 20-50 ms of work, spread over the connections.
                    let work = Duration::from_millis(20 + (i as u64 * 7919) % 31);
                    if mode == Mode::Direct {
                        nestloop::time::sleep(work).await;
                    } else {
                        helper(work);
                    }
                    deepest.set(deepest.get().max(nestloop::depth()));
                    latencies
                        .borrow_mut()
                        .push(arrival.elapsed().saturating_sub(work));
                }));
            }
            for h in handlers {
                if let Err(e) = h.await {
                    return Err(e.to_string());
                }
            }
            Ok(())
        })?;
        let mut l = latencies.take();
        l.sort();
        let at = |q: f64| l[((l.len() - 1) as f64 * q) as usize];
        Ok((at(0.5), at(0.99), deepest.get()))
    };
    // An 8 MiB thread, as a server's main thread often has.
    std::thread::Builder::new()
        .stack_size(8 << 20)
        .spawn(run)
        .unwrap()
        .join()
        .unwrap_or_else(|p| Err(format!("{:?}", p.downcast_ref::<String>())))
}

/// Per call: a helper that waits for a sibling task to send it a value.
fn blocked_and_resumed(mode: Mode, calls: usize) -> Duration {
    let ex = mode.executor();
    ex.block_on(async {
        let (tx, rx) = async_channel::bounded::<usize>(1);
        let sibling = nestloop::spawn(async move {
            for i in 0..calls {
                tx.send(i).await.unwrap();
            }
        });
        let caller = nestloop::spawn(async move {
            let start = Instant::now();
            for _ in 0..calls {
                if mode == Mode::Direct {
                    rx.recv().await.unwrap();
                } else {
                    nestloop::block_on(rx.recv()).unwrap();
                }
            }
            start.elapsed()
        });
        sibling.await.unwrap();
        caller.await.unwrap() / calls as u32
    })
}

/// Resident memory (bytes) of the process.
fn resident() -> usize {
    let statm = std::fs::read_to_string("/proc/self/statm").unwrap_or_default();
    let pages: usize = statm
        .split_whitespace()
        .nth(1)
        .and_then(|p| p.parse().ok())
        .unwrap_or(0);
    pages * 4096
}

/// Resident bytes per call, with `n` helpers waiting at once on a 2 MiB
/// thread (the memory of the tasks themselves included).
fn memory_per_waiting_call(mode: Mode, n: usize) -> Result<usize, String> {
    std::thread::Builder::new()
        .stack_size(2 << 20)
        .spawn(move || {
            let ex = mode.executor();
            ex.block_on(async {
                let (tx, rx) = async_channel::unbounded::<()>();
                let before = resident();
                let handles: Vec<_> = (0..n)
                    .map(|_| {
                        let rx = rx.clone();
                        nestloop::spawn(async move {
                            if mode == Mode::Direct {
                                let _ = rx.recv().await;
                            } else {
                                let _ = nestloop::block_on(rx.recv());
                            }
                        })
                    })
                    .collect();
                nestloop::time::sleep(Duration::from_millis(20)).await;
                let during = resident();
                drop(tx);
                for h in handles {
                    h.await.map_err(|e| e.to_string())?;
                }
                Ok(during.saturating_sub(before) / n)
            })
        })
        .unwrap()
        .join()
        .unwrap_or_else(|p| Err(format!("{:?}", p.downcast_ref::<String>())))
}

fn ms(d: Duration) -> String {
    format!("{:.1} ms", d.as_secs_f64() * 1e3)
}

fn main() {
    let modes = [Mode::HelperFibers, Mode::HelperNested, Mode::Direct];
    println!("| connections, arrivals | mode | p50 | p99 | deepest depth() |");
    println!("|---|---|---|---|---|");
    for (n, every) in [(200, 100), (200, 5000), (2000, 100)] {
        let every = Duration::from_micros(every);
        for mode in modes {
            let row = match server(mode, n, every) {
                Ok((p50, p99, depth)) => format!("{} | {} | {depth}", ms(p50), ms(p99)),
                Err(e) => format!("panicked: {} | | ", e.chars().take(60).collect::<String>()),
            };
            println!(
                "| {n}, {} µs apart | {} | {row} |",
                every.as_micros(),
                mode.name()
            );
        }
    }
    println!();
    println!("| a call waiting for a sibling task | per call |");
    println!("|---|---|");
    for mode in modes {
        let best = (0..5)
            .map(|_| blocked_and_resumed(mode, 20_000))
            .min()
            .unwrap();
        println!("| {} | {:.1} ns |", mode.name(), best.as_secs_f64() * 1e9);
    }
    println!();
    println!("| 10,000 calls waiting at once, 2 MiB thread | resident per call |");
    println!("|---|---|");
    for mode in modes {
        let row = match memory_per_waiting_call(mode, 10_000) {
            Ok(bytes) => format!("{:.1} KiB", bytes as f64 / 1024.0),
            Err(e) => format!("panicked: {}", e.chars().take(60).collect::<String>()),
        };
        println!("| {} | {row} |", mode.name());
    }
}
