//! The host programs are this package's examples (see Cargo.toml); this
//! library holds what they share with the package's tests and the
//! benches.

#[cfg(feature = "http")]
pub mod http;

/// The async work a GUI handler waits for in the GLib and GTK examples: a
/// "fetch" of named parts, each a nestloop task that sleeps its
/// milliseconds; returns the parts joined with ` + `.
pub async fn fetch(parts: &'static [(&'static str, u64)]) -> String {
    let tasks: Vec<_> = parts
        .iter()
        .map(|&(part, ms)| {
            nestloop::spawn(async move {
                nestloop::time::sleep(std::time::Duration::from_millis(ms)).await;
                part
            })
        })
        .collect();
    let mut fetched = Vec::new();
    for task in tasks {
        fetched.push(task.await.expect("the part's task"));
    }
    fetched.join(" + ")
}
