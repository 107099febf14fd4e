#!/usr/bin/env bash
# Sets up, builds and runs `syncdesk demo`: the sandbox provider, a connection, a job per
# entity, clean runs and every failure rule, on the embedded SQLite store. The CLI is
# installed on PATH first (scripts/install-cli.sh).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
. scripts/env.sh
bash scripts/install-cli.sh
exec "$CARGO_TARGET_DIR/release/syncdesk" demo "$@"
