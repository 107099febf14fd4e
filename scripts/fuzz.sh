#!/usr/bin/env bash
# Run each property target of crates/engine/tests/properties.rs (spec, page, transform,
# duration/schedule and header parsers) for SECONDS seconds (default 60), in batches of
# PROPTEST_CASES cases with a fresh random seed each, and print the cases run per target.
# Stops at the first failure, with proptest's minimal failing input.
#
#   scripts/fuzz.sh          # 60 s per target
#   scripts/fuzz.sh 600      # 10 min per target
#   BATCH=20000 scripts/fuzz.sh 30
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/env.sh

SECONDS_PER_TARGET="${1:-60}"
BATCH="${BATCH:-5000}"

echo "== build (crates/engine/tests/properties.rs)"
bin=$(cargo test -p syncdesk-engine --test properties --no-run --message-format=json 2>/dev/null |
  python3 -c 'import json, sys
for line in sys.stdin:
    m = json.loads(line)
    if m.get("reason") == "compiler-artifact" and m.get("executable") and m["target"]["name"] == "properties":
        print(m["executable"])')
[ -x "$bin" ] || { echo "could not build the property tests" >&2; exit 1; }

targets=$("$bin" --list 2>/dev/null | sed -n 's/: test$//p' | grep -v '^found_by')
printf '%-55s %10s %8s\n' target cases seconds
total=0
for t in $targets; do
  cases=0
  start=$(date +%s)
  while [ $(( $(date +%s) - start )) -lt "$SECONDS_PER_TARGET" ]; do
    if ! PROPTEST_CASES="$BATCH" "$bin" --exact "$t" --quiet >/tmp/syncdesk-fuzz.$$ 2>&1; then
      cat /tmp/syncdesk-fuzz.$$
      rm -f /tmp/syncdesk-fuzz.$$
      echo "FAILED: $t after $cases cases" >&2
      exit 1
    fi
    cases=$((cases + BATCH))
  done
  rm -f /tmp/syncdesk-fuzz.$$
  total=$((total + cases))
  printf '%-55s %10d %8d\n' "$t" "$cases" $(( $(date +%s) - start ))
done
echo "total: $total cases, no failure"
