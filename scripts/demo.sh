#!/usr/bin/env bash
# Sets up, builds and runs `syncdesk demo`: the sandbox provider, a connection, a job per
# entity, clean runs and every failure rule, on the embedded SQLite store.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
. scripts/env.sh
cargo build --release --locked -p syncdesk-cli
exec "$CARGO_TARGET_DIR/release/syncdesk" demo "$@"
