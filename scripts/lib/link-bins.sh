#!/usr/bin/env bash
# Puts `warden`, `wardend` and `warden-assist` into DIR (scripts/setup.sh: /usr/local/bin as root):
# small wrappers that run this checkout's dist/ with the node that runs this script (sudo and systemd
# may have another PATH). Idempotent: a wrapper is rewritten only when its text changes. A file
# there that is not one of ours (no "# warden-setup:" line) is left alone and named.
set -euo pipefail
cd "$(dirname "$0")/../.."
bin_dir=$1
node_bin=$(command -v node)
linked=()
for entry in warden:console wardend:engine warden-assist:assist; do
  name=${entry%%:*}
  target="$PWD/dist/src/${entry#*:}/bin.js"
  text=$(printf '#!/bin/sh\n# warden-setup: runs %s (written by scripts/setup.sh; rerun it after moving the checkout)\nexec %s %s "$@"\n' \
    "$PWD" "$node_bin" "$target")
  if [ -e "$bin_dir/$name" ] && ! grep -q '^# warden-setup: ' "$bin_dir/$name"; then
    echo "setup: left $bin_dir/$name alone: it is not a wrapper of ours" >&2
    continue
  fi
  if [ "$(cat "$bin_dir/$name" 2>/dev/null)" != "$text" ]; then
    mkdir -p "$bin_dir"
    printf '%s\n' "$text" >"$bin_dir/$name.tmp"
    chmod 0755 "$bin_dir/$name.tmp"
    mv -f "$bin_dir/$name.tmp" "$bin_dir/$name"
  fi
  linked+=("$name")
done
if [ "${#linked[@]}" -gt 0 ]; then
  echo "setup: ${linked[*]} in $bin_dir run this checkout" >&2
fi
