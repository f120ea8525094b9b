"""A throwaway Prosody on loopback and agents for the benchmarks (same harness as the tests)."""

from __future__ import annotations

import contextlib
import shutil
import statistics
import tempfile
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
