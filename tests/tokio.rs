//! Feature `tokio`: nestloop inside tokio runtimes, and tokio's reactor
//! inside nestloop tasks (real TCP on 127.0.0.1).
#![cfg(feature = "tokio")]

mod common;

use std::time::Duration;

use common::{expect_panic, watchdog};
use nestloop::Executor;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

fn multi_thread(workers: usize) -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(workers)
        .enable_all()
        .build()
        .unwrap()
}

#[test]
fn block_on_on_a_multi_thread_worker_keeps_tokio_tasks_running() {
    let v = watchdog(|| {
        // One worker: without block_in_place, blocking it would stall the
        // tokio task the nestloop future waits for.
        let rt = multi_thread(1);
        rt.block_on(async {
            tokio::spawn(async {
                let (tx, rx) = tokio::sync::oneshot::channel();
                tokio::spawn(async move {
                    tokio::time::sleep(Duration::from_millis(10)).await;
                    tx.send(42).unwrap();
                });
                // Synchronous code on a tokio worker waits with nestloop.
                nestloop::block_on(rx).unwrap()
            })
            .await
            .unwrap()
        })
    });
    assert_eq!(v, 42);
}

#[test]
fn block_on_inside_a_current_thread_runtime_panics_with_advice() {
    let msg = watchdog(|| {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        expect_panic(|| rt.block_on(async { nestloop::block_on(async { 1 }) }))
    });
    assert!(
        msg.starts_with("nestloop: block_on called inside a tokio current_thread runtime"),
        "{msg}"
    );
    assert!(msg.contains("multi_thread"), "says what to do: {msg}");
}

#[test]
fn nestloop_tasks_use_tokio_tcp_through_the_runtime_handle() {
    let reply = watchdog(|| {
        let rt = multi_thread(2);
        let ex = Executor::builder()
            .tokio_handle(rt.handle().clone())
            .build();
        let ex2 = ex.clone();
        ex.block_on(async move {
            let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
            let addr = listener.local_addr().unwrap();
            // A nestloop task serving one connection with tokio I/O.
            let server = ex2.spawn(async move {
                let (mut socket, _) = listener.accept().await.unwrap();
                let mut buf = [0u8; 4];
                socket.read_exact(&mut buf).await.unwrap();
                assert_eq!(&buf, b"ping");
                socket.write_all(b"pong").await.unwrap();
            });
            // The client waits from synchronous code, in a nested loop.
            let ex3 = ex2.clone();
            let client = ex2.spawn(async move {
                ex3.block_on(async move {
                    let mut stream = TcpStream::connect(addr).await.unwrap();
                    stream.write_all(b"ping").await.unwrap();
                    let mut buf = [0u8; 4];
                    stream.read_exact(&mut buf).await.unwrap();
                    String::from_utf8(buf.to_vec()).unwrap()
                })
            });
            let reply = client.await.unwrap();
            server.await.unwrap();
            reply
        })
    });
    assert_eq!(reply, "pong");
}

#[test]
fn with_runtime_gives_one_future_the_tokio_context() {
    let elapsed = watchdog(|| {
        let rt = multi_thread(1);
        let start = std::time::Instant::now();
        nestloop::block_on(nestloop::tokio::with_runtime(rt.handle().clone(), async {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }));
        start.elapsed()
    });
    assert!(elapsed >= Duration::from_millis(20));
}

#[test]
fn tokio_and_nestloop_timers_mix_in_a_nested_call() {
    watchdog(|| {
        let rt = multi_thread(1);
        let ex = Executor::builder()
            .tokio_handle(rt.handle().clone())
            .build();
        let ex2 = ex.clone();
        ex.block_on(async move {
            let ticker = ex2.spawn(async {
                let mut n = 0;
                let mut every = tokio::time::interval(Duration::from_millis(5));
                while n < 5 {
                    every.tick().await;
                    n += 1;
                }
                n
            });
            // A nested call on a nestloop timer while the tokio one ticks.
            let ex3 = ex2.clone();
            ex2.spawn(
                async move { ex3.block_on(nestloop::time::sleep(Duration::from_millis(40))) },
            )
            .await
            .unwrap();
            assert_eq!(ticker.await.unwrap(), 5);
        });
    });
}
