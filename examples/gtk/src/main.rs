//! A GTK4 window: a clock label that ticks every 100 ms, and a "Fetch"
//! button whose `clicked` handler blocks on async work (two nestloop tasks
//! and their timers, 600 ms) with `nestloop::block_on`. The window keeps
//! drawing and the clock keeps ticking meanwhile: nestloop's loop iterates
//! GLib's main context while it waits (`Builder::glib`).
//!
//! With `NESTLOOP_GTK_DEMO=1` the button clicks itself after 300 ms and
//! the app quits when the fetch is done, printing what happened (for
//! `scripts/gtk-screenshot.sh`, which screenshots it under Xvfb).

use std::cell::Cell;
use std::rc::Rc;
use std::time::{Duration, Instant};

use gtk4::prelude::*;
use gtk4::{Application, ApplicationWindow, Box as GtkBox, Button, Label, Orientation, glib};
use nestloop_hosts::fetch;

fn build(app: &Application) {
    let start = Instant::now();
    let demo = std::env::var_os("NESTLOOP_GTK_DEMO").is_some();
    let clock = Label::new(Some("0.0 s"));
    clock.set_css_classes(&["title-1"]);
    let status = Label::new(Some("Press Fetch"));
    let button = Button::with_label("Fetch");
    let column = GtkBox::new(Orientation::Vertical, 12);
    column.set_margin_top(24);
    column.set_margin_bottom(24);
    column.set_margin_start(24);
    column.set_margin_end(24);
    column.append(&clock);
    column.append(&button);
    column.append(&status);
    let window = ApplicationWindow::builder()
        .application(app)
        .title("nestloop + GTK")
        .default_width(360)
        .default_height(200)
        .child(&column)
        .build();

    let ticks = Rc::new(Cell::new(0u32));
    let t = ticks.clone();
    let c = clock.clone();
    glib::timeout_add_local(Duration::from_millis(100), move || {
        t.set(t.get() + 1);
        c.set_text(&format!("{:.1} s", start.elapsed().as_secs_f32()));
        glib::ControlFlow::Continue
    });

    let app = app.clone();
    button.connect_clicked(move |button| {
        button.set_sensitive(false);
        status.set_text("Fetching...");
        let before = ticks.get();
        let at = start.elapsed();
        // A synchronous handler that waits: the window stays alive.
        let body = nestloop::block_on(fetch(&[("header", 250), ("body", 600)]));
        let during = ticks.get() - before;
        status.set_text(&format!("Got {body}; the clock ticked {during} times meanwhile"));
        button.set_sensitive(true);
        println!(
            "clicked at {} ms; handler got {body:?} after {} ms; the clock ticked {during} times meanwhile",
            at.as_millis(),
            (start.elapsed() - at).as_millis()
        );
        if demo {
            let app = app.clone();
            glib::timeout_add_local_once(Duration::from_millis(200), move || app.quit());
        }
    });
    window.present();
    if demo {
        glib::timeout_add_local_once(Duration::from_millis(300), move || button.emit_clicked());
    }
}

fn main() -> glib::ExitCode {
    // On GTK's thread, before its main loop runs: nestloop's loops wait in
    // GLib's default main context.
    let _ex = nestloop::Executor::builder().glib().build();
    let app = Application::builder()
        .application_id("dev.nestloop.GtkExample")
        .build();
    app.connect_activate(build);
    app.run_with_args::<&str>(&[])
}
