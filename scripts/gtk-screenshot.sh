#!/usr/bin/env bash
# Runs the GTK4 example (examples/gtk) under Xvfb: its button clicks itself
# and its handler blocks 600 ms in nestloop::block_on. Two screenshots taken
# while the handler blocks must differ (the clock label was redrawn: the
# window stayed alive), and the app must report clock ticks during the
# handler. Needs libgtk-4-dev, xvfb and imagemagick (Debian); not run by CI
# (building GTK's bindings takes minutes), run it after touching the glib
# feature. Screenshots land in target/gtk/.
set -euo pipefail
cd "$(dirname "$0")/.."
out=target/gtk
mkdir -p "$out"
(cd examples/gtk && cargo build -q --release --target-dir ../../target/gtk-build)
bin=target/gtk-build/release/nestloop-gtk

export GDK_BACKEND=x11 GSK_RENDERER=cairo NESTLOOP_GTK_DEMO=1
xvfb-run -a -s "-screen 0 640x400x24" bash -c "
    $bin > $out/app.log 2>&1 &
    app=\$!
    # The button clicks itself at 300 ms; the handler blocks until ~900 ms.
    sleep 0.5; import -window root $out/during-1.png
    sleep 0.3; import -window root $out/during-2.png
    wait \$app
"
cat "$out/app.log"
grep -q 'the clock ticked [3-9] times meanwhile' "$out/app.log" ||
    { echo "the clock did not tick while the handler blocked"; exit 1; }
diff_pixels=$(compare -metric AE "$out/during-1.png" "$out/during-2.png" null: 2>&1 || true)
echo "pixels that changed between the two screenshots taken during the handler: $diff_pixels"
[ "${diff_pixels%% *}" -gt 0 ] || { echo "the window was not redrawn while the handler blocked"; exit 1; }
echo "ok: screenshots in $out/"
