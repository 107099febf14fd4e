#!/usr/bin/env bash
# Runs a command with a private, throwaway PostgreSQL server (RECIPES): its own data directory
# and a free port on 127.0.0.1, started from the distribution's packages (scripts/setup.sh
# installs them) and removed afterwards; no system cluster is touched. The command finds the
# server in SYNCDESK_TEST_POSTGRES (a URL to its `postgres` database: tests create a database
# each) and PGBIN (the server's programs, for tests that stop and start it). The server takes
# TLS with a certificate for 127.0.0.1 and localhost from a throwaway authority (whose own
# certificate is SYNCDESK_TEST_PGCERT), so clients that prefer TLS, the driver's default, use it.
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
# A throwaway certificate authority, and the server's certificate signed by it (TLS clients
# refuse a CA certificate used as a server's own).
{
  openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj /CN=syncdesk-test-ca \
    -keyout "$PGROOT/ca.key" -out "$PGROOT/ca.crt"
  openssl req -newkey rsa:2048 -nodes -subj /CN=localhost \
    -keyout "$PGROOT/server.key" -out "$PGROOT/server.csr"
  printf 'subjectAltName=IP:127.0.0.1,DNS:localhost\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n' >"$PGROOT/server.ext"
  openssl x509 -req -in "$PGROOT/server.csr" -CA "$PGROOT/ca.crt" -CAkey "$PGROOT/ca.key" \
    -CAcreateserial -days 2 -extfile "$PGROOT/server.ext" -out "$PGROOT/server.crt"
} >"$PGROOT/openssl.log" 2>&1 || { cat "$PGROOT/openssl.log" >&2; exit 1; }
chmod 600 "$PGROOT/server.key"
if [ "$(id -u)" -eq 0 ]; then chown postgres: "$PGROOT/server.key" "$PGROOT/server.crt"; fi
# Tests open a database each, and several pools at once: room for them.
pg_ctl() { "${AS[@]}" "$PGBIN/pg_ctl" -D "$PGDATA" -l "$PGROOT/server.log" "$@"; }
pg_ctl -w -t 30 -o "-p $PGPORT -c listen_addresses=127.0.0.1 -k $PGROOT -c max_connections=400 -c fsync=off -c ssl=on -c ssl_cert_file=$PGROOT/server.crt -c ssl_key_file=$PGROOT/server.key" start >/dev/null
cleanup() {
  pg_ctl -m immediate -w stop >/dev/null 2>&1 || true
  rm -rf "$PGROOT"
}
trap cleanup EXIT
export SYNCDESK_TEST_POSTGRES="postgres://postgres@127.0.0.1:$PGPORT/postgres"
export SYNCDESK_TEST_PGCERT="$PGROOT/ca.crt"
export SYNCDESK_TEST_PGDATA="$PGDATA" SYNCDESK_TEST_PGPORT="$PGPORT" SYNCDESK_TEST_PGROOT="$PGROOT" PGBIN
"$@"
