"""The bytes of a SOCKS5 bytestream, moved in a thread beside the worker's loop.

Once the bytestream is nominated (XEP-0260 §2.4) nothing but file bytes cross
it, so there is no protocol left to run on the event loop: a thread does the
copy with calls that release the GIL — ``os.sendfile`` from the page cache to
the socket (no copy through Python), or ``recv_into`` reused buffers, a write
from each and, in a second thread, a hash update over the same memory — and the
loop stays
free for heartbeats, signalling and other transfers. ``stop`` (and shutting
the socket down) ends a pump early; ``progress`` is called at most every
``PROGRESS_EVERY`` seconds from the thread. Socket buffers are left to the
kernel: setting SO_RCVBUF/SO_SNDBUF would switch off Linux's autotuning, which
sizes them for the link (up to ``tcp_rmem``/``tcp_wmem``) better than a constant.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import queue
import socket
import threading
import time
from collections.abc import Callable
from typing import Any, BinaryIO

CHUNK = 1024 * 1024  # one receive buffer
RING = 4  # buffers between receiving and hashing: memory stays flat whatever the size
SLICE = 8 * 1024 * 1024  # bytes per sendfile() call: progress and rate between slices
PROGRESS_EVERY = 0.1

Progress = Callable[[int], None]


class Stopped(Exception):
    """The pump was asked to stop before the end."""


class _Reporter:
    """Batches progress so the loop is woken ~10 times a second, not per chunk."""

    def __init__(self, progress: Progress) -> None:
        self._progress = progress
        self._pending = 0
        self._at = time.monotonic()

    def add(self, count: int) -> None:
        self._pending += count
        now = time.monotonic()
        if now - self._at >= PROGRESS_EVERY:
            self.flush()
            self._at = now

    def flush(self) -> None:
        if self._pending:
            self._progress(self._pending)
            self._pending = 0


def send_file(sock: socket.socket, fh: BinaryIO, offset: int, size: int, progress: Progress,
              stop: threading.Event, max_rate: int = 0, use_sendfile: bool = True) -> None:
    """Send bytes ``offset..size`` of ``fh`` on the blocking ``sock``."""
    reporter = _Reporter(progress)
    started, position = time.monotonic(), offset
    buffer = None if use_sendfile else memoryview(bytearray(CHUNK))
    try:
        while position < size:
            if stop.is_set():
                raise Stopped()
            want = min(SLICE if buffer is None else len(buffer), size - position)
            if buffer is None:
                sent = os.sendfile(sock.fileno(), fh.fileno(), position, want)
                if sent == 0:
                    raise ConnectionError("the file ended before its announced size")
            else:
                fh.seek(position)
                sent = fh.readinto(buffer[:want])  # type: ignore[attr-defined]
                if not sent:
                    raise ConnectionError("the file ended before its announced size")
                sock.sendall(buffer[:sent])
            position += sent
            reporter.add(sent)
            if max_rate:
                ahead = (position - offset) / max_rate - (time.monotonic() - started)
                if ahead > 0:
                    stop.wait(ahead)
    finally:
        reporter.flush()


class HashingWriter:
    """A file written at its position with a digest fed the same bytes; ``written``
    counts them, so an interrupted receive knows what its digest state covers."""

    def __init__(self, file: BinaryIO, digest: Any) -> None:
        self.file = file
        self.digest = digest
        self.written = 0

    def write(self, data: bytes | memoryview) -> None:
        self.file.write(data)
        self.digest.update(data)
        self.written += len(data)


def receive_file(sock: socket.socket, sink: HashingWriter, remaining: int,
                 progress: Progress, stop: threading.Event, use_splice: bool = True) -> None:
    """Receive exactly ``remaining`` bytes from the blocking ``sock`` into ``sink`` (at
    its file's position): spliced where the kernel can, else through buffers."""
    if use_splice and hasattr(os, "splice"):
        sink.file.flush()
        try:
            _receive_spliced(sock, sink, remaining, progress, stop)
            return
        except _NoSplice:
            pass  # nothing moved yet: the buffered way below
    _receive_buffered(sock, sink, remaining, progress, stop)


class _NoSplice(Exception):
    """splice() is refused for these descriptors (before any byte moved)."""


def _receive_spliced(sock: socket.socket, sink: HashingWriter, remaining: int,
                     progress: Progress, stop: threading.Event) -> None:
    """Socket -> pipe -> file with splice(): the bytes go from the socket's buffers to
    the page cache without a copy through user space. A hashing thread reads them
    back from the page cache behind the writer (a copy, on the other core), so
    ``sink.written`` — bytes written and hashed — trails the write position and
    equals it once this returns or raises."""
    fd = sink.file.fileno()
    start = position = sink.file.tell()
    read_end, write_end = os.pipe2(os.O_CLOEXEC)
    with contextlib.suppress(OSError):
        fcntl.fcntl(write_end, _F_SETPIPE_SZ, CHUNK)
    written = _Position(position)
    failed: list[BaseException] = []
    hasher = threading.Thread(target=_hash_behind, args=(sink, fd, position, written, failed),
                              daemon=True, name="pump-hash")
    hasher.start()
    reporter = _Reporter(progress)
    try:
        while remaining > 0:
            if stop.is_set():
                raise Stopped()
            try:
                count = os.splice(sock.fileno(), write_end, min(CHUNK, remaining))
            except OSError as exc:
                if position == start and exc.errno in (errno.EINVAL, errno.ENOSYS):
                    raise _NoSplice() from None
                raise
            if count == 0:
                raise ConnectionError("the sender closed before the end")
            moved = 0
            while moved < count:
                moved_now = os.splice(read_end, fd, count - moved, offset_dst=position)
                moved += moved_now
                position += moved_now
            written.advance(position)
            remaining -= count
            reporter.add(count)
    finally:
        written.finish()
        hasher.join()
        os.close(read_end)
        os.close(write_end)
        sink.file.seek(position)
        reporter.flush()
    if failed:
        raise failed[0]  # the digest is short of what was written: never a wrong hash


_F_SETPIPE_SZ = 1031  # fcntl.F_SETPIPE_SZ (Linux), named in fcntl from Python 3.10 on


class _Position:
    """How far the writer got, for the hashing thread that follows it."""

    def __init__(self, position: int) -> None:
        self.value = position
        self.finished = False
        self._changed = threading.Condition()

    def advance(self, position: int) -> None:
        with self._changed:
            self.value = position
            self._changed.notify()

    def finish(self) -> None:
        with self._changed:
            self.finished = True
            self._changed.notify()

    def wait_beyond(self, position: int) -> int | None:
        """The write position once it is past ``position``; None when it never will be."""
        with self._changed:
            while self.value <= position and not self.finished:
                self._changed.wait()
            return self.value if self.value > position else None


def _hash_behind(sink: HashingWriter, fd: int, position: int, written: _Position,
                 failed: list[BaseException]) -> None:
    buffer = memoryview(bytearray(CHUNK))
    try:
        while (upto := written.wait_beyond(position)) is not None:
            while position < upto:
                count = os.preadv(fd, [buffer[:min(CHUNK, upto - position)]], position)
                if count <= 0:
                    raise OSError(f"the file ended at {position} while hashing it back")
                sink.digest.update(buffer[:count])
                sink.written += count
                position += count
    except OSError as exc:
        failed.append(exc)


def _receive_buffered(sock: socket.socket, sink: HashingWriter, remaining: int,
                      progress: Progress, stop: threading.Event) -> None:
    """Receive through a ring of buffers.

    Two threads over a ring of buffers: this one receives into a free buffer and
    writes it; a hashing thread feeds the digest from the written buffers and hands
    them back. Each call releases the GIL, so on two cores the hash costs no time
    on the copy's path. ``sink.written`` counts only bytes both written and hashed.
    """
    free: queue.Queue[memoryview] = queue.Queue()
    for _ in range(RING):
        free.put(memoryview(bytearray(CHUNK)))
    full: queue.Queue[tuple[memoryview, int] | None] = queue.Queue()
    hasher = threading.Thread(target=_hash_ring, args=(sink, full, free), daemon=True,
                              name="pump-hash")
    hasher.start()
    reporter = _Reporter(progress)
    try:
        while remaining > 0:
            if stop.is_set():
                raise Stopped()
            buffer = free.get()
            filled, want = 0, min(CHUNK, remaining)
            try:
                while filled < want:
                    count = sock.recv_into(buffer[filled:want])
                    if count == 0:
                        raise ConnectionError("the sender closed before the end")
                    filled += count
            finally:
                if filled:
                    sink.file.write(buffer[:filled])
                    full.put((buffer, filled))
            remaining -= filled
            reporter.add(filled)
    finally:
        full.put(None)
        hasher.join()
        reporter.flush()


def _hash_ring(sink: HashingWriter, full: queue.Queue[tuple[memoryview, int] | None],
               free: queue.Queue[memoryview]) -> None:
    while (item := full.get()) is not None:
        buffer, count = item
        sink.digest.update(buffer[:count])
        sink.written += count
        free.put(buffer)
