#!/usr/bin/env bash
# Installs what Syncdesk needs to build and test on Debian/Ubuntu (run as root, or with sudo
# available): the engine's keychain client, the Tauri 2 desktop app's WebKit stack, and the
# display, notification daemon, WebDriver and browser its tests drive. Safe to run again: it
# installs only what is missing, and runs `npm ci` in ui/ only when its dependencies are missing or stale.
set -euo pipefail
cd "$(dirname "$0")/.."

packages=(
  build-essential pkg-config curl file   # C toolchain for -sys crates
  libdbus-1-dev                          # keyring's Secret Service client (D-Bus)
  dbus dbus-daemon dbus-x11              # a session bus (dbus-run-session) for keychain and notifications
  gnome-keyring libsecret-tools          # a real Secret Service, and secret-tool to inspect it
  procps psmisc                          # ps/kill for the restart tests
  postgresql                             # team mode's shared store; tests start a private server (scripts/with-postgres.sh)
  openssl                                # that server's self-signed certificate (TLS to the database)
  ca-certificates
  # Tauri 2 on Linux (RECIPES): WebKitGTK, tray, icons, clipboard/keyboard helpers
  libwebkit2gtk-4.1-dev libayatana-appindicator3-dev librsvg2-dev libxdo-dev libssl-dev
  xdg-utils                              # xdg-open: browser sign-in opens the system browser
  # The desktop tests: a virtual display, WebDriver for the real app, screenshots,
  # a real notification daemon, and a browser for the UI's own tests
  xvfb xauth webkit2gtk-driver xdotool imagemagick dunst chromium
  python3-xlib                           # the e2e closes the window as a window manager would (WM_DELETE_WINDOW)
  # The package test (scripts/test-package.sh): desktop entry validator, rpm to read the .rpm
  desktop-file-utils rpm
)

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "setup: installing ${missing[*]}"
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  # Syncdesk starts its own PostgreSQL servers where it needs them: the package must not
  # create (and start) a system-wide cluster of its own.
  if [ ! -e /etc/postgresql-common/createcluster.d/syncdesk.conf ]; then
    $SUDO mkdir -p /etc/postgresql-common/createcluster.d
    echo "create_main_cluster = false" | $SUDO tee /etc/postgresql-common/createcluster.d/syncdesk.conf >/dev/null
  fi
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq -o DPkg::Lock::Timeout=600 --no-install-recommends "${missing[@]}" >/dev/null
fi

if ! command -v cargo >/dev/null 2>&1; then
  for d in "$HOME/.cargo/bin" /usr/local/cargo/bin; do [ -x "$d/cargo" ] && export PATH="$d:$PATH"; done
fi
command -v cargo >/dev/null 2>&1 || { echo "setup: no Rust toolchain (cargo) found; install Rust 1.90 or newer with rustup" >&2; exit 1; }
command -v npm >/dev/null 2>&1 || { echo "setup: no Node.js/npm found; install Node 20.19 or newer" >&2; exit 1; }

# The UI's dependencies, from the lockfile: only when ui/node_modules is missing or older than
# the lockfile (npm writes node_modules/.package-lock.json on every install).
if [ -f ui/package-lock.json ] && [ ! ui/node_modules/.package-lock.json -nt ui/package-lock.json ]; then
  echo "setup: npm ci in ui/"
  (cd ui && npm ci --no-audit --no-fund --loglevel=error)
fi
echo "setup: ok ($(cargo --version), node $(node --version))"
