#!/usr/bin/env bash
# Measures the desktop app's budgets (docs/performance.md, "Desktop budgets"): the stripped
# release binary's size, cold start to the painted dashboard, idle CPU with the window hidden
# over 60 s, and RSS at idle and with Failed Records open on 100k rows. A benchmark, not a
# test: it prints a table and a JSON line, each figure against its budget (ok / over), and
# exits non-zero only when a figure could not be measured.
#   bash scripts/bench-desktop.sh [--no-build] [--runs 5] [--idle 60] [--settle 10]
#   bash scripts/bench-desktop.sh --smoke   # CI: the debug binary, a 5 s idle window, TAP
# The full run builds the release binary the way scripts/package.sh does (it runs it: profile
# `dist`, the UI built into it, and the .deb/.rpm of that binary), and syncdesk-bench the way
# scripts/bench.sh does, which seeds the 100k-row database. `--no-build` measures what is
# built. `--smoke` builds nothing: it measures the debug binary scripts/test-desktop.sh
# built ($SYNCDESK_DESKTOP_BIN to choose another) and checks that every figure can be read.
# Everything runs under Xvfb on a private D-Bus session with a real gnome-keyring, as the
# end-to-end test does (scripts/e2e.sh).
set -euo pipefail
cd "$(dirname "$0")/.."

build=1 smoke=0 args=()
while [ $# -gt 0 ]; do
  case "$1" in
    --no-build) build=0 ;;
    --smoke) smoke=1; build=0 ;;
    --runs|--idle|--settle) [ $# -ge 2 ] || { echo "bench-desktop: $1 needs a value" >&2; exit 2; }; args+=("$1" "$2"); shift ;;
    *) echo "usage: bash scripts/bench-desktop.sh [--no-build] [--runs N] [--idle SECONDS] [--settle SECONDS] | --smoke" >&2; exit 2 ;;
  esac
  shift
done

bash scripts/setup.sh
. scripts/env.sh
under_display=(xvfb-run -a -s "-screen 0 1280x800x24" dbus-run-session -- bash scripts/with-keyring.sh)

if [ "$smoke" = 1 ]; then
  bin="${SYNCDESK_DESKTOP_BIN:-$CARGO_TARGET_DIR/debug/syncdesk-desktop}"
  [ -x "$bin" ] || { echo "bench-desktop: $bin is missing; run: (cd ui && npm run build) && cargo build -p syncdesk-desktop --all-targets --locked" >&2; exit 1; }
  exec "${under_display[@]}" node scripts/desktop-budgets.mjs --bin "$bin" --smoke
fi

bin="$CARGO_TARGET_DIR/dist/syncdesk-desktop"
bench="$CARGO_TARGET_DIR/release/syncdesk-bench"
if [ "$build" = 1 ]; then
  echo "== the release build of the app (scripts/package.sh: profile dist, the UI built in)"
  bash scripts/package.sh
  echo "== syncdesk-bench (as scripts/bench.sh builds it), to seed the 100k-row database"
  cargo build --release --locked -p syncdesk-bench
fi
for b in "$bin" "$bench"; do
  [ -x "$b" ] || { echo "bench-desktop: $b is missing; run without --no-build" >&2; exit 1; }
done

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
echo "== seed 100k executions, error-log rows and Failed Records (syncdesk-bench --seed-lists)"
"$bench" --seed-lists "$work/seeded-100k" --list-rows 100000

echo "== measure ($(nproc) cores, $(free -g | awk '/^Mem:/ {print $2}') GiB; load average $(cut -d' ' -f1-3 /proc/loadavg))"
"${under_display[@]}" node scripts/desktop-budgets.mjs --bin "$bin" --seeded "$work/seeded-100k" "${args[@]}"
