#!/usr/bin/env bash
# Builds the desktop app's packages with the Tauri bundler (docs/packaging.md): here a .deb
# and an .rpm (src-tauri/tauri.conf.json's `bundle` also describes the .msi, NSIS, .app and
# .dmg that the same command makes on Windows and macOS).
#   bash scripts/package.sh           # a release build (profile `dist`: stripped), then bundles it
#   bash scripts/package.sh --debug   # bundles the debug binary that is already built
# The release build compiles the whole app with optimisations (docs/packaging.md says how long
# that takes here). `--debug` compiles nothing: it bundles what
# `cargo build -p syncdesk-desktop --all-targets --locked` (scripts/test-desktop.sh) built, for
# the package smoke test. The packages land in $CARGO_TARGET_DIR/{dist,debug}/bundle/{deb,rpm}/;
# scripts/test-package.sh (same flag) checks them.
set -euo pipefail
cd "$(dirname "$0")/.."

mode=release
case "${1:-}" in
  "") ;;
  --debug) mode=debug ;;
  *) echo "usage: bash scripts/package.sh [--debug]" >&2; exit 2 ;;
esac

. scripts/env.sh
if [ "$mode" = debug ]; then out="$CARGO_TARGET_DIR/debug"; else out="$CARGO_TARGET_DIR/dist"; fi
# First, so a failed run leaves no package to test: only this run's packages in the output
# (the bundler would also leave older versions' files behind).
rm -rf "$out/bundle/deb" "$out/bundle/rpm"

bash scripts/setup.sh
tauri="$PWD/ui/node_modules/.bin/tauri"   # @tauri-apps/cli, pinned in ui/package.json
[ -x "$tauri" ] || { echo "package: $tauri is missing; run: (cd ui && npm ci)" >&2; exit 1; }

start=$(date +%s)
# From src-tauri/: the CLI finds tauri.conf.json there, and the `cwd` of its build hook
# (`../ui`) is taken relative to where the CLI runs.
cd src-tauri
if [ "$mode" = debug ]; then
  bin="$out/syncdesk-desktop"
  [ -x "$bin" ] || { echo "package: $bin is missing; run: (cd ui && npm run build) && cargo build -p syncdesk-desktop --all-targets --locked" >&2; exit 1; }
  echo "== bundle the debug build ($bin)"
  "$tauri" bundle --ci --debug --bundles deb,rpm
else
  # `tauri build` runs build.beforeBuildCommand (the UI's `npm run build`, embedded in the
  # binary), then `cargo build --profile dist`, then the bundler.
  echo "== release build (profile dist) and bundle"
  "$tauri" build --ci --bundles deb,rpm -- --profile dist --locked
fi
cd ..

echo "package: done in $(($(date +%s) - start)) s"
ls -l "$out/syncdesk-desktop" "$out"/bundle/deb/*.deb "$out"/bundle/rpm/*.rpm
