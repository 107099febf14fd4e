#!/usr/bin/env bash
# Sets up and runs the whole test suite: formatting, lints, unit and integration tests,
# the keychain tests against a real gnome-keyring, and the process restart tests.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
. scripts/env.sh

echo "== cargo fmt"
cargo fmt --all -- --check
echo "== cargo clippy"
cargo clippy --workspace --all-targets --locked -- -D warnings
echo "== build"
cargo build --workspace --all-targets --locked
echo "== tests (with a real Secret Service on a private session bus)"
set +e
dbus-run-session -- bash scripts/with-keyring.sh cargo test --workspace --locked 2>&1 | tee "${CARGO_TARGET_DIR}/test-output.txt"
status=${PIPESTATUS[0]}
set -e
passed=$(grep -Eo '^test result: ok\. [0-9]+ passed' "${CARGO_TARGET_DIR}/test-output.txt" | awk '{s+=$4} END {print s+0}')
failed=$(grep -Eo '[0-9]+ failed' "${CARGO_TARGET_DIR}/test-output.txt" | awk '{s+=$1} END {print s+0}')
echo "$passed passed, $failed failed"
exit "$status"
