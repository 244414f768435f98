#!/usr/bin/env bash
# Builds the kernel addon (binding.gyp, native/*.c) into build/Release/warden_kernel.node with
# node-gyp against the locally installed Node headers (/usr/include/node): node-gyp must never
# download headers (that registry is unreachable). Rebuilds only when a source changed. Called by scripts/setup.sh.
set -euo pipefail
cd "$(dirname "$0")/.."

addon=build/Release/warden_kernel.node
# The addon is rebuilt when binding.gyp or native/ differ from the last build (a hash in
# build/stamps/native; timestamps alone would rebuild after every checkout).
hash=$(find binding.gyp native -type f -print0 | LC_ALL=C sort -z | xargs -0 sha256sum | sha256sum | cut -d' ' -f1)
if [ -f "$addon" ] && [ "$(cat build/stamps/native 2>/dev/null)" = "$hash" ]; then
  echo "setup: native addon up to date ($addon)" >&2
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

echo "setup: building the native addon (node-gyp, headers from $nodedir/include/node)" >&2
node "$gyp" rebuild --nodedir="$nodedir" --loglevel=warn
mkdir -p build/stamps
echo "$hash" >build/stamps/native
