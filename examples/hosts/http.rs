//! Feature `http`: a small HTTP/1.1 server (hyper) whose accept loop and
//! connections are tasks of the thread's executor, and the synchronous
//! client call a host's callback makes (reqwest), for the `http_host`
//! example, the `http` tests and the `http` bench.
//!
//! Routes: `/slow/MS` answers after MS milliseconds (on tokio's timer);
//! any other path answers at once with `hello from PATH`.

use std::cell::Cell;
use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::rc::Rc;
use std::time::Duration;

use http_body_util::Full;
use hyper::body::{Bytes, Incoming};
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;

/// What the server has seen.
#[derive(Debug, Default)]
pub struct Stats {
    /// Connections accepted.
    pub connections: Cell<usize>,
    /// Requests answered or being answered.
    pub requests: Cell<usize>,
    /// Requests being answered now.
    pub in_flight: Cell<usize>,
    /// The most requests answered at once.
    pub max_in_flight: Cell<usize>,
}

/// A connection's future, for whoever runs the server to spawn.
pub type Connection = Pin<Box<dyn Future<Output = ()>>>;

/// Binds 127.0.0.1 on a free port; needs tokio's runtime context (a
/// nestloop executor built with `tokio_current_thread`, or a tokio
/// runtime).
pub async fn bind() -> (tokio::net::TcpListener, SocketAddr) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind 127.0.0.1");
    let addr = listener.local_addr().expect("the listener's address");
    (listener, addr)
}

/// Accepts connections forever, handing each one's future to `spawn`.
pub async fn accept_loop(
    listener: tokio::net::TcpListener,
    stats: Rc<Stats>,
    mut spawn: impl FnMut(Connection),
) {
    loop {
        let (stream, _) = listener.accept().await.expect("accept");
        stats.connections.set(stats.connections.get() + 1);
        let stats = stats.clone();
        spawn(Box::pin(async move {
            let service = hyper::service::service_fn(move |request| answer(request, stats.clone()));
            // A client that goes away mid-request is its own business.
            let _ = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .await;
        }));
    }
}

/// Answers one request (see the module docs).
async fn answer(
    request: Request<Incoming>,
    stats: Rc<Stats>,
) -> Result<Response<Full<Bytes>>, Infallible> {
    stats.requests.set(stats.requests.get() + 1);
    stats.in_flight.set(stats.in_flight.get() + 1);
    stats
        .max_in_flight
        .set(stats.max_in_flight.get().max(stats.in_flight.get()));
    let path = request.uri().path().to_owned();
    let body = match path.strip_prefix("/slow/").map(str::parse::<u64>) {
        Some(Ok(ms)) => {
            tokio::time::sleep(Duration::from_millis(ms)).await;
            format!("slept {ms} ms")
        }
        _ => format!("hello from {path}"),
    };
    stats.in_flight.set(stats.in_flight.get() - 1);
    Ok(Response::new(Full::new(Bytes::from(body))))
}

/// A server running as a task of the thread's executor, its connections
/// as tasks of a `nestloop::JoinSet` the accept loop owns.
pub struct Server {
    /// Where it listens.
    pub addr: SocketAddr,
    /// What it has seen.
    pub stats: Rc<Stats>,
    task: nestloop::JoinHandle<()>,
}

impl Server {
    /// Starts one (inside an executor with a tokio runtime).
    pub async fn start() -> Server {
        let (listener, addr) = bind().await;
        let stats = Rc::new(Stats::default());
        let task = nestloop::spawn(accept_loop(listener, stats.clone(), {
            let mut connections = nestloop::JoinSet::new();
            move |connection| {
                // Ended connections' results are not needed.
                while connections.try_join_next().is_some() {}
                connections.spawn(connection);
            }
        }));
        Server { addr, stats, task }
    }

    /// `http://ADDR/PATH`.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}/{}", self.addr, path.trim_start_matches('/'))
    }

    /// Stops accepting and closes every connection (the accept loop's
    /// task is aborted; it drops the `JoinSet`, which aborts the
    /// connections' tasks).
    pub fn shut_down(self) {
        self.task.abort();
    }
}

/// What a host's synchronous callback does: a GET with reqwest, waited
/// for with `nestloop::block_on`. Returns the body.
pub fn get(client: &reqwest::Client, url: &str) -> reqwest::Result<String> {
    nestloop::block_on(async {
        client
            .get(url)
            .send()
            .await?
            .error_for_status()?
            .text()
            .await
    })
}

/// The names of this process's threads (Linux: `/proc/self/task`; empty
/// elsewhere).
pub fn thread_names() -> Vec<String> {
    let Ok(tasks) = std::fs::read_dir("/proc/self/task") else {
        return Vec::new();
    };
    let mut names: Vec<String> = tasks
        .filter_map(|task| std::fs::read_to_string(task.ok()?.path().join("comm")).ok())
        .map(|name| name.trim().to_owned())
        .collect();
    names.sort();
    names
}
