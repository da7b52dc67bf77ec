//! How much stack one level of nesting takes in a realistic handler: an
//! async-net server whose per-connection task calls a synchronous helper
//! that `block_on`s a 20-50 ms lookup (a script callback, a sync trait
//! method). With arrivals 100 µs apart, the helpers nest: each waiting
//! call holds a loop level on the thread's stack, and R10's depth limit
//! is this size times the depth. The crate docs quote its output:
//!
//! ```sh
//! cargo run -p nestloop-hosts --example stack_per_level            # debug
//! cargo run -p nestloop-hosts --example stack_per_level --release  # release
//! ```

use std::cell::RefCell;
use std::time::Duration;

use futures_lite::{AsyncBufReadExt, AsyncWriteExt, io::BufReader};

thread_local! {
    /// (depth, stack address) at each helper's entry.
    static SEEN: RefCell<Vec<(usize, usize)>> = const { RefCell::new(Vec::new()) };
}

/// The synchronous helper: waits for a lookup of 20-50 ms.
fn lookup(key: &str) -> usize {
    let marker = 0u8;
    let here = std::hint::black_box(&marker) as *const u8 as usize;
    SEEN.with(|seen| seen.borrow_mut().push((nestloop::depth(), here)));
    let millis = 20 + key.len() as u64 % 31;
    nestloop::block_on(async move {
        nestloop::time::sleep(Duration::from_millis(millis)).await;
        key.len()
    })
}

/// One connection: reads a line, answers with what the helper found.
async fn handle(stream: async_net::TcpStream) -> std::io::Result<()> {
    let mut reader = BufReader::new(stream.clone());
    let mut line = String::new();
    reader.read_line(&mut line).await?;
    let found = lookup(line.trim());
    let mut stream = stream;
    stream.write_all(format!("{found}\n").as_bytes()).await
}

fn main() {
    let clients = 200;
    nestloop::block_on(async {
        let listener = async_net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        let server = nestloop::spawn(async move {
            loop {
                let (stream, _) = listener.accept().await.unwrap();
                drop(nestloop::spawn(handle(stream)));
            }
        });
        let mut replies = Vec::new();
        for n in 0..clients {
            replies.push(nestloop::spawn(async move {
                let mut stream = async_net::TcpStream::connect(address).await.unwrap();
                stream
                    .write_all(format!("key-{n}\n").as_bytes())
                    .await
                    .unwrap();
                let mut reply = String::new();
                BufReader::new(stream).read_line(&mut reply).await.unwrap();
                reply
            }));
            nestloop::time::sleep(Duration::from_micros(100)).await;
        }
        for reply in replies {
            reply.await.unwrap();
        }
        server.abort();
    });
    let seen = SEEN.with(|seen| seen.take());
    let deepest = seen.iter().map(|(depth, _)| *depth).max().unwrap();
    let (low, high) = (
        seen.iter().map(|(_, at)| *at).min().unwrap(),
        seen.iter().map(|(_, at)| *at).max().unwrap(),
    );
    let per_level = (high - low) / (deepest - 1).max(1);
    println!(
        "{clients} connections: deepest helper at depth {deepest}; {:.1} KiB of stack per level \
         ({} build)",
        per_level as f64 / 1024.0,
        if cfg!(debug_assertions) {
            "debug"
        } else {
            "release"
        },
    );
}
