#!/usr/bin/env bash
# The desktop app's tests: lints of the shell, its keychain test (real gnome-keyring),
# notification test (real dunst under Xvfb) and team mode test (a private PostgreSQL server), the end-to-end test of the real binary through WebKitWebDriver,
# the package smoke test (that build bundled as .deb/.rpm and checked), and the smoke of the
# desktop budgets' measurement (scripts/bench-desktop.sh --smoke). Prints "N passed, N failed".
# Needs the WebKit stack (scripts/setup.sh installs it). Cold, on 2 cores, the app's debug
# build takes about 42 minutes and the first clippy check of its dependencies about 22;
# with a warm target dir each is a few minutes.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
. scripts/env.sh
out="${CARGO_TARGET_DIR}/test-desktop-output.txt"
mkdir -p "$CARGO_TARGET_DIR"; : > "$out"

# The binary embeds ui/dist: scripts/test-ui.sh (run by test.sh before this) builds it.
[ -f ui/dist/index.html ] || (cd ui && npm run build --silent)
echo "== cargo clippy (desktop)"
cargo clippy -p syncdesk-desktop --all-targets --locked -- -D warnings
echo "== build (desktop, with the bundled UI)"
cargo build -p syncdesk-desktop --all-targets --locked

status=0
set +e
echo "== desktop tests (real Secret Service, notification daemon and PostgreSQL)"
# The team mode test runs a headless `syncdesk worker` beside the app on a private
# PostgreSQL server: the CLI binary must be built.
cargo build -p syncdesk-cli --locked
dbus-run-session -- bash scripts/with-keyring.sh bash scripts/with-postgres.sh \
  cargo test -p syncdesk-desktop --locked 2>&1 | tee -a "$out"
[ "${PIPESTATUS[0]}" -eq 0 ] || status=1
echo "== end to end (the real app through WebKitWebDriver)"
bash scripts/e2e.sh 2>&1 | tee -a "$out"
[ "${PIPESTATUS[0]}" -eq 0 ] || status=1
echo "== packages (the debug build as .deb and .rpm, unpacked and checked; docs/packaging.md)"
bash scripts/package.sh --debug 2>&1 | tee -a "$out"
[ "${PIPESTATUS[0]}" -eq 0 ] || status=1
# (A failed bundling leaves no package, which the test counts as a failure.)
bash scripts/test-package.sh --debug 2>&1 | tee -a "$out"
[ "${PIPESTATUS[0]}" -eq 0 ] || status=1
echo "== desktop budgets smoke (the debug build: its size, a 5 s idle window with the window hidden; docs/performance.md)"
bash scripts/bench-desktop.sh --smoke 2>&1 | tee -a "$out"
[ "${PIPESTATUS[0]}" -eq 0 ] || status=1
set -e

# cargo: "test result: ok. N passed; M failed"; TAP (vitest, node:test): "# pass N" / "# fail N".
passed=$(grep -Eo '^test result: [a-zA-Z]+\. [0-9]+ passed' "$out" | awk '{s+=$4} END {print s+0}')
failed=$(grep -Eo '[0-9]+ passed; [0-9]+ failed' "$out" | awk '{s+=$3} END {print s+0}')
tap_pass=$(grep -Eo '^# pass [0-9]+' "$out" | awk '{s+=$3} END {print s+0}')
tap_fail=$(grep -Eo '^# fail [0-9]+' "$out" | awk '{s+=$3} END {print s+0}')
echo "$((passed + tap_pass)) passed, $((failed + tap_fail)) failed"
exit "$status"
