"""The media worker's scheduling priority: raised for the 20 ms audio clock, given up
when the worker cannot keep up (so it never starves the rest of the agent)."""

from __future__ import annotations

import asyncio
import logging
import os
import time

log = logging.getLogger(__name__)


def raise_priority(mode: str) -> str:
    """Give the 20 ms audio clock precedence over signalling and everything else.

    ``realtime``: SCHED_RR at a low real-time priority (the worker sleeps between
    frames, so it cannot starve the machine), else ``nice``: -10, else nothing.
    Needs CAP_SYS_NICE (root, or systemd's AmbientCapabilities); without it the
    worker runs at normal priority and says so.
    """
    if mode == "realtime":
        try:
            os.sched_setscheduler(0, os.SCHED_RR, os.sched_param(10))
            return "realtime"
        except (PermissionError, OSError, AttributeError) as exc:
            log.info("media worker: no real-time scheduling (%s), trying nice", exc)
            mode = "nice"
    if mode == "nice":
        try:
            os.setpriority(os.PRIO_PROCESS, 0, -10)
            return "nice"
        except (PermissionError, OSError) as exc:
            log.warning("media worker runs at normal priority: %s", exc)
    return "normal"


_demoted = False


def overloaded() -> None:
    """This worker is busy nearly all the time, or a call's clock fell behind. Under
    SCHED_RR such a worker starves every normal process of the machine (the kernel
    leaves them 5 %: the supervisor's heartbeats stop and the whole agent exits), so
    it gives real-time priority up, once, and says so; the calls go on."""
    global _demoted
    if _demoted:
        return
    _demoted = True
    try:
        if os.sched_getscheduler(0) == os.SCHED_OTHER:
            return
        os.sched_setscheduler(0, os.SCHED_OTHER, os.sched_param(0))
    except (PermissionError, OSError, AttributeError):
        return
    log.warning("media worker overloaded: real-time priority dropped so the agent keeps "
                "running (add media.workers or cores)")


BUSY = 0.9  # share of one core above which a real-time worker gives its priority up
BUSY_SECONDS = 2  # ... for this many seconds in a row (not a burst of call set-ups)


async def watch_load(interval: float = 1.0) -> None:
    """Once a second: the worker's CPU share; past :data:`BUSY` for
    :data:`BUSY_SECONDS` in a row it is overloaded."""
    last_cpu, last_wall = time.process_time(), time.monotonic()
    busy = 0
    while not _demoted:
        await asyncio.sleep(interval)
        cpu, wall = time.process_time(), time.monotonic()
        busy = busy + 1 if (cpu - last_cpu) / max(wall - last_wall, 1e-6) > BUSY else 0
        if busy >= BUSY_SECONDS:
            overloaded()
        last_cpu, last_wall = cpu, wall
