#!/usr/bin/env bash
# Set up what is missing, then run the playground: Prosody, alice's and bob's agents,
# and the scripted scene (alice calls bob, bob accepts, alice hangs up), printing events.
# PLAYGROUND_STAY=1 keeps everything running after the scene.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
rm -rf .playground
exec .venv/bin/honcho start -f Procfile
