//! Loopback TCP echo on one thread: nestloop driving async-io's reactor
//! and its own tokio current_thread runtime, at the top level and in
//! nested `block_on` calls, against the executors it stands in for.
//!
//! Each row is 1,000 round trips on 127.0.0.1: the client writes 8 bytes
//! and waits for their echo before it writes again (one request in
//! flight). The echo server is a task on the same executor, so the whole
//! exchange runs on the benchmark's thread. The listener and the
//! connection are set up once per row, outside the timed part; an
//! iteration times only the round trips. Throughput is per round trip.
//!
//! | row | executor | sockets | where the client runs |
//! |---|---|---|---|
//! | `nestloop async-io` | `Executor::new()` (feature `async-io`) | async-net | the `block_on` future |
//! | `nestloop async-io depth 2` | the same | async-net | two nested `block_on` calls down (see `at_depth_2`) |
//! | `smol` | `async_io::block_on(LocalExecutor::run(..))` | async-net | the `run` future |
//! | `nestloop tokio` | `Executor::builder().tokio_current_thread()` | `tokio::net` | the `block_on` future |
//! | `nestloop tokio depth 2` | the same | `tokio::net` | two nested `block_on` calls down |
//! | `tokio current_thread` | `Builder::new_current_thread().enable_all()` | `tokio::net` | the `Runtime::block_on` future |
//!
//! The nestloop rows compare with the row of the reactor they drive:
//! `nestloop async-io` with `smol`, `nestloop tokio` with
//! `tokio current_thread`.
//!
//! No row hops through another thread for its I/O. The async-io rows and
//! smol have async-io's helper thread ("async-io"), started by the first
//! `async_io::block_on`: it wakes every few milliseconds and now and then
//! takes a reactor turn (under 2% of them). The tokio rows start no thread
//! (a loop that waits in a tokio runtime does not run inside
//! `async_io::block_on`).
//!
//! ```sh
//! cargo bench --bench io --features async-io,tokio
//! ```

use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use criterion::{Criterion, SamplingMode, Throughput, criterion_group, criterion_main};
use futures_lite::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

/// Round trips per iteration.
const ROUND_TRIPS: u64 = 1_000;

/// The nesting depth of the client in the `depth 2` rows: the top-level
/// `block_on` is depth 1, and two nested calls below it make 3.
const DEPTH_2_CLIENT_DEPTH: usize = 3;

/// The echo server on async-net: serves one connection until it closes.
async fn async_net_echo(listener: async_net::TcpListener) {
    let (mut socket, _) = listener.accept().await.unwrap();
    socket.set_nodelay(true).unwrap();
    let mut buf = [0; 64];
    loop {
        let n = socket.read(&mut buf).await.unwrap();
        if n == 0 {
            return;
        }
        socket.write_all(&buf[..n]).await.unwrap();
    }
}

/// Binds a listener, hands the echo server for it to `spawn`, and returns
/// the client's connection.
async fn async_net_connect(
    spawn: impl FnOnce(Pin<Box<dyn Future<Output = ()>>>),
) -> async_net::TcpStream {
    let listener = async_net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    spawn(Box::pin(async_net_echo(listener)));
    let stream = async_net::TcpStream::connect(addr).await.unwrap();
    stream.set_nodelay(true).unwrap();
    stream
}

/// The client on async-net: `ROUND_TRIPS` round trips of 8 bytes.
async fn async_net_round_trips(stream: &mut async_net::TcpStream) {
    let mut echo = [0; 8];
    for i in 0..ROUND_TRIPS {
        let message = i.to_le_bytes();
        stream.write_all(&message).await.unwrap();
        stream.read_exact(&mut echo).await.unwrap();
        assert_eq!(echo, message);
    }
}

/// The echo server on `tokio::net`: serves one connection until it closes.
async fn tokio_echo(listener: tokio::net::TcpListener) {
    let (mut socket, _) = listener.accept().await.unwrap();
    socket.set_nodelay(true).unwrap();
    let mut buf = [0; 64];
    loop {
        let n = socket.read(&mut buf).await.unwrap();
        if n == 0 {
            return;
        }
        socket.write_all(&buf[..n]).await.unwrap();
    }
}

/// Binds a listener, hands the echo server for it to `spawn`, and returns
/// the client's connection.
async fn tokio_connect(
    spawn: impl FnOnce(Pin<Box<dyn Future<Output = ()> + Send>>),
) -> tokio::net::TcpStream {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    spawn(Box::pin(tokio_echo(listener)));
    let stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    stream.set_nodelay(true).unwrap();
    stream
}

/// The client on `tokio::net`: `ROUND_TRIPS` round trips of 8 bytes.
async fn tokio_round_trips(stream: &mut tokio::net::TcpStream) {
    let mut echo = [0; 8];
    for i in 0..ROUND_TRIPS {
        let message = i.to_le_bytes();
        stream.write_all(&message).await.unwrap();
        stream.read_exact(&mut echo).await.unwrap();
        assert_eq!(echo, message);
    }
}

/// Runs `client` two nested `block_on` calls below a top-level one, as a
/// scripting host's callbacks would:
///
/// ```text
/// ex.block_on(task)                     depth 1
///   task -> outer_callback (sync)
///     nestloop::block_on(..)            depth 2
///       inner_callback (sync)
///         nestloop::block_on(client)    depth 3 = DEPTH_2_CLIENT_DEPTH
/// ```
///
/// The echo server, a task of `ex`, is served by the innermost loop.
fn at_depth_2<T: 'static>(ex: &nestloop::Executor, client: impl Future<Output = T> + 'static) -> T {
    fn outer_callback<T>(client: impl Future<Output = T>) -> T {
        nestloop::block_on(async { inner_callback(client) })
    }
    fn inner_callback<T>(client: impl Future<Output = T>) -> T {
        nestloop::block_on(async {
            debug_assert_eq!(nestloop::depth(), DEPTH_2_CLIENT_DEPTH);
            client.await
        })
    }
    ex.block_on(ex.spawn(async { outer_callback(client) }))
        .unwrap()
}

/// The iteration of a nestloop row: `round_trips` on `connection`, which
/// it takes and gives back, in the `block_on` future or (`nested`) at depth
/// 2.
fn nestloop_row<S: 'static, F: Future<Output = S> + 'static>(
    ex: &nestloop::Executor,
    nested: bool,
    connection: S,
    round_trips: impl Fn(S) -> F,
) -> impl FnMut() {
    if nested {
        let depth = at_depth_2(ex, async { nestloop::depth() });
        assert_eq!(depth, DEPTH_2_CLIENT_DEPTH);
    }
    let ex = ex.clone();
    let mut connection = Some(connection);
    move || {
        let trips = round_trips(connection.take().unwrap());
        connection = Some(if nested {
            at_depth_2(&ex, trips)
        } else {
            ex.block_on(trips)
        });
    }
}

fn io(c: &mut Criterion) {
    let mut group =
        c.benchmark_group("1k loopback TCP echo round trips, one thread (per round trip)");
    group.throughput(Throughput::Elements(ROUND_TRIPS));
    // An iteration takes tens of milliseconds: flat sampling (the same
    // iteration count in every sample) keeps a row within its 3 s.
    group.sampling_mode(SamplingMode::Flat);
    group.sample_size(20);
    group.warm_up_time(Duration::from_secs(1));
    group.measurement_time(Duration::from_secs(3));

    // Each row has its own connection, made before its `bench_function`
    // (which calls its closure for every sample).
    {
        let ex = nestloop::Executor::new();
        let connect = || ex.block_on(async_net_connect(|server| drop(nestloop::spawn(server))));
        let round_trips = |mut client| async move {
            async_net_round_trips(&mut client).await;
            client
        };
        let mut run = nestloop_row(&ex, false, connect(), round_trips);
        group.bench_function("nestloop async-io", |b| b.iter(&mut run));
        let mut run = nestloop_row(&ex, true, connect(), round_trips);
        group.bench_function("nestloop async-io depth 2", |b| b.iter(&mut run));
    }

    {
        let ex = async_executor::LocalExecutor::new();
        let mut stream = async_io::block_on(ex.run(async_net_connect(|server| {
            ex.spawn(server).detach();
        })));
        group.bench_function("smol", |b| {
            b.iter(|| async_io::block_on(ex.run(async_net_round_trips(&mut stream))))
        });
    }

    {
        let ex = nestloop::Executor::builder().tokio_current_thread().build();
        // The server is a nestloop task, as code that may nest must be.
        // Spawned with `tokio::spawn` instead, it would run inside the
        // runtime's `block_on` while the loop waits, so a round trip would
        // take one wait of the loop instead of two: a fifth fewer
        // instructions, a few percent less time.
        let connect = || ex.block_on(tokio_connect(|server| drop(nestloop::spawn(server))));
        let round_trips = |mut client| async move {
            tokio_round_trips(&mut client).await;
            client
        };
        let mut run = nestloop_row(&ex, false, connect(), round_trips);
        group.bench_function("nestloop tokio", |b| b.iter(&mut run));
        let mut run = nestloop_row(&ex, true, connect(), round_trips);
        group.bench_function("nestloop tokio depth 2", |b| b.iter(&mut run));
    }

    {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let mut stream = rt.block_on(tokio_connect(|server| {
            tokio::spawn(server);
        }));
        group.bench_function("tokio current_thread", |b| {
            b.iter(|| rt.block_on(tokio_round_trips(&mut stream)))
        });
    }

    group.finish();
}

criterion_group!(benches, io);
criterion_main!(benches);
