"""Call setup with the media worker on another host: ``call`` -> INPROGRESS on both
sides (median of 10) when alice's media worker runs in a third network namespace
and joins her bus over tcp:// with CURVE, against the same agents with the worker
local, in the same run. Needs root (network namespaces).

    .venv/bin/python -m bench.remote_worker
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import time
from contextlib import ExitStack
from pathlib import Path

from bench.charts import bars
from bench.lab import median, timed_calls
from bus.curve import make_keys
from scripts.agents import ROOT, USERS, Agent, make_ready
from scripts.local_prosody import LocalProsody
from tests.integration.netns import Lab, namespaces_usable

RUNS = 10
QUIET = '[audio]\ninput = "silence"\noutput = "null"\n'


def wait_alive(agent: Agent, worker: str, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = agent.client.status()["workers"].get(worker)
        if found and found["alive"]:
            return
        time.sleep(0.1)
    raise RuntimeError(f"{worker} never joined: {agent.client.status()['workers']}")


def setups(lab: Lab, server: LocalProsody, folder: Path, remote: bool) -> list[float]:
    """Call setups between alice (host a) and bob (host b); with ``remote`` alice's
    media worker runs on host w."""
    folder.mkdir(parents=True, exist_ok=True)
    keys = make_keys(folder / "bus-keys")
    _, alice_addr = lab.addresses["a"]
    bus = {"PYJINGLE_BUS_ENDPOINT": f"tcp://{alice_addr}:47123",
           "PYJINGLE_BUS_CURVE_KEYS": str(keys)}
    with ExitStack() as stack:
        agents = []
        for user, host, extra, env in (
                ("alice", "a", "", bus | {"PYJINGLE_BUS_SPAWN": "signalling,transfer"}
                 if remote else {}),
                ("bob", "b", '[policy]\nauto_accept_calls = "all"\n', {})):
            gw, _ = lab.addresses[host]
            agent = Agent(server, user, folder, prefix=lab.prefix(host), address=gw,
                          tls="optional", extra=QUIET + extra, env=env, log_level="warning")
            stack.callback(agent.stop)
            agents.append(agent)
        alice, bob = agents
        if remote:
            env = {k: v for k, v in os.environ.items() if not k.startswith("PYJINGLE_")}
            worker = subprocess.Popen([*lab.prefix("w"), sys.executable, "-m", "media_worker",
                                       "--config", str(alice.config)], cwd=ROOT,
                                      env=env | bus, stdout=subprocess.DEVNULL,
                                      stderr=subprocess.DEVNULL)
            stack.callback(worker.wait, 10)
            stack.callback(worker.terminate)
        for agent in agents:
            agent.wait_connected(30)
        wait_alive(alice, "media")
        make_ready(alice, bob, timeout=20)
        took, _ = timed_calls(alice, bob, RUNS, warmup=2)
    return took


def main() -> None:
    reason = namespaces_usable()
    if reason:
        sys.exit(f"remote_worker: {reason}")
    lab = Lab(hosts=("a", "b", "w"))
    data = Path(tempfile.mkdtemp(prefix="pj-bench-remote-"))
    server = LocalProsody(data / "prosody", tls=True,
                          interfaces=tuple(gw for gw, _ in lab.addresses.values()),
                          prefix=("ip", "netns", "exec", lab.router))
    try:
        server.configure(USERS)
        server.start()
        local = setups(lab, server, data / "local", remote=False)
        remote = setups(lab, server, data / "remote", remote=True)
    finally:
        server.stop()
        lab.close()
        shutil.rmtree(data, ignore_errors=True)
    print(f"remote_worker: call setup with alice's media worker local: median "
          f"{median(local) * 1000:.1f} ms over {RUNS} calls; on another host over tcp+CURVE: "
          f"{median(remote) * 1000:.1f} ms; ratio {median(remote) / median(local):.2f}x")
    bars("remote_worker", "Call setup, call -> INPROGRESS both sides, median (lower is better)",
         "ms", {"setup": {"media worker local": median(local) * 1000,
                          "media worker on another host (tcp + CURVE)": median(remote) * 1000}})


if __name__ == "__main__":
    main()
