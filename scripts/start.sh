#!/usr/bin/env bash
# The main command (README: `sudo npm start`): installs and builds, then runs the engine in the
# foreground. Its configuration lives in /etc/warden and its state in /var/lib/warden; a new
# installation starts with the safe defaults (incoming denied except replies and Warden's internal
# rules; outgoing allowed and logged). It prints how to connect the console; SIGINT/SIGTERM stop it.
# Arguments go to `wardend run` (--no-kernel, --port N, --config-dir DIR, --state-dir DIR, ...).
# WARDEN_SKIP_SETUP=1 skips the install and build (the test of this script sets it: the suite has
# already built everything, and rebuilding dist/ under running tests would pull files from under them).
set -euo pipefail
cd "$(dirname "$0")/.."
if [ -z "${WARDEN_SKIP_SETUP:-}" ]; then
  bash scripts/setup.sh >&2
fi
# The engine stops when this command's caller (npm) is gone, however it went: a SIGTERM or SIGINT to
# `npm start` that npm does not pass on, or npm killed outright, leaves no orphaned engine.
export WARDEN_STOP_WITH_PARENT=1
# How the engine's greeting tells the user to run the console from this checkout.
export WARDEN_CONSOLE_COMMAND="${WARDEN_CONSOLE_COMMAND:-node $PWD/dist/src/console/bin.js}"
exec node dist/src/engine/bin.js run "$@"
