#!/usr/bin/env bash
# Team mode's figures (docs/performance.md "Team mode"): the same full pull into SQLite and
# into PostgreSQL, then 1, 2 and 4 workers sharing one PostgreSQL database, on a private
# PostgreSQL server this script starts and removes (scripts/with-postgres.sh). Arguments go
# to syncdesk-bench, e.g. `--team-pull 20000 --team-jobs 16`; `--smoke` is the short run CI
# makes (a debug build, small sizes).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh >/dev/null
. scripts/env.sh
if [ "${1:-}" = "--smoke" ]; then
  shift
  cargo build --locked -p syncdesk-bench
  bin="$CARGO_TARGET_DIR/debug/syncdesk-bench"
  set -- --team-pull 2000 --team-jobs 8 --team-job-records 200 --team-workers 1,2 "$@"
else
  cargo build --release --locked -p syncdesk-bench
  bin="$CARGO_TARGET_DIR/release/syncdesk-bench"
fi
exec bash scripts/with-postgres.sh bash -c 'exec "$0" --team "$SYNCDESK_TEST_POSTGRES" "$@"' "$bin" "$@"
