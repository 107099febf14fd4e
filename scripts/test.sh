#!/usr/bin/env bash
# Sets up and runs the whole test suite: formatting, lints, unit and integration tests,
# the keychain tests against a real gnome-keyring, and the process restart tests; then the
# engine's tests once more on a private PostgreSQL server (team mode's store).
# Then the contract checks' own tests (scripts/contract.sh; the Rust contract tests use the
# validator it sets up before cargo test runs) and the UI's component and browser tests
# (scripts/test-ui.sh). The desktop shell
# (src-tauri) and the end-to-end test have their own script, scripts/test-desktop.sh, run
# last; SYNCDESK_TEST_DESKTOP=0 skips it (it builds WebKit code: see docs/desktop.md).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
. scripts/env.sh
# The desktop shell is linted, built and tested by scripts/test-desktop.sh.
not_desktop=(--workspace --exclude syncdesk-desktop)

echo "== cargo fmt"
cargo fmt --all -- --check
echo "== cargo clippy"
cargo clippy "${not_desktop[@]}" --all-targets --locked -- -D warnings
echo "== build"
cargo build "${not_desktop[@]}" --all-targets --locked
echo "== contract checks: set up (the providers' documents and the validator, cached under ~/.cache)"
bash scripts/contract.sh setup
echo "== tests (with a real Secret Service on a private session bus)"
set +e
# A private PostgreSQL server for team mode's tests (scripts/with-postgres.sh); the engine's
# own tests use SQLite in this run.
dbus-run-session -- bash scripts/with-keyring.sh bash scripts/with-postgres.sh \
  cargo test "${not_desktop[@]}" --locked 2>&1 | tee "${CARGO_TARGET_DIR}/test-output.txt"
status=${PIPESTATUS[0]}
echo "== engine tests again, on PostgreSQL"
SYNCDESK_TEST_STORE=postgres dbus-run-session -- bash scripts/with-keyring.sh bash scripts/with-postgres.sh \
  cargo test -p syncdesk-engine --locked 2>&1 | tee -a "${CARGO_TARGET_DIR}/test-output.txt"
[ "${PIPESTATUS[0]}" -eq 0 ] || status=1
echo "== team mode benchmark, smoke (scripts/bench-team.sh --smoke)"
bash scripts/bench-team.sh --smoke 2>&1 | grep -v '^\s*\(Compiling\|Finished\)'
[ "${PIPESTATUS[0]}" -eq 0 ] || status=1
set -e
passed=$(grep -Eo '^test result: ok\. [0-9]+ passed' "${CARGO_TARGET_DIR}/test-output.txt" | awk '{s+=$4} END {print s+0}')
failed=$(grep -Eo '[0-9]+ failed' "${CARGO_TARGET_DIR}/test-output.txt" | awk '{s+=$1} END {print s+0}')
# The contract validator's own tests, then the UI's component and browser tests (both print
# TAP counts: "# pass N" / "# fail N").
set +e
bash scripts/contract.sh test 2>&1 | tee "${CARGO_TARGET_DIR}/test-contract-output.txt"
[ "${PIPESTATUS[0]}" -eq 0 ] || status=1
set -e
passed=$((passed + $(grep -Eo '^# pass [0-9]+' "${CARGO_TARGET_DIR}/test-contract-output.txt" | awk '{s+=$3} END {print s+0}')))
failed=$((failed + $(grep -Eo '^# fail [0-9]+' "${CARGO_TARGET_DIR}/test-contract-output.txt" | awk '{s+=$3} END {print s+0}')))
set +e
bash scripts/test-ui.sh 2>&1 | tee "${CARGO_TARGET_DIR}/test-ui-output.txt"
[ "${PIPESTATUS[0]}" -eq 0 ] || status=1
set -e
passed=$((passed + $(grep -Eo '^# pass [0-9]+' "${CARGO_TARGET_DIR}/test-ui-output.txt" | awk '{s+=$3} END {print s+0}')))
failed=$((failed + $(grep -Eo '^# fail [0-9]+' "${CARGO_TARGET_DIR}/test-ui-output.txt" | awk '{s+=$3} END {print s+0}')))
if [ "${SYNCDESK_TEST_DESKTOP:-1}" = 1 ]; then
  set +e
  bash scripts/test-desktop.sh 2>&1 | tee "${CARGO_TARGET_DIR}/test-desktop-summary.txt"
  [ "${PIPESTATUS[0]}" -eq 0 ] || status=1
  set -e
  line=$(tail -n 1 "${CARGO_TARGET_DIR}/test-desktop-summary.txt")
  passed=$((passed + $(echo "$line" | awk '{print $1+0}')))
  failed=$((failed + $(echo "$line" | awk '{print $3+0}')))
fi
echo "$passed passed, $failed failed"
exit "$status"
