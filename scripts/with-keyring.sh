#!/usr/bin/env bash
# Runs a command with a real, unlocked gnome-keyring Secret Service on a private D-Bus
# session bus (RECIPES). Call it through dbus-run-session:
#   dbus-run-session -- scripts/with-keyring.sh <command...>
set -euo pipefail
KRHOME=$(mktemp -d)
export XDG_DATA_HOME="$KRHOME/data" XDG_RUNTIME_DIR="$KRHOME/run" HOME_KEYRING_DIR="$KRHOME"
mkdir -p "$XDG_DATA_HOME" "$XDG_RUNTIME_DIR"; chmod 700 "$XDG_RUNTIME_DIR"
eval "$(echo -n 'ci-pass' | gnome-keyring-daemon --unlock --components=secrets)"
eval "$(gnome-keyring-daemon --start --components=secrets)"
export SYNCDESK_KEYRING_READY=1
trap 'kill "${GNOME_KEYRING_PID:-0}" 2>/dev/null || true; rm -rf "$KRHOME"' EXIT
"$@"
