"""One record per session (signalling/records.py), and what signalling does with
its workers' requests when one worker exits."""

from __future__ import annotations

import asyncio

import pytest

from bus import messages as m
from signalling.errors import CommandError
from signalling.records import SessionRecord, Slot
from tests.unit.test_config import GOOD


def test_a_slot_reads_and_writes_one_part_of_the_records():
    records = {"s1": SessionRecord("s1", "bob@x/y", m.SessionKind.FILE, m.Direction.INCOMING)}
    files: Slot[str] = Slot(records, "file")
    calls: Slot[str] = Slot(records, "call")
    assert files.get("s1") is None and "s1" not in files
    files["s1"] = "state"
    assert files.get("s1") == "state" and records["s1"].file == "state"
    assert calls.setdefault("s1", "call") == "call" and calls.setdefault("s1", "x") == "call"
    assert list(files.items()) == [("s1", "state")]
    assert files.pop("s1") == "state" and records["s1"].file is None
    assert files.pop("s1", "gone") == "gone" and files.pop("nope") is None
    with pytest.raises(KeyError):
        files["nope"] = "no record, no part"  # the record exists from the session's start
    del records["s1"]
    assert calls.get("s1") is None  # dropped with its record


def test_a_worker_exit_fails_only_the_requests_addressed_to_it(tmp_path):
    from bus.config import load_config
    from signalling.service import Signalling

    path = tmp_path / "agent.toml"
    path.write_text(GOOD)
    svc = Signalling(load_config(path, env={}))

    async def main() -> tuple[BaseException | None, bool]:
        media = asyncio.ensure_future(svc.ask(m.Process.MEDIA, m.PrepareMedia("c1", True),
                                              m.MediaPrepared, "c1"))
        transfer = asyncio.ensure_future(svc.ask(
            m.Process.TRANSFER, m.PrepareTransfer("f1", True, "/x", 1, "d"),
            m.TransferPrepared, "f1"))
        await asyncio.sleep(0)
        await svc.handle(m.Process.SUPERVISOR, m.WorkerStateChanged(
            m.Process.MEDIA, m.WorkerState.EXITED, 0, 1, -9))
        await asyncio.wait({media}, timeout=2)
        failed = media.exception() if media.done() else None
        still_waiting = not transfer.done()
        transfer.cancel()
        return failed, still_waiting

    failed, still_waiting = asyncio.run(main())
    assert isinstance(failed, CommandError) and "media worker exited" in str(failed)
    assert still_waiting
