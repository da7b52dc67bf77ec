//! The frame stack as diagnostics show it: [`Frames`], a snapshot of the
//! thread's loops and what each one is polling, made by `nestloop::frames`
//! and by the deadlock and depth-limit reports.
//!
//! What a loop polls is read from the thread's record of what is being
//! polled (one word per poll, see `sched::poll_target`): a frame remembers what the loop below it was polling when the frame was
//! pushed (its `caller`, which that loop polls until the frame is popped),
//! and the innermost loop's is the record itself.

use std::fmt;
use std::panic::Location;

use super::{Frame, ThreadState};
use crate::sched::{self, PollTarget};
use crate::task::TaskId;

/// A snapshot of the loops running on this thread, outermost first: for
/// each, its executor, the call that runs it and what it is polling. Made by
/// [`nestloop::frames`](crate::frames); its `Display` is the dump that the
/// deadlock and depth-limit panics print.
///
/// # Examples
///
/// ```
/// use nestloop::Polling;
///
/// let handle = nestloop::spawn(async {
///     let frames = nestloop::frames();
///     assert_eq!(frames.len(), 1);
///     let frame = &frames[0];
///     assert_eq!(frame.depth(), 1);
///     assert!(matches!(frame.polling(), Polling::Task { .. }));
///     frames.to_string()
/// });
/// let dump = nestloop::block_on(handle).unwrap();
/// assert!(dump.contains("depth 1: executor"), "{dump}");
/// ```
#[derive(Debug, Clone, Default)]
pub struct Frames {
    /// The loops, outermost first.
    frames: Vec<LoopFrame>,
}

/// One loop of a [`Frames`] snapshot.
#[derive(Debug, Clone)]
pub struct LoopFrame {
    /// 1 for the outermost loop.
    depth: usize,
    /// The id of the loop's executor.
    executor_id: u64,
    /// Which call runs the loop.
    kind: LoopKind,
    /// Where that call was made.
    location: &'static Location<'static>,
    /// What the loop is polling.
    polling: Polling,
}

/// Which call runs a loop.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum LoopKind {
    /// [`Executor::block_on`](crate::Executor::block_on) or
    /// [`nestloop::block_on`](crate::block_on).
    BlockOn,
    /// [`Executor::try_block_on`](crate::Executor::try_block_on).
    TryBlockOn,
    /// [`Executor::run_until_stalled`](crate::Executor::run_until_stalled).
    RunUntilStalled,
}

impl LoopKind {
    /// The call's name, as messages and dumps give it.
    pub(crate) fn name(self) -> &'static str {
        match self {
            LoopKind::BlockOn => "block_on",
            LoopKind::TryBlockOn => "try_block_on",
            LoopKind::RunUntilStalled => "run_until_stalled",
        }
    }
}

/// What a loop is polling.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Polling {
    /// Nothing: the loop is between polls or waiting.
    Nothing,
    /// A task.
    #[non_exhaustive]
    Task {
        /// The task's id.
        id: TaskId,
        /// Its name, if it was spawned with one
        /// ([`TaskBuilder::name`](crate::TaskBuilder::name)).
        name: Option<String>,
        /// Where it was spawned.
        spawned_at: &'static Location<'static>,
    },
    /// The future of a `block_on` call: the loop's own, or (rule R3) that
    /// of an outer call.
    #[non_exhaustive]
    BlockOn {
        /// Where that `block_on` was called.
        called_at: &'static Location<'static>,
    },
}

impl Frames {
    /// The number of loops (the same as [`depth`](crate::depth) when the
    /// snapshot was made).
    pub fn len(&self) -> usize {
        self.frames.len()
    }

    /// Whether no loop was running.
    pub fn is_empty(&self) -> bool {
        self.frames.is_empty()
    }

    /// The loops, outermost first.
    pub fn iter(&self) -> std::slice::Iter<'_, LoopFrame> {
        self.frames.iter()
    }
}

impl std::ops::Index<usize> for Frames {
    type Output = LoopFrame;

    /// The loop at index `index` (depth `index + 1`).
    fn index(&self, index: usize) -> &LoopFrame {
        &self.frames[index]
    }
}

impl<'a> IntoIterator for &'a Frames {
    type Item = &'a LoopFrame;
    type IntoIter = std::slice::Iter<'a, LoopFrame>;

    fn into_iter(self) -> Self::IntoIter {
        self.iter()
    }
}

impl LoopFrame {
    /// The loop's depth: 1 for the outermost.
    pub fn depth(&self) -> usize {
        self.depth
    }

    /// The id of the loop's executor ([`Executor::id`](crate::Executor::id)).
    pub fn executor_id(&self) -> u64 {
        self.executor_id
    }

    /// Which call runs the loop.
    pub fn kind(&self) -> LoopKind {
        self.kind
    }

    /// Where the call that runs the loop was made.
    pub fn location(&self) -> &'static Location<'static> {
        self.location
    }

    /// What the loop is polling.
    pub fn polling(&self) -> &Polling {
        &self.polling
    }
}

impl fmt::Display for Frames {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.frames.is_empty() {
            return f.write_str("nestloop: no loop is running on this thread");
        }
        f.write_str("nestloop frames, outermost first:")?;
        for frame in &self.frames {
            write!(f, "\n  {frame}")?;
        }
        Ok(())
    }
}

impl fmt::Display for LoopFrame {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let call = self.kind.name();
        write!(
            f,
            "depth {}: executor {}, {call} at {}, {}",
            self.depth, self.executor_id, self.location, self.polling
        )
    }
}

impl fmt::Display for Polling {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Polling::Nothing => f.write_str("waiting"),
            Polling::Task {
                id,
                name: Some(name),
                spawned_at,
            } => write!(f, "polling task {id} {name:?} spawned at {spawned_at}"),
            Polling::Task {
                id,
                name: None,
                spawned_at,
            } => write!(f, "polling task {id} spawned at {spawned_at}"),
            Polling::BlockOn { called_at } => {
                write!(f, "polling the future of the block_on at {called_at}")
            }
        }
    }
}

/// A snapshot for a panic message: at most `ABRIDGED_EDGE` loops at each
/// end, the rest counted (a depth-limit report can have hundreds).
pub(crate) struct Abridged<'a>(pub(crate) &'a Frames);

/// See `Abridged`.
const ABRIDGED_EDGE: usize = 8;

impl fmt::Display for Abridged<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let frames = &self.0.frames;
        if frames.len() <= 2 * ABRIDGED_EDGE {
            return self.0.fmt(f);
        }
        f.write_str("nestloop frames, outermost first:")?;
        for frame in &frames[..ABRIDGED_EDGE] {
            write!(f, "\n  {frame}")?;
        }
        let skipped = frames.len() - 2 * ABRIDGED_EDGE;
        write!(f, "\n  ... {skipped} more ...")?;
        for frame in &frames[frames.len() - ABRIDGED_EDGE..] {
            write!(f, "\n  {frame}")?;
        }
        Ok(())
    }
}

/// Whether the innermost loop is known to be waiting (not inside a poll)
/// when a snapshot is made.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Innermost {
    /// The snapshot is made by code that a poll runs (user code, or a
    /// `block_on` about to nest): the innermost loop polls whatever the
    /// thread's record says.
    Polling,
    /// The innermost loop is about to wait (the deadlock check).
    Waiting,
}

impl ThreadState {
    /// The frames, as diagnostics show them.
    pub(crate) fn snapshot(&self, innermost: Innermost) -> Frames {
        let current = sched::poll_target();
        // On a fiber (R12), the frames of the stacks that resumed it come
        // first: the loops it runs under.
        self.with_all_frames(|frames| {
            let frames: Vec<&Frame> = frames.collect();
            self.snapshot_of(&frames, current, innermost)
        })
    }

    /// `snapshot` of `frames`, the innermost polling `current`.
    fn snapshot_of(&self, frames: &[&Frame], current: PollTarget, innermost: Innermost) -> Frames {
        let frames = frames
            .iter()
            .copied()
            .enumerate()
            .map(|(index, frame)| {
                let target = if frame.in_first_poll {
                    PollTarget::Root(frame.location)
                } else {
                    match frames.get(index + 1) {
                        Some(above) => above.caller,
                        None if innermost == Innermost::Waiting => PollTarget::Nothing,
                        None => current,
                    }
                };
                self.loop_frame(index, frame, target)
            })
            .collect();
        Frames { frames }
    }

    /// Frame `index`, polling `target`.
    fn loop_frame(&self, index: usize, frame: &Frame, target: PollTarget) -> LoopFrame {
        // The record is put back after every poll: a loop between polls has
        // its caller's in it.
        let target = if target == frame.caller {
            PollTarget::Nothing
        } else {
            target
        };
        LoopFrame {
            depth: index + 1,
            executor_id: frame.executor.inner.id,
            kind: frame.kind,
            location: frame.location,
            polling: self.polling(target),
        }
    }

    /// `target` for a snapshot, with the task's name.
    fn polling(&self, target: PollTarget) -> Polling {
        match target {
            PollTarget::Nothing => Polling::Nothing,
            PollTarget::Root(called_at) => Polling::BlockOn { called_at },
            PollTarget::Task(origin) => Polling::Task {
                id: origin.id,
                name: self
                    .registered()
                    .iter()
                    .find_map(|e| e.names.get(origin.id)),
                spawned_at: origin.location,
            },
        }
    }
}

/// A snapshot of the loops running on this thread, outermost first: for each
/// depth, the executor, the call that runs the loop (with where it was made)
/// and what the loop is polling (a task with its id, name and spawn
/// location, or a `block_on` future with its call's location). Its
/// `Display` is the dump the deadlock and depth-limit panics print.
///
/// Callable anywhere on the thread: from a task at any depth (a host shows
/// it on Ctrl-C, say), or outside any loop, where it is empty. It does not
/// change what runs.
///
/// # Examples
///
/// ```
/// use nestloop::Polling;
///
/// assert!(nestloop::frames().is_empty());
/// let handle = nestloop::TaskBuilder::new().name("outer").spawn(async {
///     // A sync helper nests a block_on; inside it, two loops run.
///     nestloop::block_on(async {
///         let frames = nestloop::frames();
///         println!("{frames}");
///         assert_eq!(frames.len(), 2);
///         // Depth 1 polls the task that called the nested block_on...
///         assert!(matches!(
///             frames[0].polling(),
///             Polling::Task { name: Some(name), .. } if name == "outer"
///         ));
///         // ...and depth 2 its own future.
///         assert!(matches!(frames[1].polling(), Polling::BlockOn { .. }));
///     })
/// });
/// nestloop::block_on(handle).unwrap();
/// ```
pub fn frames() -> Frames {
    super::try_with(|ts| ts.snapshot(Innermost::Polling)).unwrap_or_default()
}
