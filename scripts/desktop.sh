#!/usr/bin/env bash
# Sets up, builds the UI and the desktop app, and launches it. Data goes to the OS data
# directory (or SYNCDESK_DATA_DIR); secrets to the OS keychain.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
. scripts/env.sh
(cd ui && npm run build)
cargo build --release --locked -p syncdesk-desktop
exec "$CARGO_TARGET_DIR/release/syncdesk-desktop" "$@"
