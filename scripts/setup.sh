#!/usr/bin/env bash
# Installs what Warden needs to build and test on a fresh Debian machine with Node.js >= 20 and npm,
# builds what changed since the last run, and (as root) puts `warden`, `wardend` and `warden-assist`
# on the PATH. Safe to run repeatedly: each step says in one line on stderr what it does or why it
# is skipped. Steps:
#   1. Debian packages (installed when run as root and missing);
#   2. npm dependencies: `npm install` only when node_modules differs from package-lock.json;
#   3. the C addon (scripts/build-native.sh): only when binding.gyp or native/ changed;
#   4. TypeScript (tsc) and 5. the web console (vite): only when their sources changed since the
#      last build (hashes in build/stamps/, the outputs must exist);
#   6. as root: wrappers in /usr/local/bin (WARDEN_BIN_DIR overrides) that run this checkout.
set -euo pipefail
cd "$(dirname "$0")/.."

step() { echo "setup: $*" >&2; }

# nftables, iptables (xt NFQUEUE through iptables-nft), iproute2 and util-linux (nsenter): the kernel
# tests run real packets through Warden's ruleset inside throwaway network namespaces.
# gcc, g++, make, python3 (node-gyp), libc6-dev and linux-libc-dev (the netlink/netfilter/inet_diag
# headers) build the kernel addon (scripts/build-native.sh) and better-sqlite3, the engine's log store,
# from source when its prebuilt binary cannot be downloaded (about 2.5 minutes on 2 cores).
# rsyslog and rsyslog-openssl: the syslog forwarding test starts its own rsyslogd (UDP, TCP and TLS inputs).
# chromium: the web console's end-to-end tests and benchmark drive Debian's /usr/bin/chromium with playwright-core.
# dpkg-dev is not needed: scripts/package-deb.sh uses dpkg-deb, part of dpkg.
DEBIAN_PACKAGES=(nftables iproute2 iptables util-linux gcc g++ make python3 libc6-dev linux-libc-dev curl rsyslog
  rsyslog-openssl chromium)

mapfile -t installed < <(dpkg-query -W -f='${Package} ${Status}\n' "${DEBIAN_PACKAGES[@]}" 2>/dev/null |
  awk '$NF == "installed" { print $1 }')
missing=()
for pkg in "${DEBIAN_PACKAGES[@]}"; do
  [[ " ${installed[*]} " == *" $pkg "* ]] || missing+=("$pkg")
done
if [ "${#missing[@]}" -gt 0 ]; then
  if [ "$(id -u)" -ne 0 ]; then
    echo "setup: missing Debian packages: ${missing[*]} (run as root, or: sudo apt-get install ${missing[*]})" >&2
    exit 1
  fi
  step "installing Debian packages: ${missing[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}"
else
  step "Debian packages present"
fi

# `npm install` with the committed lock file installs the locked versions. (`npm ci` is refused by
# npm 11 here: it expects lock entries for other platforms' optional biome binaries that npm itself
# never writes.)
# node-gyp builds native addons against the Node headers installed with Node (/usr/include/node) when
# told so, instead of downloading them from nodejs.org (not reachable on every CI machine).
if [ -z "${npm_config_nodedir:-}" ] && [ -f /usr/include/node/node_api.h ]; then
  export npm_config_nodedir=/usr
fi
if [ -d node_modules ] && node scripts/lib/node-modules-match.cjs 2>/dev/null; then
  step "npm dependencies match package-lock.json"
else
  step "installing npm dependencies (node_modules differs from package-lock.json; minutes on a fresh machine)"
  npm install --no-audit --no-fund --loglevel=error
fi

bash scripts/build-native.sh

# A hash of the files a build step reads; the step is skipped while it equals the one recorded after
# its last successful run and its outputs exist.
stamps=dist/.stamps
mkdir -p "$stamps"
sources_hash() {
  find "$@" -type f ! -path '*/node_modules/*' -print0 2>/dev/null | LC_ALL=C sort -z | xargs -0 sha256sum |
    sha256sum | cut -d' ' -f1
}
up_to_date() { # NAME HASH OUTPUT...
  local name=$1 hash=$2
  shift 2
  [ -f "$stamps/$name" ] && [ "$(cat "$stamps/$name")" = "$hash" ] || return 1
  for output in "$@"; do [ -e "$output" ] || return 1; done
}

tsc_hash=$(sources_hash src test bench tsconfig.json package.json package-lock.json)
if up_to_date tsc "$tsc_hash" dist/src/engine/bin.js dist/src/console/bin.js; then
  step "TypeScript build up to date (dist/)"
else
  step "compiling TypeScript into dist/ (tsc, about 15 s)"
  npx tsc -p tsconfig.json
  node dist/src/man/bin.js dist/man >/dev/null # warden.1 and wardend.8 from the commands' help
  echo "$tsc_hash" >"$stamps/tsc"
fi

web_hash=$(sources_hash web package.json package-lock.json)
if up_to_date web "$web_hash" dist/web/index.html; then
  step "web console build up to date (dist/web)"
else
  step "building the web console into dist/web (vite, about 10 s)"
  npm run --silent build:web
  echo "$web_hash" >"$stamps/web"
fi

# `warden`, `wardend` and `warden-assist` on the PATH (as root; WARDEN_BIN_DIR overrides the directory).
if [ "$(id -u)" -eq 0 ] || [ -n "${WARDEN_BIN_DIR:-}" ]; then
  bash scripts/lib/link-bins.sh "${WARDEN_BIN_DIR:-/usr/local/bin}"
else
  step "not root: warden, wardend and warden-assist are not put in /usr/local/bin (npm run -s warden -- ARGS works)"
fi
