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
import dataclasses
import logging
import os

from bus import messages as m
from bus.config import AgentConfig, IceConfig
from bus.link import ProcessLink
from bus.tasks import TaskSet
from media_worker.call import MediaCall
from media_worker.dtls_srtp import Certificate
from media_worker.priority import raise_priority, watch_load

log = logging.getLogger(__name__)


def merge_servers(static: IceConfig, learnt: m.IceServerInfo | None) -> IceConfig:
    """Servers from the config win; the XMPP server's (XEP-0215) fill what is unset."""
    if learnt is None:
        return static
    ice = static
    if ice.stun_server is None and learnt.stun_host:
        ice = dataclasses.replace(ice, stun_server=(learnt.stun_host, learnt.stun_port))
    if ice.turn_server is None and learnt.turn_host:
        ice = dataclasses.replace(
            ice, turn_server=(learnt.turn_host, learnt.turn_port),
            turn_username=learnt.turn_username, turn_password=learnt.turn_password,
            turn_transport=learnt.turn_transport)
    if ice.turns_server is None and learnt.turns_host and ice.turn_username == (
            learnt.turn_username):
        ice = dataclasses.replace(ice, turns_server=(learnt.turns_host, learnt.turns_port))
    return ice


class MediaWorker:
    def __init__(self, config: AgentConfig) -> None:
        self.config = config
        self.calls: dict[str, MediaCall] = {}
        # XEP-0320: one DTLS identity for every call this worker carries.
        self.certificate = Certificate.generate()
        self.link: ProcessLink | None = None
        self._bg = TaskSet()

    async def start(self, link: ProcessLink) -> None:
        self.link = link
        if raise_priority(os.environ.get("PYJINGLE_MEDIA_PRIORITY", "realtime")) == "realtime":
            self._bg.spawn(watch_load())

    async def _send(self, process: str, message: m.Message) -> None:
        if self.link is not None:
            await self.link.send(process, message)

    async def handle(self, source: str, message: m.Message) -> None:
        if isinstance(message, m.PrepareMedia):
            call = self.calls.get(message.sid)
            if call is None:
                call = MediaCall(message.sid, message.controlling, self.config.audio.input,
                                 self.config.audio.output, self._send,
                                 merge_servers(self.config.ice, message.servers),
                                 message.relay_only, self.certificate,
                                 self.config.media.advertised_address)
                self.calls[message.sid] = call
            await self._send(source, m.MediaPrepared(call.sid, call.ice.ufrag, call.ice.pwd,
                                                     self.certificate.fingerprint()))
        elif isinstance(message, m.StartMedia):
            call = self.calls.get(message.sid)
            if call is None:
                await self._send(source, m.WorkerFailed(message.sid, "failed-application"))
            else:
                self._bg.spawn(self._start(call, message))
        elif isinstance(message, m.OpenMedia):
            call = self.calls.get(message.sid)
            if call is not None:
                self._bg.spawn(self._open(call, message))
        elif isinstance(message, m.RestartIce):
            call = self.calls.get(message.sid)
            if call is not None:
                call.restart(message)
        elif isinstance(message, m.RemoteCandidates):
            call = self.calls.get(message.sid)
            if call is not None:
                await call.add_remote(message.candidates)
        elif isinstance(message, m.SetMute):
            call = self.calls.get(message.sid)
            if call is not None:
                call.muted = message.muted
        elif isinstance(message, m.SetHold):
            call = self.calls.get(message.sid)
            if call is not None:
                call.held = message.held
        elif isinstance(message, m.PeerMediaState):
            call = self.calls.get(message.sid)
            if call is not None:
                call.peer_muted, call.peer_held = message.muted, message.held
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

    async def _open(self, call: MediaCall, message: m.OpenMedia) -> None:
        try:
            await call.open(message.remote_ufrag, message.remote_pwd, message.remote_candidates)
        except Exception:
            log.exception("call %s could not gather early", call.sid)

    async def _close_all(self, reason: str) -> None:
        calls, self.calls = list(self.calls.values()), {}
        if calls:
            log.info("dropping %d calls: %s", len(calls), reason)
        await asyncio.gather(*(c.close(reason) for c in calls), return_exceptions=True)

    async def stop(self) -> None:
        await self._close_all("worker stopping")
