"""``pyjingle-agent --config FILE`` (= ``python -m supervisor``): run one agent.

``--check`` validates the configuration and prints every problem, ``--version``
says which pyjingle this is. Exit status 2 for a bad configuration, a missing
system library or an agent already running on this configuration.
"""

from __future__ import annotations

import argparse
import asyncio
import ctypes.util
import logging
import sys
from pathlib import Path

import zmq

from bus.config import ConfigError, check_config, load_config
from bus.process import run_main, setup_logging
from bus.version import version
from supervisor.agent import Supervisor
from supervisor.lock import AgentLock, AlreadyRunning, lock_path

PROG = "pyjingle-agent"
EXAMPLE = Path(__file__).with_name("example.toml")
# Libraries the workers load with ctypes, and the Debian package that has each.
LIBRARIES = {"opus": "libopus0"}


def missing_libraries() -> list[str]:
    """One line per system library the media worker cannot run without."""
    return [f"lib{name} not found: install it (Debian: apt-get install {package})"
            for name, package in LIBRARIES.items() if ctypes.util.find_library(name) is None]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog=PROG, description="run a pyjingle agent")
    parser.add_argument("--config", help="agent TOML file (keys may come from PYJINGLE_* too)")
    parser.add_argument("--check", action="store_true",
                        help="validate the configuration, print every problem, exit")
    parser.add_argument("--version", action="version", version=f"{PROG} {version()}")
    parser.add_argument("--example-config", action="store_true",
                        help="print a commented example configuration and exit")
    args = parser.parse_args(argv)
    if args.example_config:
        print(EXAMPLE.read_text(), end="")
        return
    if args.check:
        problems = check_config(args.config)
        for problem in problems:
            print(f"{PROG}: {problem}", file=sys.stderr)
        if not problems:
            print(f"{PROG}: {args.config or 'the environment'}: configuration is valid")
        raise SystemExit(2 if problems else 0)
    try:
        config = load_config(args.config)
    except ConfigError as exc:
        print(f"{PROG}: config error: {exc}", file=sys.stderr)
        raise SystemExit(2) from None
    missing = missing_libraries()
    if missing:
        print(f"{PROG}: {missing[0]}", file=sys.stderr)
        raise SystemExit(2)
    lock = AgentLock(lock_path(config))
    try:
        lock.acquire()
    except AlreadyRunning as exc:
        print(f"{PROG}: {exc}", file=sys.stderr)
        raise SystemExit(2) from None
    except OSError as exc:
        print(f"{PROG}: cannot take the agent lock {lock.path}: {exc}", file=sys.stderr)
        raise SystemExit(2) from None
    setup_logging(config, "supervisor")
    uses_card = "default" in (config.audio.input, config.audio.output)
    if uses_card and ctypes.util.find_library("portaudio") is None:
        logging.getLogger("supervisor").warning(
            "libportaudio not found (Debian: apt-get install libportaudio2): no sound card, "
            "calls send silence and play nothing")

    async def run(stop: asyncio.Event) -> None:
        await Supervisor(config, args.config).run(stop)

    try:
        run_main(run)
    except (OSError, zmq.ZMQError) as exc:  # e.g. an endpoint already in use
        print(f"{PROG}: cannot start: {exc}", file=sys.stderr)
        raise SystemExit(1) from None


if __name__ == "__main__":
    main()
