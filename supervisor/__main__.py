"""``python -m supervisor --config FILE.toml``: run one agent."""

from __future__ import annotations

import argparse
import asyncio
import sys

import zmq

from bus.config import ConfigError, load_config
from bus.process import run_main, setup_logging
from supervisor.agent import Supervisor
from supervisor.lock import AgentLock, AlreadyRunning, lock_path


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m supervisor")
    parser.add_argument("--config", help="agent TOML file (keys may come from PYJINGLE_* too)")
    args = parser.parse_args(argv)
    try:
        config = load_config(args.config)
    except ConfigError as exc:
        print(f"pyjingle: config error: {exc}", file=sys.stderr)
        raise SystemExit(2) from None
    lock = AgentLock(lock_path(config))
    try:
        lock.acquire()
    except AlreadyRunning as exc:
        print(f"pyjingle: {exc}", file=sys.stderr)
        raise SystemExit(2) from None
    except OSError as exc:
        print(f"pyjingle: cannot take the agent lock {lock.path}: {exc}", file=sys.stderr)
        raise SystemExit(2) from None
    setup_logging(config, "supervisor")

    async def run(stop: asyncio.Event) -> None:
        await Supervisor(config, args.config).run(stop)

    try:
        run_main(run)
    except (OSError, zmq.ZMQError) as exc:  # e.g. an endpoint already in use
        print(f"pyjingle: cannot start: {exc}", file=sys.stderr)
        raise SystemExit(1) from None


if __name__ == "__main__":
    main()
