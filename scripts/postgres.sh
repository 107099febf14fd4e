#!/usr/bin/env bash
# A PostgreSQL server for trying team mode on one machine: its own data directory and port
# (5433, beside any system server), listening on 127.0.0.1 only, with a `syncdesk` database.
#   bash scripts/postgres.sh start    # installs what is needed, starts it, prints the URL
#   bash scripts/postgres.sh stop
#   bash scripts/postgres.sh url      # the URL to give --database / SYNCDESK_DATABASE
# Data: /var/lib/syncdesk-postgres as root, else ~/.local/share/syncdesk-postgres
# (SYNCDESK_PG_DIR to change it); port: SYNCDESK_PG_PORT. For a real team, use your own
# server and a role with a password (docs/team.md).
set -euo pipefail
cd "$(dirname "$0")/.."
PORT="${SYNCDESK_PG_PORT:-5433}"
AS=()
if [ "$(id -u)" -eq 0 ]; then
  AS=(runuser -u postgres --)
  DIR="${SYNCDESK_PG_DIR:-/var/lib/syncdesk-postgres}"
else
  DIR="${SYNCDESK_PG_DIR:-$HOME/.local/share/syncdesk-postgres}"
fi
URL="postgres://postgres@127.0.0.1:$PORT/syncdesk"
pgbin() { ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1; }
pg_ctl() { "${AS[@]}" "$(pgbin)/pg_ctl" -D "$DIR/data" -l "$DIR/server.log" "$@"; }

case "${1:-}" in
  start)
    [ -n "$(pgbin)" ] || bash scripts/setup.sh >/dev/null
    if [ ! -d "$DIR/data" ]; then
      mkdir -p "$DIR"
      [ ${#AS[@]} -gt 0 ] && chown postgres: "$DIR"
      "${AS[@]}" "$(pgbin)/initdb" -D "$DIR/data" -U postgres --auth=trust -E UTF8 --locale=C.UTF-8 >"$DIR/initdb.log"
    fi
    if ! pg_ctl status >/dev/null 2>&1; then
      pg_ctl -w -t 30 -o "-p $PORT -c listen_addresses=127.0.0.1 -k $DIR" start >/dev/null
    fi
    "${AS[@]}" "$(pgbin)/psql" -h 127.0.0.1 -p "$PORT" -U postgres -d postgres -qAt \
      -c "SELECT 1 FROM pg_database WHERE datname = 'syncdesk'" | grep -q 1 \
      || "${AS[@]}" "$(pgbin)/psql" -h 127.0.0.1 -p "$PORT" -U postgres -d postgres -qc "CREATE DATABASE syncdesk"
    echo "$URL"
    ;;
  stop) pg_ctl -m fast -w stop ;;
  url) echo "$URL" ;;
  *) echo "usage: bash scripts/postgres.sh start|stop|url" >&2; exit 2 ;;
esac
