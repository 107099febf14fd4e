#!/usr/bin/env bash
# End to end on the real desktop app: the binary (built with the bundled UI) driven through
# WebKitWebDriver under Xvfb, on a private D-Bus session with a real gnome-keyring.
# Screenshots land in target/e2e-screens/. Assumes scripts/setup.sh ran and the binaries are
# built the way scripts/test.sh builds them (see `build` below). Build them the same way: a
# build with other packages or without `--all-targets` resolves other features and
# recompiles much of the tree.
#   bash scripts/e2e.sh
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/env.sh
bin="${SYNCDESK_DESKTOP_BIN:-$CARGO_TARGET_DIR/debug/syncdesk-desktop}"
bench="$CARGO_TARGET_DIR/debug/syncdesk-bench"
cli="$CARGO_TARGET_DIR/debug/syncdesk"
build="(cd ui && npm run build) && cargo build --workspace --exclude syncdesk-desktop --all-targets && cargo build -p syncdesk-desktop --all-targets"
for b in "$bin" "$bench" "$cli"; do
  [ -x "$b" ] || { echo "e2e: $b is missing; run: $build" >&2; exit 1; }
done
mkdir -p target/e2e-screens
logs=$(mktemp -d)
# The measurement of Failed Records at 100k rows opens a database seeded by the bench crate.
seeded="$logs/seeded-100k"
"$bench" --seed-lists "$seeded" --list-rows 100000
export SYNCDESK_DESKTOP_BIN="$bin" SYNCDESK_CLI_BIN="$cli" E2E_SCREENS="$PWD/target/e2e-screens" E2E_LOGS="$logs" E2E_SEEDED_DIR="$seeded"
set +e
# One file at a time: each starts its own app, and all want the same keyring and display.
# wizard.e2e.mjs also starts the Stripe persona with the CLI binary; background.e2e.mjs starts
# its own dunst on the session bus, closes the window with close-window.py (python3-xlib) and
# waits for a real one-minute schedule.
# The timeout is per file (the story is one file of eight steps, each bounding its own waits);
# 15 minutes leaves room for a slow, shared machine.
xvfb-run -a -s "-screen 0 1280x800x24" \
  dbus-run-session -- bash scripts/with-keyring.sh \
  node --test --test-reporter=tap --test-concurrency=1 --test-timeout=900000 \
  src-tauri/e2e/app.e2e.mjs src-tauri/e2e/wizard.e2e.mjs src-tauri/e2e/background.e2e.mjs \
  src-tauri/e2e/update.e2e.mjs \
  src-tauri/e2e/failed-100k.e2e.mjs
status=$?
set -e
if [ "$status" -ne 0 ]; then
  for f in "$logs"/webdriver*.log; do
    echo "e2e: failed; WebDriver and app log follows ($f)" >&2
    tail -n 80 "$f" >&2 || true
  done
fi
rm -rf "$seeded"
exit "$status"
