#!/usr/bin/env bash
# Set up what is missing, then run the playground: Prosody, alice's and bob's agents,
# and the scripted scene (alice calls bob, bob accepts, alice hangs up), printing events.
# PLAYGROUND_STAY=1 keeps everything running after the scene. One playground at a
# time: a second one is refused (exit 2) before it touches the running one's folder.
set -euo pipefail
cd "$(dirname "$0")/.."
dir=${PLAYGROUND_DIR:-.playground}
exec 9>>"$dir.lock"
if ! flock -n 9; then
    echo "playground: already running ($dir, pid $(head -c 16 "$dir.lock")); stop it first" >&2
    exit 2
fi
truncate -s 0 "$dir.lock" && echo $$ >"$dir.lock"
scripts/setup.sh
rm -rf "$dir"
export PLAYGROUND_DIR="$dir"
exec .venv/bin/honcho start -f Procfile
