#!/usr/bin/env bash
# The one test command (README): installs, builds, lints, type-checks and runs every test.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
echo "== lint (biome)"
npx biome check .
echo "== tests (node:test)"
mapfile -t files < <(find dist/src dist/test -name '*.test.js' | sort)
node --test --test-reporter=spec "${files[@]}"
