"""The ``jingle`` console script against a real agent: output, exit codes, one-line errors."""

import json
import subprocess
import sys

import pytest

pytestmark = pytest.mark.prosody


def jingle(*args, timeout=30):
    return subprocess.run([sys.executable, "-m", "control.cli", *args], capture_output=True,
                          text=True, timeout=timeout)


def test_status_call_hangup_and_errors(pair):
    alice, bob = pair
    status = jingle("--agent", str(alice.config), "status")
    assert status.returncode == 0 and json.loads(status.stdout)["jid"] == alice.full

    call = jingle("--control", alice.commands, "--events", alice.events, "call", bob.bare)
    assert call.returncode == 0
    sid = json.loads(call.stdout)["sid"]
    bob.state(sid, "RECEIVEDINITIATE")
    sessions = json.loads(jingle("--agent", str(bob.config), "sessions").stdout)
    assert [s["sid"] for s in sessions] == [sid]
    assert jingle("--agent", str(bob.config), "reject", sid, "--reason", "busy").returncode == 0
    assert alice.state(sid, "DEINIT")["reason"] == "busy"

    missing = jingle("--agent", str(alice.config), "hangup", "no-such-sid")
    assert missing.returncode == 1
    assert missing.stderr.strip() == "jingle: unknown-session: no session 'no-such-sid'"
    offline = jingle("--agent", str(alice.config), "call", "carol@localhost")
    assert offline.returncode == 1 and offline.stderr.startswith("jingle: not-found:")


def test_events_and_no_agent(pair, folder):
    alice, _ = pair
    events = jingle("--agent", str(alice.config), "events", "--no-follow")
    assert events.returncode == 0  # nothing happening: ends after 1 s quiet
    nobody = jingle("--control", f"ipc://{folder}/nobody", "--events", f"ipc://{folder}/x",
                    "status")
    assert nobody.returncode == 3 and "not answering" in nobody.stderr
    bad = jingle("--agent", str(folder / "missing.toml"), "status")
    assert bad.returncode == 2 and bad.stderr.count("\n") == 1
