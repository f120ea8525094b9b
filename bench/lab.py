"""A throwaway Prosody on loopback and agents for the benchmarks (same harness as the tests)."""

from __future__ import annotations

import contextlib
import shutil
import statistics
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

from scripts.agents import USERS, Agent
from scripts.local_prosody import LocalProsody


@contextlib.contextmanager
def lab() -> Iterator[tuple[LocalProsody, Path]]:
    data = Path(tempfile.mkdtemp(prefix="pj-bench-"))
    server = LocalProsody(data / "prosody")
    server.configure(USERS)
    server.start()
    try:
        yield server, data
    finally:
        server.stop()
        shutil.rmtree(data, ignore_errors=True)


def start(server: LocalProsody, folder: Path, user: str, extra: str = "",
          env: dict[str, str] | None = None) -> Agent:
    agent = Agent(server, user, folder, extra=extra, env=env, log_level="warning")
    agent.wait_connected()
    return agent


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


def median(values: list[float]) -> float:
    return statistics.median(values)


def timed_calls(caller: Agent, callee: Agent, runs: int, warmup: int = 1,
                timeout: float = 30.0) -> tuple[list[float], dict]:
    """Seconds from ``call`` to INPROGRESS on both sides for ``runs`` calls (after
    ``warmup`` more, not counted; the callee auto-accepts), and the caller's last
    ``transport.state`` connected event."""
    took: list[float] = []
    connected: dict = {}
    for _ in range(runs + warmup):
        started = time.perf_counter()
        sid = caller.client.call(callee.bare)
        caller.state(sid, "INPROGRESS", timeout=timeout)
        callee.state(sid, "INPROGRESS", timeout=timeout)
        took.append(time.perf_counter() - started)
        connected = caller.watch.wait_for(5, event="transport.state", sid=sid,
                                          state="connected")
        caller.client.hangup(sid)
        caller.state(sid, "DEINIT")
        callee.state(sid, "DEINIT", timeout=15)
    return took[warmup:], connected
