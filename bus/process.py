"""What every process's ``__main__`` shares: arguments, config, logging, signals.

A process started by the supervisor gets ``PYJINGLE_SUPERVISED=1``: it asks
the kernel to kill it when the supervisor dies (PR_SET_PDEATHSIG) and exits
when the supervisor falls silent, so no orphan outlives its agent. Started on
its own (a systemd unit per process, a Procfile line), it keeps waiting for
the supervisor instead.
"""

from __future__ import annotations

import argparse
import asyncio
import ctypes
import logging
import os
import signal
import sys
from collections.abc import Awaitable, Callable

from bus.config import AgentConfig, ConfigError, load_config

SUPERVISED_ENV = "PYJINGLE_SUPERVISED"
_PR_SET_PDEATHSIG = 1


def parse_config(prog: str, argv: list[str] | None = None) -> AgentConfig:
    """Parse ``--config FILE``; on a bad config print one line and exit 2."""
    return parse_args(prog, argv)[0]


def parse_args(prog: str, argv: list[str] | None = None) -> tuple[AgentConfig, str | None]:
    """``--config FILE`` and ``--name NAME`` (a pool member's bus identity, given by the
    supervisor: "media-2"); on a bad config print one line and exit 2."""
    parser = argparse.ArgumentParser(prog=prog)
    parser.add_argument("--config", help="agent TOML file (keys may come from PYJINGLE_* too)")
    parser.add_argument("--name", help="bus identity when one of a pool of workers")
    args = parser.parse_args(argv)
    try:
        return load_config(args.config), args.name
    except ConfigError as exc:
        print(f"{prog}: config error: {exc}", file=sys.stderr)
        raise SystemExit(2) from None


# Libraries whose INFO lines are chatter for a user (pair checks, raw XML): shown only
# with log.level = "debug".
CHATTY = ("slixmpp", "aioice", "asyncio")
# sd-daemon(3) priority prefixes, which journald turns into syslog priorities.
_PRIORITY = {logging.DEBUG: 7, logging.INFO: 6, logging.WARNING: 4, logging.ERROR: 3,
             logging.CRITICAL: 2}


class _JournalFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        return f"<{_PRIORITY.get(record.levelno, 6)}>{super().format(record)}"


def setup_logging(config: AgentConfig, name: str) -> None:
    """One format for every process. Under journald (``JOURNAL_STREAM``) or with
    ``log.timestamps = false`` (honcho adds its own) no timestamp, and under journald
    each line carries its syslog priority, so ``journalctl -p err`` works."""
    journald = bool(os.environ.get("JOURNAL_STREAM"))
    stamps = config.log_timestamps if config.log_timestamps is not None else not journald
    text = f"{name}[%(process)d] %(levelname)s %(name)s: %(message)s"
    handler = logging.StreamHandler(sys.stderr)
    fmt = f"%(asctime)s {text}" if stamps else text
    handler.setFormatter(_JournalFormatter(fmt) if journald else logging.Formatter(fmt))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(config.log_level.upper())
    if config.log_level != "debug":
        for library in CHATTY:
            logging.getLogger(library).setLevel(logging.WARNING)


def is_supervised() -> bool:
    return os.environ.get(SUPERVISED_ENV) == "1"


def die_with_parent() -> None:
    """Linux only: SIGKILL this process when its parent (the supervisor) dies."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
    except (OSError, AttributeError):
        pass
    if os.getppid() == 1:  # the parent died before prctl took effect
        raise SystemExit(1)


def run_main(main: Callable[[asyncio.Event], Awaitable[None]]) -> None:
    """Run ``main(stop)``; SIGTERM and SIGINT set ``stop``."""
    if is_supervised():
        die_with_parent()

    async def runner() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        await main(stop)

    asyncio.run(runner())
