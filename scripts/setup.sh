#!/usr/bin/env bash
# Installs what Syncdesk needs to build and test on Debian/Ubuntu (run as root, or with sudo
# available). Safe to run again: it installs only what is missing.
set -euo pipefail

packages=(
  build-essential pkg-config          # C toolchain for -sys crates
  libdbus-1-dev                       # keyring's Secret Service client (D-Bus)
  dbus dbus-daemon dbus-x11           # a session bus (dbus-run-session) for the keychain tests
  gnome-keyring libsecret-tools       # a real Secret Service, and secret-tool to inspect it
  procps psmisc                       # ps/kill for the restart tests
  ca-certificates
)

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "setup: installing ${missing[*]}"
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq -o DPkg::Lock::Timeout=600 --no-install-recommends "${missing[@]}" >/dev/null
fi

if ! command -v cargo >/dev/null 2>&1; then
  for d in "$HOME/.cargo/bin" /usr/local/cargo/bin; do [ -x "$d/cargo" ] && export PATH="$d:$PATH"; done
fi
command -v cargo >/dev/null 2>&1 || { echo "setup: no Rust toolchain (cargo) found; install Rust 1.85 or newer with rustup" >&2; exit 1; }
echo "setup: ok ($(cargo --version))"
