"""The media worker: owns every call's ICE transport and RTP stream.

This issue's scope is its place in the agent: it holds one media session per
call, creates the ICE credentials (XEP-0176 ufrag/pwd, no address), and
releases everything when a session closes or signalling restarts. ICE,
RTP/RTCP and audio come with the voice-call issue; until then no transport
connects and no call reports INPROGRESS.
"""

from __future__ import annotations

import logging
import secrets
import string
from dataclasses import dataclass

from bus import messages as m
from bus.link import ProcessLink

log = logging.getLogger(__name__)
_ICE_CHARS = string.ascii_letters + string.digits + "+/"


def ice_credentials() -> tuple[str, str]:
    """RFC 8445 §5.3: ufrag >= 24 bits, pwd >= 128 bits of randomness (ice-chars)."""
    ufrag = "".join(secrets.choice(_ICE_CHARS) for _ in range(8))
    pwd = "".join(secrets.choice(_ICE_CHARS) for _ in range(24))
    return ufrag, pwd


@dataclass
class MediaSession:
    sid: str
    controlling: bool
    ufrag: str
    pwd: str


class MediaWorker:
    def __init__(self) -> None:
        self.sessions: dict[str, MediaSession] = {}
        self.link: ProcessLink | None = None

    async def start(self, link: ProcessLink) -> None:
        self.link = link

    async def handle(self, source: m.Process, message: m.Message) -> None:
        assert self.link is not None
        if isinstance(message, m.PrepareMedia):
            session = self.sessions.get(message.sid)
            if session is None:
                ufrag, pwd = ice_credentials()
                session = MediaSession(message.sid, message.controlling, ufrag, pwd)
                self.sessions[message.sid] = session
            await self.link.send(source, m.MediaPrepared(session.sid, session.ufrag, session.pwd))
        elif isinstance(message, m.CloseSession):
            if self.sessions.pop(message.sid, None) is not None:
                log.info("media session %s closed (%s)", message.sid, message.reason)
            await self.link.send(source, m.SessionClosed(message.sid))
        elif isinstance(message, m.ResetSessions):
            if self.sessions:
                log.info("dropping %d media sessions: %s", len(self.sessions), message.reason)
            self.sessions.clear()
        else:
            log.debug("media worker ignores %s", type(message).__name__)

    async def stop(self) -> None:
        self.sessions.clear()
