# Sourced by the scripts: one shared build directory outside the clone, so a fresh clone
# reuses what an earlier build compiled (and still builds from nothing when there is none).
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/syncdesk-target}"
export CARGO_TERM_COLOR="${CARGO_TERM_COLOR:-never}"
for d in "$HOME/.cargo/bin" /usr/local/cargo/bin; do
  case ":$PATH:" in *":$d:"*) ;; *) [ -d "$d" ] && PATH="$d:$PATH";; esac
done
export PATH
