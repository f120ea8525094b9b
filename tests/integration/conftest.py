"""Fixtures: a real Prosody on loopback and agents driven only through the control contract."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from scripts.agents import ROOT, USERS, Agent, make_ready, pid_alive
from scripts.local_prosody import LocalProsody

__all__ = ["ROOT", "USERS", "Agent", "make_ready", "pid_alive"]


@pytest.fixture(scope="session")
def prosody() -> Iterator[LocalProsody]:
    if shutil.which("prosody") is None:
        pytest.fail("prosody is not installed: run scripts/setup.sh")
    with tempfile.TemporaryDirectory(prefix="pj-prosody-") as data:
        server = LocalProsody(Path(data))
        server.configure(USERS)
        server.start()
        yield server
        server.stop()


@pytest.fixture
def folder() -> Iterator[Path]:
    # Short paths: ipc:// endpoints must fit in a UNIX socket address.
    path = Path(tempfile.mkdtemp(prefix="pj-", dir="/tmp"))
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture
def start_agent(prosody: LocalProsody, folder: Path):
    started: list[Agent] = []

    def start(user: str, extra: str = "", env: dict[str, str] | None = None,
              resource: str = "agent") -> Agent:
        agent = Agent(prosody, user, folder, extra, env, resource=resource)
        started.append(agent)
        agent.wait_connected()
        return agent

    yield start
    for agent in started:
        agent.stop()
        if os.environ.get("PJ_KEEP_LOGS"):
            shutil.copy(agent.folder / f"{agent.user}.log", f"/tmp/last-{agent.user}.log")


@pytest.fixture
def pair(start_agent) -> tuple[Agent, Agent]:
    alice, bob = start_agent("alice"), start_agent("bob")
    make_ready(alice, bob)
    return alice, bob
