#!/usr/bin/env bash
# Builds the kernel addon (binding.gyp, native/*.c) into build/Release/warden_kernel.node with
# node-gyp against the locally installed Node headers (/usr/include/node): node-gyp must never
# download headers (that registry is unreachable). Rebuilds only when a source is newer than the
# addon. Called by scripts/setup.sh.
set -euo pipefail
cd "$(dirname "$0")/.."

addon=build/Release/warden_kernel.node
if [ -f "$addon" ] && [ -z "$(find binding.gyp native -newer "$addon" -print -quit)" ]; then
  exit 0
fi

gyp=""
if [ -f node_modules/node-gyp/bin/node-gyp.js ]; then
  gyp=node_modules/node-gyp/bin/node-gyp.js
else
  global="$(npm root -g 2>/dev/null)/npm/node_modules/node-gyp/bin/node-gyp.js"
  [ -f "$global" ] && gyp="$global"
fi
if [ -z "$gyp" ]; then
  echo "build-native: node-gyp not found (it ships with npm: \$(npm root -g)/npm/node_modules/node-gyp)" >&2
  exit 1
fi

nodedir=""
for dir in /usr /usr/local "$(dirname "$(dirname "$(command -v node)")")"; do
  if [ -f "$dir/include/node/node_api.h" ]; then
    nodedir="$dir"
    break
  fi
done
if [ -z "$nodedir" ]; then
  echo "build-native: Node headers not found (include/node/node_api.h under /usr or node's prefix)" >&2
  exit 1
fi

echo "== native addon (node-gyp, headers from $nodedir/include/node)"
node "$gyp" rebuild --nodedir="$nodedir" --loglevel=warn
