#!/usr/bin/env bash
# The main command (README: `sudo npm start`): brings the checkout up to date (scripts/setup.sh
# rebuilds only what changed and says so, one line per step on stderr), then runs the engine in the
# foreground. Its configuration lives in /etc/warden and its state in /var/lib/warden; a new
# installation starts with the safe defaults (incoming denied except replies and Warden's internal
# rules; outgoing allowed and logged). It prints how to connect the console; SIGINT/SIGTERM stop it.
# Arguments go to `wardend run` (--no-kernel, --port N, --config-dir DIR, --state-dir DIR,
# --log-format human|json|auto, ...). The engine's log lines are human on a terminal and JSON
# otherwise (a pipe, a file, systemd's journal): README "Log output".
# WARDEN_SKIP_SETUP=1 skips the install and build (the test of this script sets it: the suite has
# already built everything, and rebuilding dist/ under running tests would pull files from under them).
set -euo pipefail
cd "$(dirname "$0")/.."
if [ -z "${WARDEN_SKIP_SETUP:-}" ]; then
  bash scripts/setup.sh >&2
fi
echo "start: starting wardend (stop with Ctrl-C)" >&2
# The engine stops when this command's caller (npm) is gone, however it went: a SIGTERM or SIGINT to
# `npm start` that npm does not pass on, or npm killed outright, leaves no orphaned engine.
export WARDEN_STOP_WITH_PARENT=1
# How the engine's greeting tells the user to run the console: `warden` when the one on the PATH
# runs this checkout (setup.sh put it there), else the full command.
if [ -z "${WARDEN_CONSOLE_COMMAND:-}" ]; then
  on_path=$(command -v warden || true)
  if [ -n "$on_path" ] && grep -q "^exec .* $PWD/dist/src/console/bin.js" "$on_path" 2>/dev/null; then
    export WARDEN_CONSOLE_COMMAND=warden
  else
    export WARDEN_CONSOLE_COMMAND="node $PWD/dist/src/console/bin.js"
  fi
fi
exec node dist/src/engine/bin.js run "$@"
