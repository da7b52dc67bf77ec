//! Feature `tracing`: each task's events are recorded in the task's own
//! span, also when a nested loop polls it inside another task's poll; the
//! spans carry the task's id, name and spawn location; nested loops and the
//! loop's reports are events of target `nestloop`.
#![cfg(feature = "tracing")]

#[path = "../../tests/common/mod.rs"]
mod common;

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use common::{expect_panic, watchdog};
use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record};
use tracing::{Event, Metadata, Subscriber};

/// A span as the recorder saw it.
#[derive(Clone, Debug, Default)]
struct SpanData {
    metadata: Option<&'static Metadata<'static>>,
    name: String,
    target: String,
    /// Made with no parent (`parent: None`, or no span entered).
    root: bool,
    fields: HashMap<String, String>,
}

/// An event as the recorder saw it.
#[derive(Clone, Debug)]
struct EventData {
    target: String,
    level: tracing::Level,
    fields: HashMap<String, String>,
    /// The span it was recorded in: the innermost entered one.
    span: Option<SpanData>,
}

impl EventData {
    fn field(&self, name: &str) -> Option<&str> {
        self.fields.get(name).map(String::as_str)
    }
}

#[derive(Default)]
struct State {
    spans: HashMap<u64, SpanData>,
    /// The entered spans, innermost last (the scenarios run on one thread).
    stack: Vec<u64>,
    events: Vec<EventData>,
}

/// A minimal `Subscriber` that keeps every span and event.
#[derive(Clone, Default)]
struct Recorder {
    next: Arc<AtomicU64>,
    state: Arc<Mutex<State>>,
}

struct Fields<'a>(&'a mut HashMap<String, String>);

impl Visit for Fields<'_> {
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        self.0.insert(field.name().to_owned(), format!("{value:?}"));
    }
    fn record_str(&mut self, field: &Field, value: &str) {
        self.0.insert(field.name().to_owned(), value.to_owned());
    }
}

impl Subscriber for Recorder {
    fn enabled(&self, _: &Metadata<'_>) -> bool {
        true
    }
    fn new_span(&self, attrs: &Attributes<'_>) -> Id {
        let id = self.next.fetch_add(1, Ordering::Relaxed) + 1;
        let mut state = self.state.lock().unwrap();
        let root = attrs.is_root() || (attrs.is_contextual() && state.stack.is_empty());
        let mut data = SpanData {
            metadata: Some(attrs.metadata()),
            name: attrs.metadata().name().to_owned(),
            target: attrs.metadata().target().to_owned(),
            root,
            fields: HashMap::new(),
        };
        attrs.record(&mut Fields(&mut data.fields));
        state.spans.insert(id, data);
        Id::from_u64(id)
    }
    fn record(&self, span: &Id, values: &Record<'_>) {
        let mut state = self.state.lock().unwrap();
        if let Some(data) = state.spans.get_mut(&span.into_u64()) {
            values.record(&mut Fields(&mut data.fields));
        }
    }
    fn record_follows_from(&self, _: &Id, _: &Id) {}
    fn event(&self, event: &Event<'_>) {
        let mut state = self.state.lock().unwrap();
        let mut fields = HashMap::new();
        event.record(&mut Fields(&mut fields));
        let span = state
            .stack
            .last()
            .and_then(|id| state.spans.get(id))
            .cloned();
        state.events.push(EventData {
            target: event.metadata().target().to_owned(),
            level: *event.metadata().level(),
            fields,
            span,
        });
    }
    /// The innermost entered span, as a subscriber that keeps a span stack
    /// (tracing-subscriber's `Registry`) reports it to `Span::current`.
    fn current_span(&self) -> tracing_core::span::Current {
        let state = self.state.lock().unwrap();
        let current = state.stack.last().and_then(|id| {
            let metadata = state.spans.get(id)?.metadata?;
            Some(tracing_core::span::Current::new(
                Id::from_u64(*id),
                metadata,
            ))
        });
        current.unwrap_or_else(tracing_core::span::Current::none)
    }
    fn enter(&self, span: &Id) {
        self.state.lock().unwrap().stack.push(span.into_u64());
    }
    fn exit(&self, span: &Id) {
        let mut state = self.state.lock().unwrap();
        if let Some(at) = state.stack.iter().rposition(|id| *id == span.into_u64()) {
            state.stack.remove(at);
        }
    }
}

/// Runs `scenario` with a recorder as the thread's subscriber, under the
/// watchdog; returns its result and the events.
fn recorded<T: Send + 'static>(
    scenario: impl FnOnce() -> T + Send + 'static,
) -> (T, Vec<EventData>) {
    watchdog(|| {
        let recorder = Recorder::default();
        let out = tracing::subscriber::with_default(recorder.clone(), scenario);
        let events = recorder.state.lock().unwrap().events.clone();
        (out, events)
    })
}

/// The events whose message is `message`.
fn with_message<'a>(events: &'a [EventData], message: &str) -> Vec<&'a EventData> {
    events
        .iter()
        .filter(|e| e.field("message") == Some(message))
        .collect()
}

#[test]
fn a_task_polled_by_a_nested_loop_records_in_its_own_span_not_its_callers() {
    let ((a_id, b_id), events) = recorded(|| {
        nestloop::block_on(async {
            let a = nestloop::spawn(async {
                let b = nestloop::spawn(async {
                    tracing::info!("from b");
                });
                let b_id = b.id();
                // Task A's own span, entered around a synchronous call that
                // nests: the loop inside polls B.
                tracing::info_span!("a_work").in_scope(|| {
                    tracing::info!("from a, before");
                    nestloop::block_on(b).unwrap();
                    tracing::info!("from a, after");
                });
                b_id
            });
            let a_id = a.id();
            (a_id, a.await.unwrap())
        })
    });
    let from_b = with_message(&events, "from b");
    assert_eq!(from_b.len(), 1, "{events:#?}");
    let span = from_b[0].span.as_ref().expect("B's event is in a span");
    assert_eq!(
        span.name, "task",
        "B's event went to {span:?}, not B's task span"
    );
    assert_eq!(span.target, "nestloop::task");
    assert_eq!(span.fields["task.id"], b_id.to_string());
    assert!(span.root, "a task span has no parent: {span:?}");
    for message in ["from a, before", "from a, after"] {
        let from_a = with_message(&events, message);
        let span = from_a[0].span.as_ref().expect("A's event is in a span");
        assert_eq!(span.name, "a_work", "{message}: {span:?}");
    }
    assert_ne!(a_id, b_id);
}

#[test]
fn a_task_span_carries_the_id_name_and_spawn_location() {
    let ((id, line), events) = recorded(|| {
        let ex = nestloop::Executor::new();
        let line = line!() + 3;
        let handle = nestloop::TaskBuilder::new()
            .name("fetcher")
            .spawn_on(async { tracing::info!("working") }, &ex);
        let id = handle.id();
        ex.block_on(handle).unwrap();
        (id, line)
    });
    let working = with_message(&events, "working");
    let span = working[0].span.as_ref().expect("in the task's span");
    assert_eq!(span.fields["task.id"], id.to_string());
    assert_eq!(span.fields["task.name"], "fetcher");
    assert_eq!(span.fields["loc.file"], file!());
    assert_eq!(span.fields["loc.line"], line.to_string());
}

#[test]
fn nested_loops_are_debug_events_with_their_depth() {
    let (_, events) = recorded(|| {
        nestloop::block_on(async {
            let task = nestloop::spawn(async { nestloop::yield_now().await });
            // Nested: its future waits for the task, so a loop runs.
            nestloop::block_on(task).unwrap();
        })
    });
    let entered = with_message(&events, "nested loop entered");
    let left = with_message(&events, "nested loop left");
    assert_eq!((entered.len(), left.len()), (1, 1), "{events:#?}");
    for event in [entered[0], left[0]] {
        assert_eq!(event.target, "nestloop");
        assert_eq!(event.level, tracing::Level::DEBUG);
        assert_eq!(event.field("depth"), Some("2"));
    }
    // The outermost loop is not a nested one.
    assert!(events.iter().all(
        |e| e.field("depth") != Some("1") || e.field("message") != Some("nested loop entered")
    ));
}

#[test]
fn the_deadlock_report_is_a_debug_event_before_the_panic() {
    let (message, events) =
        recorded(|| expect_panic(|| nestloop::block_on(std::future::pending::<()>())));
    assert!(message.starts_with("nestloop: deadlock"), "{message}");
    let report = events
        .iter()
        .find(|e| {
            e.target == "nestloop"
                && e.level == tracing::Level::DEBUG
                && e.field("message")
                    .is_some_and(|m| m.starts_with("nestloop: deadlock"))
        })
        .unwrap_or_else(|| panic!("no deadlock event in {events:#?}"));
    assert_eq!(report.field("message"), Some(message.as_str()));
}

/// A synchronous helper that nests a `block_on` whose future waits for
/// `rx`, then logs `message`.
fn helper(rx: futures::channel::oneshot::Receiver<()>, message: &'static str) {
    nestloop::block_on(async move {
        rx.await.unwrap();
        tracing::info!("{message}");
    });
}

#[test]
fn a_block_on_future_finished_by_another_tasks_nested_loop_records_in_its_callers_span() {
    let ((a_id, b_id), events) = recorded(|| {
        nestloop::block_on(async {
            let (tx_a, rx_a) = futures::channel::oneshot::channel();
            let (tx_b, rx_b) = futures::channel::oneshot::channel();
            // A nests a loop, which runs B; B wakes A's future and nests a
            // loop of its own, which polls A's future to its end (R3).
            let a = nestloop::spawn(async move { helper(rx_a, "from a's future") });
            let b = nestloop::spawn(async move {
                tx_a.send(()).unwrap();
                helper(rx_b, "from b's future");
            });
            nestloop::spawn(async move {
                nestloop::time::sleep(std::time::Duration::from_millis(1)).await;
                tx_b.send(()).unwrap();
            });
            let ids = (a.id(), b.id());
            a.await.unwrap();
            b.await.unwrap();
            ids
        })
    });
    for (message, id) in [("from a's future", a_id), ("from b's future", b_id)] {
        let from = with_message(&events, message);
        assert_eq!(from.len(), 1, "{events:#?}");
        let span = from[0].span.as_ref().expect("in a span");
        assert_eq!(span.name, "task", "{message}: {span:?}");
        assert_eq!(
            span.fields["task.id"],
            id.to_string(),
            "{message}: {span:?}"
        );
    }
}

/// With fibers (R12): tasks whose helpers wait and are resumed out of
/// order record every event in their own span, before the wait, inside the
/// helper's future, and after it, whichever fiber is suspended meanwhile.
#[cfg(any(target_arch = "x86_64", target_arch = "aarch64"))]
#[test]
fn with_fibers_spans_stay_with_their_task_across_out_of_order_resumes() {
    use std::time::Duration;
    let (ids, events) = recorded(|| {
        let ex = nestloop::Executor::builder().fibers(true).build();
        ex.block_on(async {
            let handles: Vec<_> = (0..4u64)
                .map(|i| {
                    nestloop::spawn(async move {
                        tracing::info!(i, "before");
                        nestloop::block_on(async move {
                            tracing::info!(i, "inside");
                            // Resumed in the order they suspended: not the
                            // reverse, which a stack of spans would get right.
                            nestloop::time::sleep(Duration::from_millis(5 + 5 * i)).await;
                            tracing::info!(i, "inside, after the wait");
                        });
                        tracing::info!(i, "after");
                    })
                })
                .collect();
            let ids: Vec<_> = handles.iter().map(|h| h.id()).collect();
            for h in handles {
                h.await.unwrap();
            }
            ids
        })
    });
    for message in ["before", "inside", "inside, after the wait", "after"] {
        let from = with_message(&events, message);
        assert_eq!(from.len(), 4, "{message}: {events:#?}");
        for event in from {
            let i: usize = event.field("i").unwrap().parse().unwrap();
            let span = event.span.as_ref().expect("in a span");
            assert_eq!(
                span.fields["task.id"],
                ids[i].to_string(),
                "{message} of task {i}: {span:?}"
            );
        }
    }
}
