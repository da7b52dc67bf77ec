//! Copies of nestloop in one process (R1): shared objects that each link
//! nestloop, as each cell of an evcxr notebook and each `cdylib` plugin
//! does. Copies of the same build share one state per thread: a task one
//! spawns runs under another's loop, its timers fire there, its handle is
//! awaited there. A copy of a different build keeps its own state, and a
//! loop that would wait while such a copy's work waits on the thread says
//! so with a `nestloop:` panic instead of stranding it.
//!
//! The shared objects (`tests-integration/plugins`) are built by this test
//! with cargo, into `target/plugins`: plugin-a and plugin-b together (one
//! build), plugin-c alone with feature `macros` (another build).

#[path = "../../tests/common/mod.rs"]
mod common;

use std::path::Path;
use std::process::Command;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicUsize, Ordering};

use common::watchdog;
use libloading::{Library, Symbol};

/// A loaded plugin and its functions.
struct Plugin {
    library: Library,
}

type Spawn = unsafe extern "C" fn(*const AtomicUsize, u32, u32) -> *mut Handle;
type Join = unsafe extern "C" fn(*mut Handle) -> u32;
type Sleep = unsafe extern "C" fn(u64, *mut u8, usize) -> usize;
type Depth = unsafe extern "C" fn() -> usize;

/// A plugin's boxed `JoinHandle`, opaque here.
enum Handle {}

impl Plugin {
    fn load(path: &Path) -> Plugin {
        // SAFETY: the plugin's initialisers are Rust's (none of its own).
        let library = unsafe { Library::new(path) }.unwrap();
        Plugin { library }
    }

    fn symbol<T>(&self, name: &[u8]) -> Symbol<'_, T> {
        // SAFETY: the types above are those of the plugin's functions.
        unsafe { self.library.get(name) }.unwrap()
    }

    /// Spawns a task that ticks `count` times (1 ms apart), then returns
    /// `value`.
    fn spawn(&self, ticks: &'static AtomicUsize, count: u32, value: u32) -> *mut Handle {
        // SAFETY: `ticks` is static.
        unsafe { self.symbol::<Spawn>(b"plugin_spawn")(ticks, count, value) }
    }

    /// Waits for a handle of a copy of the same build.
    fn join(&self, handle: *mut Handle) -> u32 {
        // SAFETY: made by `spawn` of a copy of this build, given back once.
        unsafe { self.symbol::<Join>(b"plugin_join")(handle) }
    }

    /// Sleeps in the plugin's `block_on`; `Err` with the panic's message.
    fn sleep(&self, ms: u64) -> Result<(), String> {
        let mut message = vec![0u8; 4096];
        // SAFETY: the buffer holds its length.
        let len = unsafe {
            self.symbol::<Sleep>(b"plugin_sleep")(ms, message.as_mut_ptr(), message.len())
        };
        match len {
            0 => Ok(()),
            len => Err(String::from_utf8_lossy(&message[..len]).into_owned()),
        }
    }

    fn depth(&self) -> usize {
        // SAFETY: no arguments.
        unsafe { self.symbol::<Depth>(b"plugin_depth")() }
    }
}

/// The three plugins, built and loaded once, and never unloaded: a copy of
/// nestloop stays loaded while its state may be in use (as evcxr keeps
/// every cell's shared object), here for the whole process.
fn plugins() -> &'static (Plugin, Plugin, Plugin) {
    static LOADED: OnceLock<(Plugin, Plugin, Plugin)> = OnceLock::new();
    LOADED.get_or_init(|| {
        let root = Path::new(env!("CARGO_MANIFEST_DIR"))
            .parent()
            .unwrap()
            .to_owned();
        let target = root.join("target").join("plugins");
        let manifest = root.join("tests-integration/plugins/Cargo.toml");
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        // Two invocations: features are unified only among what one builds.
        for packages in [
            &["-p", "plugin-a", "-p", "plugin-b"][..],
            &["-p", "plugin-c"],
        ] {
            let status = Command::new(&cargo)
                .arg("build")
                .arg("--manifest-path")
                .arg(&manifest)
                .arg("--target-dir")
                .arg(&target)
                .args(packages)
                .env_remove("RUSTFLAGS")
                .status()
                .unwrap();
            assert!(status.success(), "building the plugins failed");
        }
        let path = |name: &str| {
            target.join("debug").join(format!(
                "{}plugin_{name}{}",
                std::env::consts::DLL_PREFIX,
                std::env::consts::DLL_SUFFIX
            ))
        };
        let plugins = (
            Plugin::load(&path("a")),
            Plugin::load(&path("b")),
            Plugin::load(&path("c")),
        );
        // Each copy first touches nestloop here, one after the other: the
        // first copy of a build publishes the process's hub, and the first
        // build the list of builds, in environment variables; two doing so
        // at the same moment on two threads (the tests run in parallel)
        // may each publish their own, and then not share (a limit the
        // crate docs' "Several copies in one process" state: plugins and
        // cells load one after another).
        plugins.0.depth();
        plugins.1.depth();
        plugins.2.depth();
        plugins
    })
}

/// Counters that outlive every task, one per test.
static TICKS: [AtomicUsize; 3] = [const { AtomicUsize::new(0) }; 3];

#[test]
fn a_task_one_copy_spawns_runs_under_another_copys_loop_and_its_timers_fire() {
    watchdog(move || {
        let (a, b, _) = plugins();
        let ticks = &TICKS[0];
        let handle = a.spawn(ticks, 5, 42);
        // B's loop runs A's task: its five 1 ms timers fire during the
        // 100 ms sleep.
        b.sleep(100).unwrap();
        assert_eq!(ticks.load(Ordering::SeqCst), 5);
        assert_eq!(b.join(handle), 42);
        assert_eq!((a.depth(), b.depth()), (0, 0));
    });
}

#[test]
fn a_handle_one_copy_made_is_awaited_by_another() {
    watchdog(move || {
        let (a, b, _) = plugins();
        let ticks = &TICKS[1];
        let from_a = a.spawn(ticks, 3, 7);
        let from_b = b.spawn(ticks, 3, 8);
        assert_eq!(b.join(from_a) + a.join(from_b), 15);
        assert_eq!(ticks.load(Ordering::SeqCst), 6);
    });
}

#[test]
fn a_copy_of_another_build_keeps_its_own_state_and_a_loop_says_what_it_strands() {
    watchdog(move || {
        let (_, b, c) = plugins();
        let ticks = &TICKS[2];
        let from_c = c.spawn(ticks, 2, 9);
        // B's loop cannot run C's task: about to wait, it says so (at once:
        // the long sleep only keeps its timer from firing before the loop
        // would wait, also under valgrind).
        let message = b.sleep(10_000).unwrap_err();
        assert!(
            message.starts_with("nestloop: this thread runs two different builds of nestloop"),
            "{message}"
        );
        assert_eq!(
            ticks.load(Ordering::SeqCst),
            0,
            "C's task ran under B's loop"
        );
        // C's own loop runs it.
        assert_eq!(c.join(from_c), 9);
        assert_eq!(ticks.load(Ordering::SeqCst), 2);
        // With nothing of C waiting, B's loop waits as usual.
        b.sleep(1).unwrap();
    });
}
