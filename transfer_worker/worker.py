"""The transfer worker: owns every file transfer's sockets and files.

Signalling prepares a transfer (listening socket and direct candidates; for a
receiver, the safe path and its partial file), asks it to try the peer's
candidates, tells it which connection was nominated, and finally whether to
keep the received file. Bytes never pass through signalling. A transfer whose
session closes keeps its partial file, so a later session can resume it.
"""

from __future__ import annotations

import asyncio
import logging
import time

from bus import messages as m
from bus.config import AgentConfig
from bus.link import ProcessLink
from bus.tasks import TaskSet
from transfer_worker.transfer import Transfer

log = logging.getLogger(__name__)


class TransferWorker:
    def __init__(self, config: AgentConfig | None = None) -> None:
        self.config = config
        self.transfers: dict[str, Transfer] = {}
        self.link: ProcessLink | None = None
        self._bg = TaskSet()

    async def start(self, link: ProcessLink) -> None:
        self.link = link
        if self.config is not None and self.config.transfer.idle_timeout:
            self._bg.spawn(self._watch_idle(self.config.transfer.idle_timeout))

    async def _watch_idle(self, limit: float) -> None:
        """An accepted transfer that moves no byte for ``limit`` seconds ends (XEP-0166
        ``timeout``): a peer that accepts and goes quiet holds nothing of ours for ever."""
        while True:
            await asyncio.sleep(min(1.0, limit / 4))
            now = time.monotonic()
            for sid, transfer in list(self.transfers.items()):
                if transfer.idle_for(now) > limit:
                    log.warning("transfer %s: no data for %.0f s, ending it", sid, limit)
                    transfer.arm_idle(now)
                    self.transfers.pop(sid, None)
                    await transfer.close()
                    await self._send(m.Process.SIGNALLING, m.WorkerFailed(
                        sid, "timeout", f"no data for {limit:.0f} s"))

    async def _send(self, process: str, message: m.Message) -> None:
        if self.link is not None:
            await self.link.send(process, message)

    async def handle(self, source: str, message: m.Message) -> None:
        if isinstance(message, m.PrepareTransfer):
            await self._prepare(source, message)
        elif isinstance(message, m.ConnectCandidates):
            transfer = self.transfers.get(message.sid)
            if transfer is not None:
                transfer.arm_idle(time.monotonic())
                self._bg.spawn(self._connect(source, transfer, message))
        elif isinstance(message, m.UseConnection):
            transfer = self.transfers.get(message.sid)
            if transfer is not None:
                try:
                    transfer.use(message.ours, message.via_own_proxy, message.offset,
                                 message.size)
                except ConnectionError as exc:
                    await self._send(source, m.WorkerFailed(message.sid, "failed-transport"))
                    log.warning("transfer %s: %s", message.sid, exc)
        elif isinstance(message, m.UseIbb):
            transfer = self.transfers.get(message.sid)
            if transfer is not None:
                transfer.arm_idle(time.monotonic())
                await transfer.use_ibb(message.block_size, message.offset, message.size)
        elif isinstance(message, m.IbbAck):
            transfer = self.transfers.get(message.sid)
            if transfer is not None and transfer.sending:
                transfer.ibb_acked(message.count)
        elif isinstance(message, m.IbbChunk):
            transfer = self.transfers.get(message.sid)
            if transfer is None or not await transfer.ibb_chunk(message.seq, message.blocks):
                await self._send(source, m.WorkerFailed(message.sid, "failed-transport"))
        elif isinstance(message, m.CommitFile):
            # Verifying may read the whole file again: off the message loop, so other
            # transfers' blocks keep flowing meanwhile.
            self._bg.spawn(self._commit(source, message))
        elif isinstance(message, m.CloseSession):
            transfer = self.transfers.pop(message.sid, None)
            if transfer is not None:
                await transfer.close()
            await self._send(source, m.SessionClosed(message.sid))
        elif isinstance(message, m.ResetSessions):
            await self._close_all(message.reason)
        else:
            log.debug("transfer worker ignores %s", type(message).__name__)

    async def _commit(self, source: str, message: m.CommitFile) -> None:
        transfer = self.transfers.get(message.sid)
        path, verified = None, False
        if transfer is not None:
            try:
                verified = await transfer.verify(message.algo, message.expected,
                                                 transfer.sha256 or "")
                # Unverifiable (the peer gave no hash we know) is kept; a mismatch is not.
                path = transfer.commit(keep=verified or message.algo is None)
            except OSError as exc:
                log.error("transfer %s: the file could not be saved: %s", message.sid, exc)
                path, verified = None, False
        await self._send(source, m.FileCommitted(message.sid, str(path) if path else None,
                                                 verified))

    async def _prepare(self, source: str, message: m.PrepareTransfer) -> None:
        try:
            transfer = Transfer(message, self._send)
            hosts, port = await transfer.listen()
        except FileNotFoundError as exc:
            log.info("transfer %s: %s", message.sid, exc)
            await self._send(source, m.TransferPrepared(message.sid, found=False))
            return
        except OSError as exc:
            log.warning("transfer %s cannot start: %s", message.sid, exc)
            await self._send(source, m.WorkerFailed(message.sid, "failed-application",
                                                    f"cannot start the transfer: {exc}"))
            return
        self.transfers[message.sid] = transfer
        shared = message.sending and message.name is not None
        path = str(transfer.path) if shared or not message.sending else None
        await self._send(source, m.TransferPrepared(
            message.sid, hosts, port, path, 0 if message.sending else transfer.offset,
            transfer.size if shared else 0))

    async def _connect(self, source: str, transfer: Transfer,
                       message: m.ConnectCandidates) -> None:
        cid = await transfer.connect(message.candidates, message.dstaddr, message.own_proxy)
        await self._send(source, m.CandidateResult(message.sid, cid, message.own_proxy))

    async def _close_all(self, reason: str) -> None:
        transfers, self.transfers = list(self.transfers.values()), {}
        if transfers:
            log.info("dropping %d transfers: %s", len(transfers), reason)
        await asyncio.gather(*(t.close() for t in transfers), return_exceptions=True)

    async def stop(self) -> None:
        await self._close_all("worker stopping")
