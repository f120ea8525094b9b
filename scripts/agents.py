"""Agents as real process trees, driven only through the control contract.

Shared by the integration tests and the benchmarks: an :class:`Agent` writes
its config, starts ``python -m supervisor`` (optionally inside a network
namespace), and offers a control client and an event watcher.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

from control.client import ControlClient, ControlFailed, EventWatcher
from scripts.local_prosody import LocalProsody, stop_process

ROOT = Path(__file__).resolve().parents[1]
USERS = {"alice": "alice-pw", "bob": "bob-pw", "carol": "carol-pw", "dave": "dave-pw",
         "eve": "eve-pw"}  # eve is a stranger to everyone (local_prosody.STRANGERS)


class Agent:
    """One agent (supervisor + workers) as a user's tool would see it."""

    def __init__(self, server: LocalProsody, user: str, folder: Path,
                 extra: str = "", env: dict[str, str] | None = None,
                 prefix: tuple[str, ...] = (), address: str = "127.0.0.1",
                 tls: str = "off", log_level: str = "info", resource: str = "agent") -> None:
        """``resource``: another device of the same account when not "agent"."""
        name = user if resource == "agent" else f"{user}-{resource}"
        self.user = name
        self.bare = f"{user}@{server.domain}"
        self.folder = folder
        self.commands = f"ipc://{folder}/{name}-cmd"
        self.events = f"ipc://{folder}/{name}-ev"
        self.config = folder / f"{name}.toml"
        self.config.write_text(
            f'[account]\njid = "{self.bare}"\npassword = "{USERS[user]}"\n'
            f'server = "{address}"\nport = {server.c2s_port}\ntls = "{tls}"\n'
            f'resource = "{resource}"\n'
            f'[control]\ncommands = "{self.commands}"\nevents = "{self.events}"\n'
            f'[bus]\nendpoint = "ipc://{folder}/{name}-bus"\n'
            f"heartbeat_interval = 0.2\nheartbeat_timeout = 2.0\n"
            f"[log]\nlevel = \"{log_level}\"\n{extra}"
        )
        self.log = open(folder / f"{name}.log", "wb")  # noqa: SIM115
        env = {k: v for k, v in os.environ.items() if not k.startswith("PYJINGLE_")} | (env or {})
        self.proc = subprocess.Popen(
            [*prefix, sys.executable, "-m", "supervisor", "--config", str(self.config)],
            cwd=ROOT, stdout=self.log, stderr=subprocess.STDOUT, env=env)
        self.client = ControlClient(self.commands, self.events)
        self.watch = EventWatcher(self.events)
        self.full = f"{self.bare}/{resource}"

    def wait_connected(self, timeout: float = 20.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(f"{self.user}'s agent exited: {self.log_text()}")
            try:
                status = self.client.status()
                spawned = [w for w in status["workers"].values() if w["pid"]]
                if status["connected"] and all(w["alive"] for w in spawned):
                    return
            except Exception:
                pass
            time.sleep(0.1)
        raise AssertionError(f"{self.user} never connected: {self.log_text()}")

    def log_text(self) -> str:
        self.log.flush()
        return (self.folder / f"{self.user}.log").read_text()[-4000:]

    def pids(self) -> list[int]:
        workers = self.client.status()["workers"]
        return [self.proc.pid] + [w["pid"] for w in workers.values() if w["pid"]]

    def state(self, sid: str, state: str, timeout: float = 10.0) -> dict:
        return self.watch.wait_for(timeout, event="session.state", sid=sid, state=state)

    def stop(self) -> float:
        """SIGTERM the supervisor; the seconds it took to exit."""
        took = stop_process(self.proc, grace=10)
        self.watch.close()
        self.client.close()
        self.log.close()
        return took


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie is dead for our purpose (reaped by its parent or init soon).
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().split(")")[-1].split()[0] != "Z"
    except OSError:
        return False


def make_ready(caller: Agent, callee: Agent, timeout: float = 10.0) -> None:
    """Wait until the caller sees the callee online (presence travelled), via a probe call."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            sid = caller.client.call(callee.bare)
        except ControlFailed as exc:
            if exc.code != "not-found" or time.monotonic() > deadline:
                raise
            time.sleep(0.1)
            continue
        caller.client.hangup(sid)
        caller.state(sid, "DEINIT")
        callee.state(sid, "DEINIT")
        return


def udp_sockets(pid: int) -> dict[str, tuple[str, int]]:
    """The UDP sockets a process holds (from /proc): inode -> (local address, port).
    IPv6 addresses are given in /proc's hex form."""
    inodes = set()
    for fd in os.listdir(f"/proc/{pid}/fd"):
        try:
            target = os.readlink(f"/proc/{pid}/fd/{fd}")
        except OSError:
            continue
        if target.startswith("socket:["):
            inodes.add(target[8:-1])
    found = {}
    for table in ("/proc/net/udp", "/proc/net/udp6"):
        with open(table) as fh:
            for line in fh.readlines()[1:]:
                fields = line.split()
                if fields[9] in inodes:
                    hex_ip, hex_port = fields[1].split(":")
                    ip = (socket.inet_ntoa(bytes.fromhex(hex_ip)[::-1]) if len(hex_ip) == 8
                          else hex_ip)
                    found[fields[9]] = (ip, int(hex_port, 16))
    return found


def call_in_progress(caller: Agent, callee: Agent, timeout: float = 20.0) -> str:
    """``caller`` calls ``callee`` (bare JID), who accepts; the sid once both sides say
    INPROGRESS."""
    sid = caller.client.call(callee.bare)
    callee.state(sid, "RECEIVEDINITIATE")
    callee.client.accept(sid)
    caller.state(sid, "INPROGRESS", timeout=timeout)
    callee.state(sid, "INPROGRESS", timeout=timeout)
    return sid
