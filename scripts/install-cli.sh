#!/usr/bin/env bash
# Builds the `syncdesk` CLI (release) and puts it on PATH: /usr/local/bin as root, else
# ~/.local/bin. scripts/demo.sh and scripts/desktop.sh run it, so every `syncdesk …` command
# in the README and docs works as typed after the quick start.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/env.sh
cargo build --release --locked -p syncdesk-cli
if [ "$(id -u)" -eq 0 ]; then dest=/usr/local/bin; else dest="$HOME/.local/bin"; mkdir -p "$dest"; fi
install -m 0755 "$CARGO_TARGET_DIR/release/syncdesk" "$dest/syncdesk"
case ":$PATH:" in
  *":$dest:"*) echo "install-cli: syncdesk is on PATH ($dest/syncdesk)" ;;
  *) echo "install-cli: installed $dest/syncdesk; add $dest to PATH to type \`syncdesk\`" ;;
esac
