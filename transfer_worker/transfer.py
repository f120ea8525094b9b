"""One file transfer in the transfer worker, over an XEP-0260 SOCKS5 bytestream.

The worker owns the sockets and the file: it listens for the peer on its
direct candidates (SOCKS5 server side, only the expected dstaddr is let in),
connects to the peer's candidates (SOCKS5 client side), and once signalling
says which connection was nominated, streams the file in fixed chunks —
memory stays flat whatever the size — hashing as it goes.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import os
import socket
import threading
import time
from collections.abc import Awaitable, Callable, Coroutine
from pathlib import Path
from typing import Any, BinaryIO

import aioice.ice

from bus import messages as m
from transfer_worker import partials, pump
from transfer_worker.hashes import HASHES, FileDigests, PartialDigests, digest_file
from transfer_worker.names import (
    PARTIAL_SUFFIX,
    claim_partial,
    commit_name,
    inside,
    open_partial,
    sanitize,
)
from transfer_worker.socks5 import Socks5Client, Socks5Error, Socks5Server

log = logging.getLogger(__name__)

MAX_HANDSHAKES = 8  # concurrent SOCKS5 handshakes one streamhost accepts
CONNECT_TIMEOUT = 5.0
PROGRESS_INTERVAL = 0.1  # docs/control.md: at most ~10 transfer.progress a second
# Unacknowledged in-band bytes in flight. Measured through Prosody (bench.ibb): 32 KiB
# blocks x 8, 16 KiB x 16, 8 KiB x 32 all ran near the server's limit; a peer that
# asks for small blocks (Conversations: 8 KiB) gets more of them in flight.
IBB_WINDOW_BYTES = 256 * 1024


def ibb_window(block_size: int) -> int:
    """Blocks in flight for ``block_size`` (at least 8, at most 256)."""
    return max(8, min(256, IBB_WINDOW_BYTES // max(1, block_size)))


Send = Callable[[m.Process, m.Message], Awaitable[None]]
# A SOCKS5 bytestream after its handshake, with what arrived past the handshake.
Connection = tuple[asyncio.StreamReader, asyncio.StreamWriter, bytes]
USE_SENDFILE = hasattr(os, "sendfile")  # else the pump reads into a buffer and sends that
# Whole-file digests by file version, and unfinished ones by partial file: one of each
# per worker, shared by its transfers.
DIGESTS = FileDigests()
PARTIALS = PartialDigests()


def host_addresses() -> list[str]:
    """Addresses to offer as direct candidates (loopback only when there is nothing else)."""
    return aioice.ice.get_host_addresses(use_ipv4=True, use_ipv6=False) or ["127.0.0.1"]


class Transfer:
    def __init__(self, prepare: m.PrepareTransfer, send: Send) -> None:
        self.sid = prepare.sid
        self.sending = prepare.sending
        self.size = prepare.size
        self.offset = prepare.offset
        self.expected = prepare.expected_dstaddr
        self.max_rate = prepare.max_rate
        self.algo = prepare.algo if prepare.algo in HASHES else "sha-256"
        self._send = send
        if self.sending and prepare.name is not None:
            # A request (XEP-0234 §5): only a plain file inside the shared folder.
            folder = Path(prepare.path)
            self.path = folder / sanitize(prepare.name)
            if (self.path.is_symlink() or not self.path.is_file()
                    or not inside(folder, self.path)):
                raise FileNotFoundError(f"{prepare.name!r} is not shared")
            self.size = self.path.stat().st_size
            self.partial = self.path
        elif self.sending:
            self.path = Path(prepare.path)
            self.partial = self.path
        else:
            folder = Path(prepare.path)
            folder.mkdir(parents=True, exist_ok=True)
            offer = partials.Offer(prepare.peer, prepare.name or "", prepare.size, prepare.date)
            found = partials.find(folder, offer)
            if found is not None:
                # An earlier transfer of this very offer stopped half-way: go on from there.
                self.partial, self.offset = found
                self.path = self.partial.with_name(self.partial.name[:-len(PARTIAL_SUFFIX)])
            else:
                self.path, self.partial = claim_partial(folder, sanitize(prepare.name))
                partials.remember(folder, self.partial, offer)
        self.incoming: Connection | None = None
        self.outgoing: Connection | None = None
        self.own_proxy: Connection | None = None
        self._server: asyncio.Server | None = None
        self._task: asyncio.Task[None] | None = None
        self.transferred = 0
        self.closed = False
        self._file: BinaryIO | None = None
        self._window = asyncio.Semaphore(ibb_window(1))
        self._digest = hashlib.sha256()
        self.sha256: str | None = None  # of the whole file, once all bytes are through
        self._expected_seq = 0
        self._last_progress = 0.0
        self._handshakes = 0  # SOCKS5 handshakes in progress at our streamhost
        self._failing: asyncio.Future[None] | None = None
        self._stop = threading.Event()  # tells a pump thread to end
        self._sock: socket.socket | None = None  # the pump thread's socket, while it runs
        # Idle clock (transfer.idle_timeout): runs once the transfer is accepted (the
        # receiver prepares on accept; the sender learns it when asked to connect).
        self._armed_at: float | None = None if self.sending else time.monotonic()
        self._seen = -1

    def _spawn(self, coro: Coroutine[Any, Any, None]) -> asyncio.Task[None]:
        """The task that moves the bytes; should it fail unexpectedly, the session ends
        with a reason and a log line rather than hanging until the idle timeout."""
        task = asyncio.create_task(coro)
        task.add_done_callback(self._task_done)
        return task

    def _task_done(self, task: asyncio.Task[None]) -> None:
        if task.cancelled() or self.closed or task.exception() is None:
            return
        exc = task.exception()
        log.error("transfer %s failed: %r", self.sid, exc, exc_info=exc)
        self._failing = asyncio.ensure_future(self._send(m.Process.SIGNALLING, m.WorkerFailed(
            self.sid, "failed-application", f"transfer failed: {exc!r}")))

    def arm_idle(self, now: float) -> None:
        if self._armed_at is None:
            self._armed_at = now

    def idle_for(self, now: float) -> float:
        """Seconds since the last byte moved (0 before accept and once all are through)."""
        if self._armed_at is None or self.closed or (self.size and self.transferred >= self.size):
            return 0.0
        if self.transferred != self._seen:
            self._seen, self._armed_at = self.transferred, now
        return now - self._armed_at

    # --- candidates ---------------------------------------------------------------

    async def listen(self) -> tuple[tuple[str, ...], int]:
        """Listen for the peer; the addresses to offer and the port."""
        self._server = await asyncio.start_server(self._accept, host="0.0.0.0", port=0)
        return tuple(host_addresses()), int(self._server.sockets[0].getsockname()[1])

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if self._handshakes >= MAX_HANDSHAKES or self.incoming is not None:
            writer.close()  # a streamhost serves one peer: no crowd of half-open strangers
            return
        server = Socks5Server({self.expected})
        self._handshakes += 1
        try:
            async with asyncio.timeout(CONNECT_TIMEOUT):  # the whole handshake, not a read
                while not server.ready:
                    data = await reader.read(512)
                    if not data:
                        raise Socks5Error("closed during handshake")
                    reply = server.receive_data(data)
                    if reply:
                        writer.write(reply)
                        await writer.drain()
                    if server.failed:
                        raise Socks5Error("wrong dstaddr")
        except (Socks5Error, TimeoutError, OSError) as exc:
            log.info("transfer %s: refused a connection: %s", self.sid, exc)
            writer.close()
            return
        finally:
            self._handshakes -= 1
        if self.incoming is not None:
            writer.close()  # one bytestream per session
            return
        _pause(writer)
        self.incoming = (reader, writer, server.leftover)

    async def connect(self, candidates: tuple[m.S5bCandidateInfo, ...], dstaddr: str,
                      own_proxy: bool = False) -> str | None:
        """The cid of the first candidate that completes SOCKS5, by priority
        (direct hosts and XEP-0065 proxies alike: both speak SOCKS5)."""
        for candidate in sorted(candidates, key=lambda c: -c.priority):
            try:
                connection = await asyncio.wait_for(
                    self._socks5_connect(candidate, dstaddr), CONNECT_TIMEOUT)
                if own_proxy:
                    self.own_proxy = connection
                else:
                    self.outgoing = connection
                return candidate.cid
            except (Socks5Error, TimeoutError, OSError) as exc:
                log.info("transfer %s: candidate %s:%d failed: %s", self.sid, candidate.host,
                         candidate.port, exc)
        return None

    async def _socks5_connect(self, candidate: m.S5bCandidateInfo, dstaddr: str) -> Connection:
        reader, writer = await asyncio.open_connection(candidate.host, candidate.port)
        client = Socks5Client(dstaddr)
        writer.write(client.initial())
        await writer.drain()
        while not client.ready:
            data = await reader.read(512)
            if not data:
                writer.close()
                raise Socks5Error("closed during handshake")
            out = client.receive_data(data)
            if out:
                writer.write(out)
                await writer.drain()
        _pause(writer)
        return reader, writer, client.leftover

    # --- data -------------------------------------------------------------------------

    def use(self, ours: bool, via_own_proxy: bool = False, offset: int = 0,
            size: int = 0) -> None:
        if self.sending:
            self.offset = offset
        elif size:
            self.size = size
        connection = self.own_proxy if via_own_proxy else (
            self.incoming if ours else self.outgoing)
        if connection is None:
            raise ConnectionError("the nominated connection does not exist")
        self._task = self._spawn(self._run(connection))

    async def _run(self, connection: Connection) -> None:
        _reader, writer, leftover = connection
        progress = asyncio.create_task(self._report_progress())
        try:
            digest = (await self._send_file(writer) if self.sending
                      else await self._receive_file(writer, leftover))
            self.sha256 = digest
        except (OSError, ConnectionError, pump.Stopped) as exc:
            if self.closed:
                return
            log.warning("transfer %s broke after %d bytes: %s", self.sid, self.transferred, exc)
            await self._send(m.Process.SIGNALLING, m.WorkerFailed(self.sid, "connectivity-error"))
            return
        finally:
            progress.cancel()
            if self.sending:
                writer.close()
        await self._progress(0.0)
        await self._done(digest)

    async def _done(self, sha256: str) -> None:
        """All bytes through: say so, with the SHA-256 and, for a sender that announces
        another XEP-0300 algorithm, that digest too (remembered per file version)."""
        digest = ""
        if self.sending and self.algo != "sha-256":
            digest = await self._whole_file_digest(self.algo)
        await self._send(m.Process.SIGNALLING, m.TransferDone(self.sid, self.size, sha256,
                                                              self.algo, digest))

    async def _whole_file_digest(self, algo: str) -> str:
        """The sent file's digest, in a thread, remembered per version of the file."""
        return await asyncio.to_thread(DIGESTS.hexdigest, self.path, algo)

    def _pump_socket(self, writer: asyncio.StreamWriter) -> socket.socket:
        """The bytestream's socket for a pump thread: a blocking duplicate (the
        transport was paused at the end of the handshake and reads nothing more)."""
        original = writer.get_extra_info("socket")
        sock = socket.socket(original.family, original.type, original.proto,
                             fileno=os.dup(original.fileno()))
        sock.setblocking(True)
        self._sock = sock
        return sock

    def _moved(self, count: int) -> None:
        """From a pump thread (via call_soon_threadsafe): more bytes went through."""
        self.transferred += count

    def _progress_from_thread(self) -> Callable[[int], None]:
        loop = asyncio.get_running_loop()

        def moved(count: int) -> None:
            loop.call_soon_threadsafe(self._moved, count)

        return moved

    async def _report_progress(self) -> None:
        last = 0.0
        while True:
            await asyncio.sleep(PROGRESS_INTERVAL)
            last = await self._progress(last)

    async def _send_file(self, writer: asyncio.StreamWriter) -> str:
        """sendfile() in a thread; the whole file's SHA-256 in another, or remembered
        from an earlier send of this very version of the file."""
        self.transferred = self.offset
        hashing = asyncio.ensure_future(self._whole_file_digest("sha-256"))
        sock = self._pump_socket(writer)
        try:
            with open(self.path, "rb") as fh:
                await asyncio.to_thread(pump.send_file, sock, fh, self.offset, self.size,
                                        self._progress_from_thread(), self._stop,
                                        self.max_rate, USE_SENDFILE)
        except BaseException:
            hashing.cancel()
            raise
        finally:
            self._release(sock)
        return await hashing

    async def _receive_file(self, writer: asyncio.StreamWriter, leftover: bytes) -> str:
        """recv_into, write and hash in a thread, from where an earlier attempt of this
        offer stopped (its digest state kept, or the partial file read again)."""
        digest = await self._resume_digest()
        self.transferred = self.offset
        sock = self._pump_socket(writer)
        sink = pump.HashingWriter(open_partial(self.partial), digest)
        try:
            _cut_at(sink.file, self.offset)
            head = leftover[:self.size - self.offset]
            sink.write(head)
            self.transferred += len(head)
            await asyncio.to_thread(pump.receive_file, sock, sink,
                                    self.size - self.offset - len(head),
                                    self._progress_from_thread(), self._stop)
        except BaseException:
            await asyncio.to_thread(sink.file.close)
            if sink.written and os.path.getsize(self.partial) == self.offset + sink.written:
                PARTIALS.keep(self.partial, digest)  # a resume continues this digest
            raise
        finally:
            self._release(sock)
        # close() may start writeback on some file systems: not on the loop.
        await asyncio.to_thread(sink.file.close)
        return str(digest.hexdigest())

    async def _resume_digest(self) -> Any:
        """SHA-256 state of the partial file's first ``offset`` bytes."""
        if not self.offset:
            return hashlib.sha256()
        kept = PARTIALS.take(self.partial, self.offset)
        if kept is not None:
            return kept
        return await asyncio.to_thread(digest_file, hashlib.sha256(), self.partial, self.offset)

    def _release(self, sock: socket.socket) -> None:
        self._sock = None
        with contextlib.suppress(OSError):
            sock.setblocking(False)  # the transport shares the file description
        sock.close()

    async def _progress(self, last: float) -> float:
        now = time.monotonic()
        if now - last < PROGRESS_INTERVAL:
            return last
        await self._send(m.Process.SUPERVISOR, m.TransferProgressEvent(
            time.time(), self.sid, self.transferred, self.size))
        return now

    # --- in-band (XEP-0261): blocks through signalling -------------------------------

    async def use_ibb(self, block_size: int, offset: int, size: int = 0) -> None:
        if size and not self.sending:
            self.size = size
        if self.sending:
            self.offset = offset
            self._window = asyncio.Semaphore(ibb_window(block_size))
            self._task = self._spawn(self._ibb_send(block_size))
        else:
            self._digest = await self._resume_digest()
            self.transferred = self.offset
            self._file = open_partial(self.partial)
            _cut_at(self._file, self.offset)
            self._expected_seq = 0
            self._last_progress = 0.0

    async def _ibb_send(self, block_size: int) -> None:
        """At most :func:`ibb_window` unacknowledged blocks: a slow receiver slows us, and
        neither side ever holds more than the window in memory. Every free slot is
        filled at once, in one message to signalling."""
        hashing = asyncio.ensure_future(self._whole_file_digest("sha-256"))
        self.transferred = self.offset
        last, seq = 0.0, 0
        try:
            with open(self.path, "rb") as fh:
                fh.seek(self.offset)
                while True:
                    await self._window.acquire()
                    blocks = [fh.read(block_size)]
                    while blocks[-1] and not self._window.locked() \
                            and len(blocks) * block_size < m.MAX_BATCH_BYTES:
                        await self._window.acquire()  # free: returns at once
                        blocks.append(fh.read(block_size))
                    if not blocks[-1]:
                        blocks.pop()
                        self._window.release()  # the slot taken for the end
                    if blocks:
                        await self._send(m.Process.SIGNALLING,
                                         m.IbbChunk(self.sid, seq, tuple(blocks)))
                        seq = m.next_seq(seq, len(blocks))
                        self.transferred += sum(map(len, blocks))
                        last = await self._progress(last)
                    if len(blocks) == 0 or self.transferred >= self.size:
                        break
            for _ in range(ibb_window(block_size)):  # every block acknowledged
                await self._window.acquire()
            sha256 = await hashing
        except OSError as exc:
            hashing.cancel()
            log.warning("transfer %s: %s", self.sid, exc)
            await self._send(m.Process.SIGNALLING, m.WorkerFailed(self.sid, "media-error"))
            return
        await self._progress(0.0)
        await self._done(sha256)

    def ibb_acked(self, count: int = 1) -> None:
        for _ in range(count):
            self._window.release()

    async def ibb_chunk(self, seq: int, blocks: tuple[bytes, ...]) -> bool:
        """Receiver: write consecutive blocks in order; False if they are out of
        sequence or would pass the announced size. Acknowledged once written."""
        if self._file is None or seq != self._expected_seq:
            return False
        if self.transferred + sum(map(len, blocks)) > self.size:
            return False
        for data in blocks:
            self._file.write(data)
            self._digest.update(data)
            self.transferred += len(data)
        self._expected_seq = m.next_seq(seq, len(blocks))
        self._last_progress = await self._progress(self._last_progress)
        await self._send(m.Process.SIGNALLING, m.IbbAck(self.sid, seq, len(blocks)))
        if self.transferred == self.size:
            self._file.close()
            self._file = None
            await self._progress(0.0)
            self.sha256 = self._digest.hexdigest()
            await self._send(m.Process.SIGNALLING,
                             m.TransferDone(self.sid, self.size, self.sha256))
        return True

    # --- end ----------------------------------------------------------------------------

    async def verify(self, algo: str | None, expected: str | None,
                     streamed_sha256: str) -> bool:
        """Does the partial file match the peer's XEP-0300 hash? SHA-256 was computed
        while the bytes arrived; another algorithm means reading the file once more,
        in a thread (sha3 runs below 1 GB/s: seconds the loop must not wait)."""
        if algo is None or expected is None:
            return False
        if algo == "sha-256":
            return streamed_sha256 == expected
        if algo not in HASHES:
            return False
        digest = await asyncio.to_thread(digest_file, HASHES[algo](), self.partial)
        return bool(digest.hexdigest() == expected)

    def commit(self, keep: bool) -> Path | None:
        """Receiver: the verified file gets its final name; a bad one is removed."""
        if self.sending:
            return None
        partials.forget(self.partial.parent, self.partial)
        if not keep:
            with contextlib.suppress(FileNotFoundError):
                self.partial.unlink()
            return None
        self.path = commit_name(self.partial, self.path)
        return self.path

    async def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        self._stop.set()
        if self._sock is not None:
            with contextlib.suppress(OSError):
                self._sock.shutdown(socket.SHUT_RDWR)  # a blocked pump thread returns
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        for connection in (self.incoming, self.outgoing, self.own_proxy):
            if connection is not None:
                connection[1].close()
        if self._file is not None:
            self._file.close()
            self._file = None
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()


def _pause(writer: asyncio.StreamWriter) -> None:
    """The handshake is done: from now on the bytes belong to a pump thread, so the
    transport must read nothing more into its buffer."""
    transport = writer.transport
    assert isinstance(transport, asyncio.ReadTransport)
    transport.pause_reading()


def _cut_at(file: BinaryIO, offset: int) -> None:
    """Position at ``offset``, dropping anything beyond it. A file already that short is
    not truncated: ext4 (auto_da_alloc) flushes a truncated-then-rewritten file when it
    is closed, which would cost a gigabyte's writeback at the end of every transfer."""
    file.seek(offset)
    if os.fstat(file.fileno()).st_size > offset:
        file.truncate()
