#!/usr/bin/env bash
# The UI's own tests: type check and build, Vitest component tests, and the browser tests
# (Debian's Chromium driven by playwright-core against the built UI with mocked IPC).
# Prints the counts as TAP summary lines ("# pass N", "# fail N") for the callers to add up.
set -uo pipefail
cd "$(dirname "$0")/../ui"
status=0
echo "== ui build (tsc + vite)"
npm run build --silent || status=1
echo "== ui tests (vitest)"
vjson=$(mktemp --suffix=.json)
npx vitest run --reporter=default --reporter=json --outputFile.json="$vjson" 2>&1 || status=1
node -e 'const r=require(process.argv[1]);console.log(`# pass ${r.numPassedTests}\n# fail ${r.numFailedTests}`)' "$vjson" 2>/dev/null \
  || { echo "# fail 1"; status=1; }
rm -f "$vjson"
echo "== ui browser tests (chromium, mocked IPC)"
node browser-tests/run.mjs 2>&1 || status=1
exit "$status"
