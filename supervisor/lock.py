"""One agent per configuration: a lock beside the control socket.

Two supervisors on one config would fight over the control socket (the second
bind takes it over) and over the XMPP resource (each login knocks the other
off). The first one holds an exclusive ``flock`` on a file named after its
control endpoint, with its pid inside; the second finds it held and exits 2
naming that pid. The kernel drops the lock with the process, so a killed agent
never leaves a stale one behind.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
from pathlib import Path

from bus.config import AgentConfig, runtime_dir


class AlreadyRunning(Exception):
    """Another agent holds the lock; ``pid`` is its process id (0 when unreadable)."""

    def __init__(self, path: Path, pid: int) -> None:
        super().__init__(f"another agent (pid {pid or 'unknown'}) already runs with this "
                         f"configuration (lock {path})")
        self.path = path
        self.pid = pid


def lock_path(config: AgentConfig) -> Path:
    """``<socket>.lock`` beside an ipc:// control socket; for any other endpoint, a
    file named after it in the agent's runtime folder."""
    endpoint = config.control.commands
    if endpoint.startswith("ipc://"):
        return Path(endpoint[len("ipc://"):] + ".lock")
    digest = hashlib.sha256(endpoint.encode()).hexdigest()[:16]
    return runtime_dir(config.bare_jid) / f"agent-{digest}.lock"


class AgentLock:
    """Held from :meth:`acquire` until the process ends (or :meth:`release`)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._fd: int | None = None

    def acquire(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raw = os.read(fd, 32)
            os.close(fd)
            pid = int(raw) if raw.strip().isdigit() else 0
            raise AlreadyRunning(self.path, pid) from None
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        self._fd = fd

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None
