//! The cross-thread message workload of `peers.rs` again, with the
//! executors interleaved: round after round, each runs it once, in an order
//! that rotates. Two threads' pace on a shared machine drifts over minutes,
//! so criterion's one-executor-after-another groups can set one executor's
//! good minute against another's bad one; interleaved rounds compare them
//! under the same conditions. Prints a Markdown table of the median time
//! per message (`scripts/bench.sh` puts it in BENCHMARKS.md).

use std::time::Instant;

#[path = "common/peers.rs"]
mod peers;

use peers::{
    AsyncExecutor, LocalPool, Nestloop, Peer, TokioCurrentThread, TokioLocalSet, remote_messages,
};

/// Messages per run, as in `peers.rs`.
const MESSAGES: u64 = 100_000;
/// Runs per executor.
const ROUNDS: usize = 31;

/// One run on a fresh executor: nanoseconds per message.
fn run<P: Peer>() -> f64 {
    let peer = P::new();
    let start = Instant::now();
    let sum = remote_messages(&peer, MESSAGES);
    let elapsed = start.elapsed();
    assert_eq!(sum, MESSAGES * (MESSAGES - 1) / 2);
    elapsed.as_nanos() as f64 / MESSAGES as f64
}

/// An executor's name and its run.
type Contender = (&'static str, fn() -> f64);

fn median(mut samples: Vec<f64>) -> f64 {
    samples.sort_by(f64::total_cmp);
    samples[samples.len() / 2]
}

fn main() {
    let runs: [Contender; 5] = [
        (Nestloop::name(), run::<Nestloop>),
        (TokioCurrentThread::name(), run::<TokioCurrentThread>),
        (TokioLocalSet::name(), run::<TokioLocalSet>),
        (LocalPool::name(), run::<LocalPool>),
        (AsyncExecutor::name(), run::<AsyncExecutor>),
    ];
    let mut samples = vec![Vec::with_capacity(ROUNDS); runs.len()];
    for round in 0..ROUNDS {
        for i in 0..runs.len() {
            let which = (round + i) % runs.len();
            samples[which].push((runs[which].1)());
        }
    }
    let medians: Vec<f64> = samples.into_iter().map(median).collect();
    let best_peer = medians[1..].iter().copied().fold(f64::INFINITY, f64::min);
    println!("| executor | median per message | ratio to the best peer |");
    println!("|---|---|---|");
    for ((name, _), median) in runs.iter().zip(&medians) {
        println!("| {name} | {median:.1} ns | {:.2} |", median / best_peer);
    }
}
