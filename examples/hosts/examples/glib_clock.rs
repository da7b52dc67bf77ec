//! A GLib host: the main loop owns the thread, a clock ticks every 100 ms,
//! and a callback (a GTK button's "clicked" handler would be the same)
//! blocks on async work with `nestloop::block_on` while the clock keeps
//! ticking, because nestloop's loop iterates GLib's main context while it
//! waits. Meanwhile a nestloop task runs under GLib's main loop.
//!
//! ```sh
//! cargo run -p nestloop-hosts --example glib_clock --features glib
//! ```

use std::cell::Cell;
use std::rc::Rc;
use std::time::{Duration, Instant};

use glib::{ControlFlow, MainContext, MainLoop};
use nestloop::Executor;
use nestloop_hosts::fetch;

fn main() {
    let start = Instant::now();
    let ex = Executor::builder().glib().build();
    let context = MainContext::default();
    let main_loop = MainLoop::new(Some(&context), false);
    let since = move || start.elapsed().as_millis();

    // The clock: a plain GLib timeout.
    let ticks = Rc::new(Cell::new(0));
    let t = ticks.clone();
    glib::timeout_add_local(Duration::from_millis(100), move || {
        t.set(t.get() + 1);
        println!("{:>4} ms  clock tick {}", since(), t.get());
        ControlFlow::Continue
    });

    // A nestloop task under GLib's main loop.
    ex.spawn(async move {
        let mut beat = nestloop::time::interval(Duration::from_millis(250));
        for n in 1..=3 {
            beat.tick().await;
            println!("{:>4} ms  nestloop task beat {n}", since());
        }
    });

    // The "button": at 150 ms its handler blocks on the fetch.
    let quit = main_loop.clone();
    glib::timeout_add_local_once(Duration::from_millis(150), move || {
        println!("{:>4} ms  clicked: handler blocks on fetch()", since());
        let before = ticks.get();
        let body = nestloop::block_on(fetch(&[("header", 150), ("body", 300)]));
        println!(
            "{:>4} ms  handler got {body:?}; the clock ticked {} times meanwhile",
            since(),
            ticks.get() - before
        );
        glib::timeout_add_local_once(Duration::from_millis(350), move || quit.quit());
    });

    main_loop.run();
    println!("{:>4} ms  main loop done", since());
}
