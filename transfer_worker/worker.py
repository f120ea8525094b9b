"""The transfer worker: owns every file transfer's sockets and files.

This issue's scope is its place in the agent: it holds one transfer session
per file session and releases it when the session closes or signalling
restarts. SOCKS5/IBB transports and the file I/O come with the file-transfer
issue.
"""

from __future__ import annotations

import logging

from bus import messages as m
from bus.link import ProcessLink

log = logging.getLogger(__name__)


class TransferWorker:
    def __init__(self) -> None:
        self.sessions: set[str] = set()
        self.link: ProcessLink | None = None

    async def start(self, link: ProcessLink) -> None:
        self.link = link

    async def handle(self, source: m.Process, message: m.Message) -> None:
        assert self.link is not None
        if isinstance(message, m.PrepareTransfer):
            self.sessions.add(message.sid)
            await self.link.send(source, m.TransferPrepared(message.sid))
        elif isinstance(message, m.CloseSession):
            self.sessions.discard(message.sid)
            await self.link.send(source, m.SessionClosed(message.sid))
        elif isinstance(message, m.ResetSessions):
            self.sessions.clear()
        else:
            log.debug("transfer worker ignores %s", type(message).__name__)

    async def stop(self) -> None:
        self.sessions.clear()
