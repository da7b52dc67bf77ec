//! Sync code that needs async work, called from async code: a synchronous
//! trait method and a `Drop` impl, both implemented with `nestloop::block_on`
//! on top of an async service task.
//!
//! ```sh
//! cargo run --example sync_bridge
//! ```

use std::collections::HashMap;
use std::time::Duration;

use futures::StreamExt;
use futures::channel::{mpsc, oneshot};
use nestloop::time::sleep;

/// A synchronous interface, e.g. from a library that cannot change.
pub trait KeyValue {
    fn get(&self, key: &str) -> Option<String>;
    fn put(&self, key: &str, value: &str);
}

/// A message to the async store.
enum Command {
    Get(String, oneshot::Sender<Option<String>>),
    Put(String, String, oneshot::Sender<()>),
    /// Close a session: the store logs it and acknowledges.
    Close(String, oneshot::Sender<()>),
}

/// The store's async side: a task that owns the data and answers commands
/// after a simulated I/O delay. Returns its log when all clients are gone.
async fn serve(mut commands: mpsc::UnboundedReceiver<Command>) -> Vec<String> {
    let mut data = HashMap::new();
    let mut log = Vec::new();
    while let Some(command) = commands.next().await {
        sleep(Duration::from_millis(2)).await; // "network"
        match command {
            Command::Get(key, reply) => {
                log.push(format!("get {key}"));
                let _ = reply.send(data.get(&key).cloned());
            }
            Command::Put(key, value, reply) => {
                log.push(format!("put {key}={value}"));
                data.insert(key, value);
                let _ = reply.send(());
            }
            Command::Close(session, reply) => {
                log.push(format!("close {session}"));
                let _ = reply.send(());
            }
        }
    }
    log
}

/// A client whose synchronous methods block on the async store.
pub struct Client {
    /// Where commands go.
    commands: mpsc::UnboundedSender<Command>,
    /// Named in the store's log when the client is dropped.
    session: String,
}

impl Client {
    /// Sends a command and blocks until the store answers.
    fn call<T>(&self, command: impl FnOnce(oneshot::Sender<T>) -> Command) -> T {
        let (reply, answer) = oneshot::channel();
        self.commands
            .unbounded_send(command(reply))
            .expect("the store is running");
        // Called from async code, this nests a loop that keeps the store
        // task (and every other task) running until the answer arrives.
        nestloop::block_on(answer).expect("the store answered")
    }
}

impl KeyValue for Client {
    fn get(&self, key: &str) -> Option<String> {
        self.call(|reply| Command::Get(key.to_owned(), reply))
    }

    fn put(&self, key: &str, value: &str) {
        self.call(|reply| Command::Put(key.to_owned(), value.to_owned(), reply));
    }
}

impl Drop for Client {
    /// Async cleanup in a destructor: tell the store, and wait until it has
    /// logged the close.
    fn drop(&mut self) {
        let session = std::mem::take(&mut self.session);
        self.call(|reply| Command::Close(session, reply));
    }
}

/// Generic synchronous code that only knows the trait.
fn copy_value(store: &dyn KeyValue, from: &str, to: &str) -> bool {
    match store.get(from) {
        Some(value) => {
            store.put(to, &value);
            true
        }
        None => false,
    }
}

/// Runs the example: async code that calls the sync trait and drops a
/// client. Returns the store's log.
pub fn run() -> Vec<String> {
    nestloop::block_on(async {
        let (commands, incoming) = mpsc::unbounded();
        let store = nestloop::spawn(serve(incoming));
        {
            let client = Client {
                commands: commands.clone(),
                session: "session-1".to_owned(),
            };
            client.put("greeting", "hello");
            // An await in between: the async code goes on as usual.
            sleep(Duration::from_millis(1)).await;
            assert!(copy_value(&client, "greeting", "copy"));
            assert_eq!(client.get("copy").as_deref(), Some("hello"));
            assert!(!copy_value(&client, "missing", "other"));
        } // `client` dropped here: its Drop blocks on the close.
        drop(commands);
        store.await.expect("the store task panicked")
    })
}

fn main() {
    for line in run() {
        println!("store: {line}");
    }
}
