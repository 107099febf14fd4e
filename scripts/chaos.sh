#!/usr/bin/env bash
# A longer kill -9 soak: the real `syncdesk` binary killed at seeded random moments across
# `job run`, `worker` and `dead-letters retry`, the store's invariants checked after every
# kill and restart (tests/reliability.rs, kill9_at_random_moments_keeps_the_store_consistent;
# docs/reliability.md).
#   scripts/chaos.sh [KILLS] [SEED]
# KILLS defaults to 200, SEED to a new one printed at the start; the same KILLS and SEED
# replay the same choices (kill moments depend on timing, so not the same interleavings).
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/env.sh
kills=${1:-200}
seed=${2:-$(( $(date +%s) % 1000000 ))}
case "$kills$seed" in *[!0-9]*) echo "usage: scripts/chaos.sh [KILLS] [SEED] (numbers)" >&2; exit 2;; esac
echo "== chaos: $kills kills, seed $seed (replay: scripts/chaos.sh $kills $seed)"
cargo build -p syncdesk-cli --locked
set +e
RUST_BACKTRACE=0 SYNCDESK_CHAOS_KILLS=$kills SYNCDESK_CHAOS_SEED=$seed \
  dbus-run-session -- bash scripts/with-keyring.sh \
  cargo test -p syncdesk-system-tests --locked --test reliability \
  kill9_at_random_moments_keeps_the_store_consistent -- --exact --nocapture 2>&1 \
  | grep -v '^dbus-daemon' | tee "${CARGO_TARGET_DIR}/chaos-output.txt"
status=${PIPESTATUS[0]}
set -e
echo "== figures"
grep -E '^chaos: seed [0-9]+:' "${CARGO_TARGET_DIR}/chaos-output.txt" || echo "no figures: the test did not get to the end"
exit "$status"
