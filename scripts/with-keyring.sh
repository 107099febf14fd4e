#!/usr/bin/env bash
# Runs a command with a real, unlocked gnome-keyring Secret Service on a private D-Bus
# session bus (RECIPES). Call it through dbus-run-session:
#   dbus-run-session -- scripts/with-keyring.sh <command...>
set -euo pipefail
KRHOME=$(mktemp -d)
export XDG_DATA_HOME="$KRHOME/data" XDG_RUNTIME_DIR="$KRHOME/run"
mkdir -p "$XDG_DATA_HOME" "$XDG_RUNTIME_DIR"; chmod 700 "$XDG_RUNTIME_DIR"
before=$(pgrep -x gnome-keyring-d || true)
# The daemons' own output goes to a file: they outlive this script's pipes otherwise.
eval "$(echo -n 'ci-pass' | gnome-keyring-daemon --unlock --components=secrets 2>>"$KRHOME/daemon.log")"
eval "$(gnome-keyring-daemon --start --components=secrets 2>>"$KRHOME/daemon.log")"
started=$(pgrep -x gnome-keyring-d | grep -vxF "${before:-none}" || true)
cleanup() {
  # Only the daemons started here: never `kill 0` (that is the whole process group).
  for pid in $started; do kill "$pid" 2>/dev/null || true; done
  rm -rf "$KRHOME"
}
trap cleanup EXIT
export SYNCDESK_KEYRING_READY=1
"$@"
