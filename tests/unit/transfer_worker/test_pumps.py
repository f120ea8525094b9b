"""The bytes of a transfer: sendfile and its fallback, spliced and buffered receiving,
digests remembered per file version and continued on resume, and a worker loop that
stays responsive while a gigabyte goes through (real sockets and files, one process)."""

from __future__ import annotations

import asyncio
import hashlib
import os
import socket
import threading
import time
from pathlib import Path

import pytest

from bus import messages as m
from transfer_worker import pump, transfer
from transfer_worker.hashes import FileDigests, PartialDigests, digest_file
from transfer_worker.pump import HashingWriter


def _payload(path: Path, megabytes: int) -> bytes:
    """A file of distinct 1 MiB blocks; returns its SHA-256."""
    block = os.urandom(1 << 20)
    digest = hashlib.sha256()
    with open(path, "wb") as fh:
        for i in range(megabytes):
            data = i.to_bytes(4, "big") + block[4:]
            fh.write(data)
            digest.update(data)
    return digest.digest()


def _move(source: Path, target: Path, offset: int, use_sendfile: bool,
          use_splice: bool) -> tuple[str, int]:
    """Send ``source`` from ``offset`` over loopback TCP into ``target`` at ``offset``;
    the receiving digest (continuing ``target``'s first ``offset`` bytes) and bytes."""
    size = source.stat().st_size
    server = socket.create_server(("127.0.0.1", 0))
    errors: list[BaseException] = []

    def send() -> None:
        try:
            with socket.create_connection(server.getsockname()) as sock, \
                    open(source, "rb") as fh:
                pump.send_file(sock, fh, offset, size, lambda _n: None, threading.Event(),
                               use_sendfile=use_sendfile)
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    sender = threading.Thread(target=send)
    sender.start()
    conn, _ = server.accept()
    digest = digest_file(hashlib.sha256(), target, offset) if offset else hashlib.sha256()
    with conn, open(target, "r+b" if offset else "w+b") as fh:
        fh.seek(offset)
        fh.truncate()
        sink = HashingWriter(fh, digest)
        moved: list[int] = []
        pump.receive_file(conn, sink, size - offset, moved.append, threading.Event(),
                          use_splice=use_splice)
    sender.join()
    server.close()
    assert not errors, errors
    assert sum(moved) == size - offset and sink.written == size - offset
    return digest.hexdigest(), target.stat().st_size


@pytest.mark.parametrize("use_sendfile", [True, False])
@pytest.mark.parametrize("use_splice", [True, False])
def test_every_path_yields_the_same_file_and_hash(tmp_path, use_sendfile, use_splice):
    source = tmp_path / "source.bin"
    expected = _payload(source, 24)
    with open(source, "ab") as fh:
        fh.write(b"tail that is not a whole block")
    expected = hashlib.sha256(source.read_bytes()).hexdigest()
    target = tmp_path / "target.bin"
    digest, size = _move(source, target, 0, use_sendfile, use_splice)
    assert (digest, size) == (expected, source.stat().st_size)
    assert target.read_bytes() == source.read_bytes()


@pytest.mark.parametrize("use_splice", [True, False])
def test_a_resumed_transfer_hashes_as_a_fresh_one(tmp_path, use_splice):
    source = tmp_path / "source.bin"
    _payload(source, 16)
    fresh = hashlib.sha256(source.read_bytes()).hexdigest()
    target = tmp_path / "target.part"
    target.write_bytes(source.read_bytes()[:5_000_000])  # what an earlier attempt left
    digest, size = _move(source, target, 5_000_000, True, use_splice)
    assert digest == fresh and size == source.stat().st_size


def test_an_interrupted_receive_keeps_a_digest_that_a_resume_continues(tmp_path):
    """The digest state of what was written is kept; the resume continues it without
    reading the partial file, and the result equals a fresh hash."""
    data = os.urandom(3_000_000)
    partial = tmp_path / "f.part"
    left, right = socket.socketpair()
    digest = hashlib.sha256()
    with open(partial, "w+b") as fh:
        sink = HashingWriter(fh, digest)

        def vanish() -> None:  # the sender goes away after 1.2 MB
            left.sendall(data[:1_200_000])
            left.close()

        sender = threading.Thread(target=vanish)
        sender.start()
        with pytest.raises(ConnectionError):
            pump.receive_file(right, sink, len(data), lambda _n: None, threading.Event())
        sender.join()
    right.close()
    assert sink.written == partial.stat().st_size == 1_200_000
    kept = PartialDigests()
    kept.keep(partial, digest)
    assert kept.take(partial, 999) is None  # not what the file holds: never reused
    kept.keep(partial, digest)
    state = kept.take(partial, 1_200_000)
    assert state is not None
    state.update(data[1_200_000:])
    assert state.hexdigest() == hashlib.sha256(data).hexdigest()


def test_a_file_is_hashed_once_per_version(tmp_path):
    path = tmp_path / "f.bin"
    path.write_bytes(b"a" * 100_000)
    digests = FileDigests()
    first = digests.hexdigest(path, "sha-256")
    assert digests.hexdigest(path, "sha-256") == first and digests.computed == 1
    assert digests.hexdigest(path, "sha3-256") == hashlib.sha3_256(b"a" * 100_000).hexdigest()
    time.sleep(0.01)
    path.write_bytes(b"b" * 100_000)  # same size, another version
    second = digests.hexdigest(path, "sha-256")
    assert second == hashlib.sha256(b"b" * 100_000).hexdigest() != first
    assert digests.computed == 3


# --- two transfers in one loop --------------------------------------------------------


class Outbox:
    def __init__(self) -> None:
        self.messages: list[m.Message] = []
        self.done = asyncio.Event()

    async def send(self, _to: m.Process, message: m.Message) -> None:
        self.messages.append(message)
        if isinstance(message, m.TransferDone):
            self.done.set()


async def _loop_lag_during(source: Path, folder: Path, size: int) -> tuple[float, list]:
    """Send ``source`` from one Transfer to another through real SOCKS5 on loopback,
    both in this loop; the worst lateness of a 5 ms ticker meanwhile."""
    expected = "d" * 40
    sent, received = Outbox(), Outbox()
    sender = transfer.Transfer(m.PrepareTransfer("s", True, str(source), size, expected),
                               sent.send)
    receiver = transfer.Transfer(m.PrepareTransfer("r", False, str(folder), size, expected,
                                                   name="big.bin", peer="alice@x"),
                                 received.send)
    _, port = await receiver.listen()
    cid = await sender.connect((m.S5bCandidateInfo("c1", "127.0.0.1", "bob@x/a", port, 1,
                                                   "direct"),), expected)
    assert cid == "c1"
    await asyncio.sleep(0.05)  # the receiver's side of the handshake completes
    worst = 0.0
    running = True

    async def tick() -> None:
        nonlocal worst
        loop = asyncio.get_running_loop()
        while running:
            before = loop.time()
            await asyncio.sleep(0.005)
            worst = max(worst, loop.time() - before - 0.005)

    ticker = asyncio.create_task(tick())
    receiver.use(ours=True)
    sender.use(ours=False)
    await asyncio.wait_for(asyncio.gather(sent.done.wait(), received.done.wait()), 120)
    running = False
    await ticker
    await sender.close()
    await receiver.close()
    return worst, sent.messages + received.messages


def test_a_gigabyte_leaves_the_loop_free(tmp_path):
    source = tmp_path / "big.bin"
    _payload(source, 1024)
    expected = transfer.DIGESTS.hexdigest(source, "sha-256")  # what the receiver must find
    worst, messages = asyncio.run(_loop_lag_during(source, tmp_path / "in", 1 << 30))
    done = [x for x in messages if isinstance(x, m.TransferDone)]
    assert {d.sha256 for d in done} == {expected} and len(done) == 2
    assert any(isinstance(x, m.TransferProgressEvent) for x in messages)
    assert worst < 0.05, f"the loop was held {worst * 1000:.0f} ms"
    (tmp_path / "in" / "big.bin.part").unlink()
    source.unlink()
