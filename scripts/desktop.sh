#!/usr/bin/env bash
# Sets up, builds the UI and the desktop app, and launches it. Data goes to the OS data
# directory (or SYNCDESK_DATA_DIR); secrets to the OS keychain.
# With no graphical session (no DISPLAY or WAYLAND_DISPLAY, e.g. a fresh server shell) there
# is no window to open: it says so and runs the CLI's `syncdesk demo` instead, the same
# engine through every failure rule.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
. scripts/env.sh
if [ -z "${DISPLAY:-}${WAYLAND_DISPLAY:-}" ]; then
  echo "desktop: no graphical session here (DISPLAY and WAYLAND_DISPLAY are unset)," >&2
  echo "desktop: so there is no window to open; running the CLI demo instead." >&2
  exec bash scripts/demo.sh "$@"
fi
bash scripts/install-cli.sh   # `syncdesk …` on PATH too, as the README's commands expect
(cd ui && npm run build --silent)
cargo build --release --locked -p syncdesk-desktop
exec "$CARGO_TARGET_DIR/release/syncdesk-desktop" "$@"
