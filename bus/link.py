"""ZeroMQ adapters of the bus: the supervisor's hub and each process's link to it.

Topology: the supervisor binds one ROUTER at ``bus.endpoint``; every other
process connects a DEALER whose identity is its :class:`Process` name. A frame
pair ``[destination, payload]`` from a process is forwarded by the hub as
``[source, payload]``, so signalling and the workers address each other by
name while only the supervisor binds (a worker may live on another host).
ROUTER_HANDOVER lets a restarted process take its name back at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import time
from collections.abc import Awaitable, Callable

import zmq
import zmq.asyncio

from bus.curve import load_keys, secure_client
from bus.messages import (
    MAX_FRAME,
    Goodbye,
    Heartbeat,
    Hello,
    Message,
    MessageError,
    Process,
    Shutdown,
    coalesce,
    decode,
    encode,
    role_of,
)

log = logging.getLogger(__name__)

# A spawning supervisor that is alive but silent gets this many heartbeat timeouts
# before its child gives it up (a hung supervisor; systemd's watchdog sees it too).
PARENT_PATIENCE = 10

Handler = Callable[[str, Message], Awaitable[None]]  # (source's bus identity, message)


class ProcessLink:
    """A process's DEALER to the supervisor's hub, with heartbeats both ways.

    ``run(handler)`` calls ``handler(source, message)`` for each message and
    returns when the supervisor says :class:`Shutdown`, or when it has been
    silent for ``heartbeat_timeout`` while ``exit_when_orphaned`` is set (a
    supervised child must not outlive its supervisor).
    """

    def __init__(self, ctx: zmq.asyncio.Context, endpoint: str, process: Process, *,
                 heartbeat_interval: float, heartbeat_timeout: float,
                 exit_when_orphaned: bool, curve_keys: str | None = None,
                 name: str | None = None, parent_pid: int | None = None) -> None:
        """``name``: this process's bus identity when it is one of a pool ("media-2").
        ``parent_pid``: the supervisor that spawned this process, when it did."""
        self.process = process
        self.name = name or process.value
        self._sock = ctx.socket(zmq.DEALER)
        if curve_keys is not None:
            secure_client(self._sock, load_keys(curve_keys))
        self._sock.setsockopt(zmq.IDENTITY, self.name.encode())
        self._sock.setsockopt(zmq.LINGER, 200)
        self._sock.setsockopt(zmq.SNDHWM, 100_000)
        self._sock.setsockopt(zmq.MAXMSGSIZE, MAX_FRAME)
        self._sock.connect(endpoint)
        self._interval = heartbeat_interval
        self._timeout = heartbeat_timeout
        self._exit_when_orphaned = exit_when_orphaned
        self._parent = parent_pid
        self._starved_warned = False
        self._last_heard = time.monotonic()
        self._outbox: asyncio.Queue[tuple[str, Message]] = asyncio.Queue()
        self.stop_reason: str | None = None

    async def send(self, destination: str, message: Message) -> None:
        """``destination``: a bus identity (a :class:`Process`, or a pool member's name)."""
        await self._sock.send_multipart([str(destination).encode(), encode(message)])

    def post(self, destination: str, message: Message) -> None:
        """Queue a message; posted messages leave in order, whoever posts them."""
        self._outbox.put_nowait((destination, message))

    async def _drain(self) -> None:
        """Send what was posted, in order; consecutive messages to one destination
        that say one thing (:func:`coalesce`) leave as one."""
        held: tuple[str, Message] | None = None
        while True:
            destination, message = held or await self._outbox.get()
            held = None
            while not self._outbox.empty():
                following = self._outbox.get_nowait()
                merged = coalesce(message, following[1]) if following[0] == destination \
                    else None
                if merged is None:
                    held = following
                    break
                message = merged
            await self.send(destination, message)

    async def run(self, handler: Handler) -> str:
        pid = os.getpid()
        await self.send(Process.SUPERVISOR, Hello(self.process, pid, socket.gethostname()))
        beat = asyncio.create_task(self._beat(pid))
        drain = asyncio.create_task(self._drain())
        try:
            while self.stop_reason is None:
                try:
                    frames = await asyncio.wait_for(self._sock.recv_multipart(), self._interval)
                except TimeoutError:
                    self._check_orphaned()
                    continue
                self._last_heard = time.monotonic()
                if len(frames) != 2:
                    log.warning("bus: dropped a frame set of %d parts", len(frames))
                    continue
                try:
                    source = frames[0].decode()
                    role_of(source)  # a known role, or the frame is dropped
                    message = decode(frames[1])
                except (ValueError, MessageError) as exc:
                    log.warning("bus: dropped an undecodable message: %s", exc)
                    continue
                if isinstance(message, Heartbeat):
                    continue
                if isinstance(message, Shutdown):
                    self.stop_reason = message.reason
                    break
                try:
                    await handler(source, message)
                except Exception:
                    # One bad message must not take the process (and every session
                    # it holds) down: say which, and go on with the next.
                    log.exception("bus: handling %s from %s failed", type(message).__name__,
                                  source)
                # No orphan check here: a handler that awaited long left the supervisor's
                # heartbeats queued, not missing; the next recv reads them at once.
        finally:
            beat.cancel()
            drain.cancel()
        return self.stop_reason or "stopped"

    def _check_orphaned(self) -> None:
        silent = time.monotonic() - self._last_heard
        if self._exit_when_orphaned and silent > self._timeout:
            if int(self._sock.getsockopt(zmq.EVENTS)) & zmq.POLLIN:
                # Frames are waiting: the supervisor spoke, this process was too busy
                # to read (a loaded worker). Late is not orphaned; read on.
                self._last_heard = time.monotonic()
                return
            if (self._parent is not None and os.getppid() == self._parent
                    and silent <= self._timeout * PARENT_PATIENCE):
                # Our parent lives (its death would take us with it, PR_SET_PDEATHSIG):
                # silent but alive is a supervisor starved of CPU (real-time media
                # workers on every core), not a lost one. Exiting would end every call.
                if not self._starved_warned:
                    self._starved_warned = True
                    log.warning("bus: supervisor silent for %.1f s but alive: waiting",
                                silent)
                return
            log.error("bus: supervisor silent for %.1f s, exiting", silent)
            self.stop_reason = "supervisor lost"

    async def _beat(self, pid: int) -> None:
        while True:
            await self.send(Process.SUPERVISOR, Heartbeat(self.process, pid))
            await asyncio.sleep(self._interval)

    async def close(self) -> None:
        with contextlib.suppress(TimeoutError, zmq.ZMQError):
            await asyncio.wait_for(
                self.send(Process.SUPERVISOR, Goodbye(self.process, os.getpid())), 0.5
            )
        self._sock.close(linger=200)
