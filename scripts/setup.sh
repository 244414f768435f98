#!/usr/bin/env bash
# Installs what Warden needs to build and test on a fresh Debian machine with
# Node.js >= 20 and npm: Debian packages (when run as root and missing) and the
# npm dependencies from package-lock.json. Safe to run repeatedly.
set -euo pipefail
cd "$(dirname "$0")/.."

# nftables, iptables (xt NFQUEUE through iptables-nft), iproute2 and util-linux (nsenter): the kernel
# tests run real packets through Warden's ruleset inside throwaway network namespaces.
# gcc, g++, make, python3 (node-gyp), libc6-dev and linux-libc-dev (the netlink/netfilter/inet_diag
# headers) build the kernel addon (scripts/build-native.sh) and better-sqlite3, the engine's log store,
# from source when its prebuilt binary cannot be downloaded (about 2.5 minutes on 2 cores).
# rsyslog and rsyslog-openssl: the syslog forwarding test starts its own rsyslogd (UDP, TCP and TLS inputs).
# chromium: the web console's end-to-end tests and benchmark drive Debian's /usr/bin/chromium with playwright-core.
DEBIAN_PACKAGES=(nftables iproute2 iptables util-linux gcc g++ make python3 libc6-dev linux-libc-dev curl rsyslog
  rsyslog-openssl chromium)

missing=()
for pkg in "${DEBIAN_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'install ok installed' || missing+=("$pkg")
done
if [ "${#missing[@]}" -gt 0 ]; then
  if [ "$(id -u)" -ne 0 ]; then
    echo "setup: missing Debian packages: ${missing[*]} (run as root, or: sudo apt-get install ${missing[*]})" >&2
    exit 1
  fi
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}"
fi

# `npm install` with the committed lock file installs the locked versions. (`npm ci` is refused by
# npm 11 here: it expects lock entries for other platforms' optional biome binaries that npm itself
# never writes.)
# node-gyp builds native addons against the Node headers installed with Node (/usr/include/node) when
# told so, instead of downloading them from nodejs.org (not reachable on every CI machine).
if [ -z "${npm_config_nodedir:-}" ] && [ -f /usr/include/node/node_api.h ]; then
  export npm_config_nodedir=/usr
fi
if [ ! -d node_modules ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  npm install --no-audit --no-fund --loglevel=error
fi
bash scripts/build-native.sh
npm run --silent build
