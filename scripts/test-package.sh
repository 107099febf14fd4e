#!/usr/bin/env bash
# Checks the packages scripts/package.sh made (same flag: --debug for the bundled debug build):
# the .deb unpacked with dpkg-deb (its fields and declared dependencies, the desktop entry
# through desktop-file-validate, an icon at every hicolor size, and the packaged binary
# answering --version with no display), and the .rpm read with rpm (digests, fields,
# dependencies, the same files). Prints TAP: "ok N - …" / "not ok N - …", then
# "# pass N" and "# fail N" (scripts/test-desktop.sh counts them).
#   bash scripts/test-package.sh [--debug]
# No `set -e`: a failed check is reported and the next one runs.
set -uo pipefail
cd "$(dirname "$0")/.." || exit 1
. scripts/env.sh

mode=release
case "${1:-}" in
  "") ;;
  --debug) mode=debug ;;
  *) echo "usage: bash scripts/test-package.sh [--debug]" >&2; exit 2 ;;
esac
if [ "$mode" = debug ]; then out="$CARGO_TARGET_DIR/debug"; else out="$CARGO_TARGET_DIR/dist"; fi

# What the packages must say, from the one place that sets it.
version=$(sed -n 's/^  "version": "\(.*\)",$/\1/p' src-tauri/tauri.conf.json)
bin_name=syncdesk-desktop
icon_sizes=(16 24 32 48 64 128 256 512)
# The system libraries the app needs at run time (Tauri adds the first three itself):
# WebKitGTK and GTK 3 (the window), Ayatana AppIndicator (the tray; loaded at run time, so
# not in the binary's NEEDED list), D-Bus (the keychain client), xdg-open (browser sign-in).
deb_depends=(libwebkit2gtk-4.1-0 libgtk-3-0 libayatana-appindicator3-1 libdbus-1-3 xdg-utils)
rpm_requires=("libwebkit2gtk-4.1.so.0()(64bit)" "libgtk-3.so.0()(64bit)"
  "libayatana-appindicator3.so.1()(64bit)" "libdbus-1.so.3()(64bit)" xdg-utils)

n=0 pass=0 fail=0
ok() { n=$((n + 1)); pass=$((pass + 1)); echo "ok $n - $1"; }
not_ok() { n=$((n + 1)); fail=$((fail + 1)); echo "not ok $n - $1"; shift; printf '%s\n' "$@" | sed 's/^/#   /'; }
# check "description" command...: ok when the command succeeds; its output is shown if not.
check() {
  local what=$1; shift
  local got
  if got=$("$@" 2>&1); then ok "$what"; else not_ok "$what" "${got:-(no output)}"; fi
}
# expect "description" "problem": ok when the problem is empty, else it is shown.
expect() { if [ -z "$2" ]; then ok "$1"; else not_ok "$1" "$2"; fi; }
# same "description" "wanted" "found"
same() { if [ "$2" = "$3" ]; then ok "$1"; else not_ok "$1" "wanted: $2" "found:  $3"; fi; }
finish() {
  echo "1..$n"
  echo "# pass $pass"
  echo "# fail $fail"
  [ "$fail" -eq 0 ]
}

echo "TAP version 13"
shopt -s nullglob
debs=("$out"/bundle/deb/*.deb) rpms=("$out"/bundle/rpm/*.rpm)
shopt -u nullglob
if [ ${#debs[@]} -ne 1 ] || [ ${#rpms[@]} -ne 1 ]; then
  not_ok "one .deb and one .rpm in $out/bundle" "found: ${debs[*]:-no .deb} ${rpms[*]:-no .rpm}" \
    "run: bash scripts/package.sh${1:+ $1}"
  finish; exit
fi
deb=${debs[0]} rpm=${rpms[0]}
ok "one .deb and one .rpm: $(basename "$deb") ($(du -h "$deb" | cut -f1)), $(basename "$rpm") ($(du -h "$rpm" | cut -f1))"

root=$(mktemp -d)
trap 'rm -rf "$root"' EXIT

# --- the .deb -------------------------------------------------------------------------------
field() { dpkg-deb -f "$deb" "$1"; }
check ".deb is well formed (dpkg-deb --info)" dpkg-deb --info "$deb"
same ".deb is package syncdesk $version for amd64" "syncdesk $version amd64" \
  "$(field Package) $(field Version) $(field Architecture)"
desc=$(field Description)
expect ".deb has a description" "$([ -n "$desc" ] && [ "${desc%%$'\n'*}" != "(none)" ] || echo "Description: ${desc:-(empty)}")"
depends=$(field Depends)
missing=()
for d in "${deb_depends[@]}"; do
  grep -qE "(^|, )$d( |,|$)" <<<"$depends" || missing+=("$d")
done
expect ".deb depends on ${deb_depends[*]}" "${missing[*]:+missing ${missing[*]} in: $depends}"

check ".deb unpacks (dpkg-deb -x)" dpkg-deb -x "$deb" "$root/deb"
exe="$root/deb/usr/bin/$bin_name"
expect "the binary is /usr/bin/$bin_name" "$([ -x "$exe" ] || echo "no executable $exe")"

# Every library the binary links comes from a declared dependency or one of theirs.
# (apt-cache follows the dependencies of the packages installed here: the build's own.)
mapfile -t names < <(sed 's/([^)]*)//g; s/|/,/g' <<<"$depends" | tr ',' '\n' | sed 's/^ *//; s/ *$//; s/:.*//' | grep .)
closure=$(apt-cache depends --recurse --installed --no-recommends --no-suggests --no-conflicts \
  --no-breaks --no-replaces --no-enhances "${names[@]}" 2>/dev/null | grep -v '^ ' | sort -u)
needed=$(readelf -d "$exe" 2>&1 | sed -n 's/.*(NEEDED).*\[\(.*\)\]/\1/p')
unowned=()
for lib in $needed; do
  pkg=$(dpkg -S "*/$lib" 2>/dev/null | head -n1 | cut -d: -f1)
  grep -qxF "${pkg:-?}" <<<"$closure" || unowned+=("$lib (${pkg:-no package})")
done
problem="${unowned[*]:+not covered: ${unowned[*]}}"
[ -n "$needed" ] || problem="readelf -d lists no NEEDED library"
expect "every library the binary links comes with the declared dependencies" "$problem"

# The packaged binary starts: --version is answered before anything graphical.
got=$(env -u DISPLAY -u WAYLAND_DISPLAY timeout 20 "$exe" --version 2>&1) && rc=0 || rc=$?
same "the packaged binary starts with no display: --version says \"$bin_name $version\"" \
  "exit 0: $bin_name $version" "exit $rc: $got"
if [ "$mode" = release ]; then
  if sections=$(readelf -SW "$exe" 2>&1); then
    unstripped=$(grep -oE '\.symtab|\.debug_[a-z_]+' <<<"$sections" | sort -u | tr '\n' ' ')
    expect "the binary is stripped (no symbol table, no debug info)" "${unstripped:+it has $unstripped}"
  else
    not_ok "the binary is stripped (no symbol table, no debug info)" "$sections"
  fi
else
  echo "# the debug build is not stripped: that is checked on release packages only"
fi

desktop="$root/deb/usr/share/applications/Syncdesk.desktop"
expect "desktop entry /usr/share/applications/Syncdesk.desktop" "$([ -f "$desktop" ] || echo "not in the package")"
if [ -f "$desktop" ]; then
  check "desktop entry is valid (desktop-file-validate)" desktop-file-validate "$desktop"
  key() { sed -n "s/^$1=//p" "$desktop" | head -n1; }
  same "desktop entry: Name=Syncdesk, Type=Application" "Syncdesk Application" "$(key Name) $(key Type)"
  same "desktop entry: Exec=$bin_name, the packaged binary" "$bin_name" \
    "$(key Exec)$([ -x "$root/deb/usr/bin/$(key Exec)" ] || echo " (not in /usr/bin)")"
  same "desktop entry: Icon=$bin_name" "$bin_name" "$(key Icon)"
  expect "desktop entry: a Comment and Categories ($(key Categories))" \
    "$([ -n "$(key Comment)" ] && [ -n "$(key Categories)" ] || echo "Comment=$(key Comment) Categories=$(key Categories)")"
fi

hicolor="$root/deb/usr/share/icons/hicolor"
for s in "${icon_sizes[@]}"; do
  png="$hicolor/${s}x${s}/apps/$bin_name.png"
  got=$(file -b "$png" | cut -d, -f1-2)
  problem=""
  if [ ! -f "$png" ]; then problem="no ${png#"$root/deb"}"
  elif [ "$got" != "PNG image data, $s x $s" ]; then problem="${png#"$root/deb"}: $got"; fi
  expect "icon ${s}x${s}: a ${s} x ${s} PNG" "$problem"
done
# No icon in a directory whose size it does not have (a WxH@2 directory holds 2W-pixel icons).
wrong=()
while IFS= read -r png; do
  dir=$(basename "$(dirname "$(dirname "$png")")")
  w=${dir%%x*} scale=1
  [[ $dir == *@2 ]] && scale=2
  file -b "$png" | grep -q "^PNG image data, $((w * scale)) x $((w * scale))," || wrong+=("$dir: $(file -b "$png" | cut -d, -f2)")
done < <(find "$hicolor" -name '*.png')
expect "every icon is the size its directory says" "${wrong[*]}"

# --- the .rpm -------------------------------------------------------------------------------
check ".rpm is well formed (rpm -K: digests)" rpm -K --nosignature "$rpm"
same ".rpm is package syncdesk $version for x86_64" "syncdesk $version x86_64" \
  "$(rpm -qp --qf '%{NAME} %{VERSION} %{ARCH}' "$rpm" 2>&1)"
requires=$(rpm -qpR "$rpm" 2>/dev/null)
missing=()
for r in "${rpm_requires[@]}"; do grep -qxF "$r" <<<"$requires" || missing+=("$r"); done
expect ".rpm requires ${rpm_requires[*]}" "${missing[*]:+missing ${missing[*]}}"
deb_files=$(cd "$root/deb" && find . -type f | sed 's/^\.//' | sort)
rpm_files=$(rpm -qpl "$rpm" 2>/dev/null | sort)
expect ".rpm holds the same files as the .deb ($(wc -l <<<"$rpm_files") files)" \
  "$(diff <(echo "$deb_files") <(echo "$rpm_files") | grep '^[<>]' | tr '\n' ' ')"

finish
