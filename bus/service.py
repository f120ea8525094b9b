"""The run loop every non-supervisor process shares: link to the hub, dispatch, stop."""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Callable
from typing import Protocol

import zmq.asyncio

from bus.config import AgentConfig
from bus.link import ProcessLink
from bus.messages import Message, Process
from bus.process import is_supervised, parse_args, run_main, setup_logging

log = logging.getLogger(__name__)


class Service(Protocol):
    """What a process plugs into :func:`serve`."""

    async def start(self, link: ProcessLink) -> None: ...

    async def handle(self, source: str, message: Message) -> None: ...

    async def stop(self) -> None: ...


async def serve(config: AgentConfig, process: Process, service: Service,
                stop: asyncio.Event, name: str | None = None) -> None:
    """Run ``service`` until SIGTERM, a Shutdown from the supervisor, or orphaning."""
    ctx = zmq.asyncio.Context()
    link = ProcessLink(ctx, config.bus.endpoint, process,
                       heartbeat_interval=config.bus.heartbeat_interval,
                       heartbeat_timeout=config.bus.heartbeat_timeout,
                       exit_when_orphaned=is_supervised(),
                       curve_keys=config.bus.curve_keys, name=name,
                       parent_pid=os.getppid() if is_supervised() else None)
    await service.start(link)
    runner = asyncio.create_task(link.run(service.handle))
    stopper = asyncio.create_task(stop.wait())
    done, _ = await asyncio.wait({runner, stopper}, return_when=asyncio.FIRST_COMPLETED)
    if runner in done and runner.exception() is not None:
        log.error("bus loop failed", exc_info=runner.exception())
    runner.cancel()
    stopper.cancel()
    log.info("%s stopping (%s)", process, link.stop_reason or "signal")
    try:
        await asyncio.wait_for(service.stop(), 3.0)
    except TimeoutError:
        log.warning("%s: stop took too long", process)
    await link.close()
    ctx.term()


def main(process: Process, factory: Callable[[AgentConfig], Service]) -> None:
    """The whole ``__main__`` of a process: config, logging, signals, serve."""
    config, name = parse_args(f"python -m {process.value}")
    setup_logging(config, name or process.value)

    async def run(stop: asyncio.Event) -> None:
        await serve(config, process, factory(config), stop, name)

    run_main(run)
