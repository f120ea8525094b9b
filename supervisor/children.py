"""The processes a supervisor spawns, restarts with backoff, and stops."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import sys
import time
from dataclasses import dataclass, field

from bus.messages import Process
from bus.process import SUPERVISED_ENV

log = logging.getLogger(__name__)

MODULES = {Process.SIGNALLING: "signalling", Process.MEDIA: "media_worker",
           Process.TRANSFER: "transfer_worker"}
FIRST_BACKOFF = 0.1
MAX_BACKOFF = 10.0
STABLE_AFTER = 30.0  # seconds alive before the backoff resets


@dataclass
class Child:
    """One supervised process: its OS process and its liveness as the bus sees it."""

    process: Process
    spawned_here: bool
    name: str = ""  # its bus identity when one of a pool ("media-2"); "" = the role's
    pid: int = 0
    alive: bool = False
    restarts: int = 0
    started_at: float = 0.0
    last_heard: float = 0.0
    backoff: float = FIRST_BACKOFF
    proc: asyncio.subprocess.Process | None = field(default=None, repr=False)
    # Messages for this process while it starts (spawned, no Hello yet): delivered
    # on Hello, so a command sent during a restart is delayed, not lost.
    backlog: list[tuple[bytes, bytes]] = field(default_factory=list, repr=False)
    announced: bool = False  # its 'started'/'restarted' event has been published

    MAX_BACKLOG = 10_000

    @property
    def ident(self) -> str:
        """The name it has on the bus, in status and in events."""
        return self.name or self.process.value

    def summary(self) -> dict[str, object]:
        return {"pid": self.pid, "alive": self.alive, "restarts": self.restarts}


async def spawn(child: Child, config_path: str | None) -> None:
    argv = [sys.executable, "-m", MODULES[child.process]]
    if config_path:
        argv += ["--config", config_path]
    if child.name:
        argv += ["--name", child.name]
    env = dict(os.environ, **{SUPERVISED_ENV: "1"})
    env.pop("NOTIFY_SOCKET", None)  # only the supervisor talks to systemd
    child.proc = await asyncio.create_subprocess_exec(*argv, env=env)
    child.pid = child.proc.pid
    child.alive = False  # until it says Hello on the bus
    child.announced = False
    child.started_at = child.last_heard = time.monotonic()
    log.info("started %s (pid %d)", child.ident, child.pid)


def next_backoff(child: Child, now: float) -> float:
    """The delay before restarting ``child``; doubles while it keeps dying young."""
    if now - child.started_at > STABLE_AFTER:
        child.backoff = FIRST_BACKOFF
    delay = child.backoff
    child.backoff = min(child.backoff * 2, MAX_BACKOFF)
    return delay


def kill(child: Child, sig: int = signal.SIGKILL) -> None:
    if child.proc is not None and child.proc.returncode is None:
        with contextlib.suppress(ProcessLookupError):
            child.proc.send_signal(sig)
