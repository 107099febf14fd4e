#!/usr/bin/env bash
# Sets up, builds and runs the benchmarks (docs/performance.md): pull throughput against the
# provider and store ceilings, peak memory, the fault profile and list latency, in one run.
# Arguments go to syncdesk-bench (`--help` lists them), e.g. `--sizes 1000000 --pages 1000`.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
. scripts/env.sh
cargo build --release --locked -p syncdesk-bench
exec "$CARGO_TARGET_DIR/release/syncdesk-bench" "$@"
