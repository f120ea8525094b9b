#!/usr/bin/env bash
# Install what pyjingle needs on a fresh Debian machine: system packages, then a
# virtualenv in .venv with the package and its dev tools. Idempotent and quiet.
set -euo pipefail
cd "$(dirname "$0")/.."

need_apt=()
# iproute2 (ip netns, tc), nftables and coturn (STUN/TURN) for the network tests.
for pkg in iproute2 nftables coturn; do
    dpkg -s "$pkg" >/dev/null 2>&1 || need_apt+=("$pkg")
done
command -v prosody >/dev/null 2>&1 || need_apt+=(prosody)
# libopus0 for opuslib, libportaudio2 for sounddevice (both load them with ctypes).
for pkg in libopus0 libportaudio2; do
    dpkg -s "$pkg" >/dev/null 2>&1 || need_apt+=("$pkg")
done
# The interop suite (tests/interop): Dino 0.4 run headless, with its call plugins
# (GStreamer good + PulseAudio), an X server, a session bus, PulseAudio with null
# sinks, AT-SPI to press its buttons, xdotool to type into its file chooser.
for pkg in dino-im gstreamer1.0-plugins-good gstreamer1.0-pulseaudio xvfb dbus-x11 \
           pulseaudio pulseaudio-utils at-spi2-core python3-pyatspi xdotool libglib2.0-bin; do
    dpkg -s "$pkg" >/dev/null 2>&1 || need_apt+=("$pkg")
done
if [ ${#need_apt[@]} -gt 0 ]; then
    if [ "$(id -u)" -ne 0 ]; then
        echo "setup: need root to apt-get install ${need_apt[*]}" >&2
        exit 1
    fi
    echo "setup: installing ${need_apt[*]}" >&2
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq "${need_apt[@]}" >/dev/null
fi

PYTHON=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
    echo "setup: creating .venv" >&2
    "$PYTHON" -m venv .venv
fi
stamp=.venv/.pyjingle-installed
if [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ] || [ constraints.txt -nt "$stamp" ]; then
    echo "setup: installing pyjingle and its dev tools into .venv" >&2
    .venv/bin/pip install -q --disable-pip-version-check -c constraints.txt -e '.[dev]' 2>&1 \
        | grep -v "is ignored" >&2 || true
    .venv/bin/python -c "import zmq, msgpack, slixmpp, aioice, pytest, hypothesis" \
        || { echo "setup: pip install failed" >&2; exit 1; }
    touch "$stamp"
fi
