#!/usr/bin/env bash
# Runs a command with a private, throwaway PostgreSQL server (RECIPES): its own data directory
# and a free port on 127.0.0.1, started from the distribution's packages (scripts/setup.sh
# installs them) and removed afterwards; no system cluster is touched. The command finds the
# server in SYNCDESK_TEST_POSTGRES (a URL to its `postgres` database: tests create a database
# each) and PGBIN (the server's programs, for tests that stop and start it).
#   scripts/with-postgres.sh <command...>
set -euo pipefail
PGBIN=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)
[ -x "$PGBIN/initdb" ] || { echo "with-postgres: no PostgreSQL server found; run scripts/setup.sh" >&2; exit 1; }
PGROOT=$(mktemp -d)
PGDATA="$PGROOT/data"
PGPORT=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
AS=()
if [ "$(id -u)" -eq 0 ]; then AS=(runuser -u postgres --); chown postgres: "$PGROOT"; fi
"${AS[@]}" "$PGBIN/initdb" -D "$PGDATA" -U postgres --auth=trust -E UTF8 --locale=C.UTF-8 >"$PGROOT/initdb.log" 2>&1 \
  || { cat "$PGROOT/initdb.log" >&2; exit 1; }
# Tests open a database each, and several pools at once: room for them.
pg_ctl() { "${AS[@]}" "$PGBIN/pg_ctl" -D "$PGDATA" -l "$PGROOT/server.log" "$@"; }
pg_ctl -w -t 30 -o "-p $PGPORT -c listen_addresses=127.0.0.1 -k $PGROOT -c max_connections=400 -c fsync=off" start >/dev/null
cleanup() {
  pg_ctl -m immediate -w stop >/dev/null 2>&1 || true
  rm -rf "$PGROOT"
}
trap cleanup EXIT
export SYNCDESK_TEST_POSTGRES="postgres://postgres@127.0.0.1:$PGPORT/postgres"
export SYNCDESK_TEST_PGDATA="$PGDATA" SYNCDESK_TEST_PGPORT="$PGPORT" SYNCDESK_TEST_PGROOT="$PGROOT" PGBIN
"$@"
