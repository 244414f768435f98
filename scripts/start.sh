#!/usr/bin/env bash
# The main command (README): installs, builds and runs the console. With no
# arguments it checks, lints and explains the example policy.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh >&2
if [ "$#" -gt 0 ]; then
  exec node dist/src/console/bin.js "$@"
fi
node dist/src/console/bin.js policy check examples/policy.yaml --settings examples/settings.yaml
node dist/src/console/bin.js policy lint examples/policy.yaml --settings examples/settings.yaml || true
node dist/src/console/bin.js policy explain examples/policy.yaml --settings examples/settings.yaml \
  --app /usr/bin/curl --out --tcp --to 93.184.215.14:443 --host example.com
