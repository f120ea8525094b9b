"""tcp:// control and bus endpoints: refused without CURVE keys, working with them,
closed to a client with the wrong keys (ZAP admits only the folder's clients/)."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest

from bus.curve import make_keys
from control.client import AgentUnreachable, ControlClient, EventWatcher
from scripts.agents import ROOT, USERS
from scripts.local_prosody import free_port, stop_process

pytestmark = pytest.mark.prosody


def _config(folder: Path, prosody, control_keys: Path | None, bus_keys: Path | None) -> Path:
    ports = [free_port() for _ in range(3)]
    text = (f'[account]\njid = "carol@{prosody.domain}"\npassword = "{USERS["carol"]}"\n'
            f'server = "127.0.0.1"\nport = {prosody.c2s_port}\ntls = "off"\n'
            f'[control]\ncommands = "tcp://127.0.0.1:{ports[0]}"\n'
            f'events = "tcp://127.0.0.1:{ports[1]}"\n'
            + (f'curve_keys = "{control_keys}"\n' if control_keys else "")
            + f'[bus]\nendpoint = "tcp://127.0.0.1:{ports[2]}"\n'
            + (f'curve_keys = "{bus_keys}"\n' if bus_keys else "")
            + '[audio]\ninput = "silence"\noutput = "null"\n')
    path = folder / "carol.toml"
    path.write_text(text)
    return path


def _endpoints(config: Path) -> tuple[str, str]:
    lines = dict(line.split(" = ", 1) for line in config.read_text().splitlines() if " = " in line)
    return lines["commands"].strip('"'), lines["events"].strip('"')


def test_a_tcp_endpoint_without_keys_is_refused_at_start(prosody, folder):
    config = _config(folder, prosody, None, None)
    run = subprocess.run([sys.executable, "-m", "supervisor", "--config", str(config)],
                         cwd=ROOT, capture_output=True, text=True, timeout=30)
    assert run.returncode == 2
    assert "control.commands: a tcp:// endpoint needs control.curve_keys" in run.stderr
    assert len(run.stderr.strip().splitlines()) == 1


def test_tcp_with_curve_keys_admits_only_the_right_client(prosody, folder):
    keys, bus_keys, stranger = (make_keys(folder / n) for n in ("keys", "bus-keys", "other"))
    config = _config(folder, prosody, keys, bus_keys)
    commands, events = _endpoints(config)
    watcher = EventWatcher(events, ("worker.state",), str(keys))
    log = open(folder / "carol.log", "wb")  # noqa: SIM115
    proc = subprocess.Popen([sys.executable, "-m", "supervisor", "--config", str(config)],
                            cwd=ROOT, stdout=log, stderr=subprocess.STDOUT)
    try:
        with ControlClient(commands, events, str(keys)) as client:
            deadline = time.monotonic() + 20
            status: dict = {}
            while time.monotonic() < deadline:
                try:
                    status = client.status()
                except AgentUnreachable:
                    continue
                if status["connected"] and all(w["alive"] for w in status["workers"].values()):
                    break
                time.sleep(0.2)
            # Every worker joined the bus over tcp+CURVE, and the XMPP login went through.
            assert status.get("connected"), (folder / "carol.log").read_text()[-3000:]
        assert watcher.wait_for(10, event="worker.state", state="started")
        # Another key pair (our server.key is public: knowing it is not enough).
        wrong_client = folder / "wrong-client"
        wrong_client.mkdir()
        (wrong_client / "server.key").write_bytes((keys / "server.key").read_bytes())
        (wrong_client / "client.key_secret").write_bytes(
            (stranger / "client.key_secret").read_bytes())
        # The right client key, but expecting another server.
        wrong_server = folder / "wrong-server"
        wrong_server.mkdir()
        (wrong_server / "server.key").write_bytes((stranger / "server.key").read_bytes())
        (wrong_server / "client.key_secret").write_bytes(
            (keys / "client.key_secret").read_bytes())
        for bad in (wrong_client, wrong_server):
            with ControlClient(commands, events, str(bad)) as client, \
                    pytest.raises(AgentUnreachable):
                client.request("status", timeout=3.0)
        with ControlClient(commands, events) as plain, pytest.raises(AgentUnreachable):
            plain.request("status", timeout=2.0)
        with ControlClient(commands, events, str(keys)) as client:
            assert client.status()["connected"]  # still serving the right one
    finally:
        watcher.close()
        stop_process(proc, grace=10)
        log.close()
