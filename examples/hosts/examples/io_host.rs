//! A host program, as a scripting engine or a REPL is one: the script calls
//! synchronous host callbacks, and they do real network I/O (an HTTP/1.1
//! GET to a small server on 127.0.0.1) in nested `nestloop::block_on`
//! calls, at depth 2 and 3, while a background task keeps ticking. All on
//! the main thread: with feature `async-io` the loops drive async-io's
//! reactor (async-net sockets); an executor built with
//! `tokio_current_thread` drives its own tokio runtime (`tokio::net`).
//!
//! ```sh
//! cargo run --example io_host --features async-io,tokio            # both
//! cargo run --example io_host --features async-io,tokio -- tokio   # one
//! ```

use std::cell::Cell;
use std::io;
use std::net::SocketAddr;
use std::rc::Rc;
use std::thread;
use std::time::{Duration, Instant};

use futures_lite::{AsyncReadExt as _, AsyncWriteExt as _};
use nestloop::time::{interval, sleep};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

/// Which reactor does the I/O.
#[derive(Clone, Copy, Debug)]
enum Net {
    AsyncIo,
    Tokio,
}

/// A TCP connection of either kind.
enum Conn {
    AsyncIo(async_net::TcpStream),
    Tokio(tokio::net::TcpStream),
}

impl Conn {
    /// Reads until `done(what was read)`, or until the peer closes.
    async fn read_until(&mut self, done: impl Fn(&[u8]) -> bool) -> io::Result<String> {
        let (mut bytes, mut buf) = (Vec::new(), [0; 1024]);
        while !done(&bytes) {
            let n = match self {
                Conn::AsyncIo(s) => s.read(&mut buf).await?,
                Conn::Tokio(s) => s.read(&mut buf).await?,
            };
            if n == 0 {
                break;
            }
            bytes.extend_from_slice(&buf[..n]);
        }
        Ok(String::from_utf8_lossy(&bytes).into_owned())
    }
    async fn write_all(&mut self, bytes: &[u8]) -> io::Result<()> {
        match self {
            Conn::AsyncIo(s) => s.write_all(bytes).await,
            Conn::Tokio(s) => s.write_all(bytes).await,
        }
    }
}

/// Starts the tiny HTTP server as tasks of the current executor (their
/// handles are dropped: they run detached); returns its address.
async fn start_server(net: Net) -> io::Result<SocketAddr> {
    Ok(match net {
        Net::AsyncIo => {
            let listener = async_net::TcpListener::bind("127.0.0.1:0").await?;
            let addr = listener.local_addr()?;
            nestloop::spawn(async move {
                while let Ok((socket, _)) = listener.accept().await {
                    nestloop::spawn(respond(Conn::AsyncIo(socket)));
                }
            });
            addr
        }
        Net::Tokio => {
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
            let addr = listener.local_addr()?;
            nestloop::spawn(async move {
                while let Ok((socket, _)) = listener.accept().await {
                    nestloop::spawn(respond(Conn::Tokio(socket)));
                }
            });
            addr
        }
    })
}

/// Serves one request: reads the head, takes 20 ms "to think", answers and
/// closes the connection (by dropping it).
async fn respond(mut conn: Conn) -> io::Result<()> {
    let head = conn.read_until(|head| head.ends_with(b"\r\n\r\n")).await?;
    let path = head.split(' ').nth(1).unwrap_or("?");
    sleep(Duration::from_millis(20)).await;
    let body = format!("hello from {path}");
    let len = body.len();
    let response = format!("HTTP/1.1 200 OK\r\nContent-Length: {len}\r\n\r\n{body}");
    conn.write_all(response.as_bytes()).await
}

/// An HTTP/1.1 GET: the whole response, read until the server closes.
async fn get(net: Net, addr: SocketAddr, path: &str) -> io::Result<String> {
    let mut conn = match net {
        Net::AsyncIo => Conn::AsyncIo(async_net::TcpStream::connect(addr).await?),
        Net::Tokio => Conn::Tokio(tokio::net::TcpStream::connect(addr).await?),
    };
    let request = format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
    conn.write_all(request.as_bytes()).await?;
    conn.read_until(|_| false).await
}

/// The host's `http_get(path)` callback, synchronous as script engines
/// want it: it waits for the GET in a nested `block_on`, which keeps the
/// server and the ticker running meanwhile.
fn http_get(net: Net, addr: SocketAddr, path: &str, ticks: &Cell<u32>) -> String {
    let before = ticks.get();
    let (depth, response) =
        nestloop::block_on(async { (nestloop::depth(), get(net, addr, path).await) });
    let response = response.expect("GET failed");
    let (head, body) = response.split_once("\r\n\r\n").expect("an HTTP response");
    let status = head.lines().next().unwrap_or_default();
    let (me, ticked) = (thread::current(), ticks.get() - before);
    let thread = format!("{:?} {:?}", me.name().unwrap_or("?"), me.id());
    println!("  GET {path} at depth {depth} on thread {thread}: {status}, {body:?}");
    println!("    the ticker ticked {ticked} times during the GET");
    body.to_owned()
}

/// The host's `later(ms, f)` callback: waits, then calls back into the
/// script, one level deeper.
fn later<T>(ms: u64, f: impl FnOnce() -> T) -> T {
    nestloop::block_on(async {
        sleep(Duration::from_millis(ms)).await;
        f()
    })
}

/// One session on `net`: a server, a ticker, and a script calling back.
fn session(net: Net) {
    let start = Instant::now();
    let ex = match net {
        Net::AsyncIo => nestloop::Executor::new(), // feature async-io
        Net::Tokio => nestloop::Executor::builder().tokio_current_thread().build(),
    };
    ex.block_on(async {
        let addr = start_server(net).await.expect("cannot start the server");
        let ticks = Rc::new(Cell::new(0));
        let counter = ticks.clone();
        let ticker = nestloop::spawn(async move {
            let mut every = interval(Duration::from_millis(5));
            loop {
                every.tick().await;
                counter.set(counter.get() + 1);
            }
        });
        // The "script", run at depth 1: synchronous code calling the host.
        http_get(net, addr, "/hello", &ticks);
        later(10, || http_get(net, addr, "/later", &ticks));
        println!("  {} ticks in {:?} in all", ticks.get(), start.elapsed());
        ticker.abort();
    });
    println!("  threads in the process: {}", threads());
}

/// The names of the process's threads (Linux; "?" elsewhere). async-io
/// starts a helper thread of its own, which takes its reactor only while
/// no loop waits on it; a tokio_current_thread executor starts none.
fn threads() -> String {
    let Ok(tasks) = std::fs::read_dir("/proc/self/task") else {
        return "?".into();
    };
    let names: Vec<String> = tasks
        .filter_map(|task| std::fs::read_to_string(task.ok()?.path().join("comm")).ok())
        .map(|name| name.trim().to_owned())
        .collect();
    names.join(", ")
}

fn main() {
    let me = thread::current();
    println!("main thread: {:?} {:?}", me.name().unwrap_or("?"), me.id());
    let nets = match std::env::args().nth(1).as_deref() {
        None => vec![Net::AsyncIo, Net::Tokio],
        Some("async-io") => vec![Net::AsyncIo],
        Some("tokio") => vec![Net::Tokio],
        Some(other) => panic!("unknown argument {other:?}: use async-io or tokio"),
    };
    for net in nets {
        println!("{net:?}:");
        session(net);
    }
}
