"""The media worker: owns every call's ICE transport, RTP stream and audio.

Real-time audio lives here, in its own process, so it never shares a GIL with
signalling. Signalling prepares a call (ICE credentials only, no socket),
starts it after accept (gathering, checks, media), feeds it the peer's
candidates and closes it; the worker reports candidates, ``MediaFlowing``,
failures to signalling, and ``transport.state`` / ``media.stats`` straight to
the supervisor.
"""

from __future__ import annotations

import asyncio
import logging

from bus import messages as m
from bus.config import AgentConfig
from bus.link import ProcessLink
from bus.tasks import TaskSet
from media_worker.call import MediaCall

log = logging.getLogger(__name__)


class MediaWorker:
    def __init__(self, config: AgentConfig) -> None:
        self.config = config
        self.calls: dict[str, MediaCall] = {}
        self.link: ProcessLink | None = None
        self._bg = TaskSet()

    async def start(self, link: ProcessLink) -> None:
        self.link = link

    async def _send(self, process: m.Process, message: m.Message) -> None:
        if self.link is not None:
            await self.link.send(process, message)

    async def handle(self, source: m.Process, message: m.Message) -> None:
        if isinstance(message, m.PrepareMedia):
            call = self.calls.get(message.sid)
            if call is None:
                call = MediaCall(message.sid, message.controlling, self.config.audio.input,
                                 self.config.audio.output, self._send,
                                 self.config.ice.connect_timeout)
                self.calls[message.sid] = call
            await self._send(source, m.MediaPrepared(call.sid, call.ice.ufrag, call.ice.pwd))
        elif isinstance(message, m.StartMedia):
            call = self.calls.get(message.sid)
            if call is None:
                await self._send(source, m.WorkerFailed(message.sid, "failed-application"))
            else:
                self._bg.spawn(self._start(call, message))
        elif isinstance(message, m.RemoteCandidates):
            call = self.calls.get(message.sid)
            if call is not None:
                await call.add_remote(message.candidates)
        elif isinstance(message, m.SetMute):
            call = self.calls.get(message.sid)
            if call is not None:
                call.muted = message.muted
        elif isinstance(message, m.CloseSession):
            call = self.calls.pop(message.sid, None)
            if call is not None:
                await call.close(message.reason)
            await self._send(source, m.SessionClosed(message.sid))
        elif isinstance(message, m.ResetSessions):
            await self._close_all(message.reason)
        else:
            log.debug("media worker ignores %s", type(message).__name__)

    async def _start(self, call: MediaCall, message: m.StartMedia) -> None:
        try:
            await call.start(message)
        except Exception:
            log.exception("call %s could not start", call.sid)
            await self._send(m.Process.SIGNALLING, m.WorkerFailed(call.sid, "failed-application"))

    async def _close_all(self, reason: str) -> None:
        calls, self.calls = list(self.calls.values()), {}
        if calls:
            log.info("dropping %d calls: %s", len(calls), reason)
        await asyncio.gather(*(c.close(reason) for c in calls), return_exceptions=True)

    async def stop(self) -> None:
        await self._close_all("worker stopping")
