"""Placement over a pool of workers: the live member holding fewest sessions, a
member that is down skipped, one that joins taken in (signalling's records only)."""

from __future__ import annotations

from types import SimpleNamespace

from bus import messages as m
from signalling.call_sessions import CallSessions, CallState
from signalling.records import SessionRecord


def pool(workers: int) -> tuple[CallSessions, dict[str, SessionRecord]]:
    records: dict[str, SessionRecord] = {}
    host = SimpleNamespace(records=records,
                           config=SimpleNamespace(media=SimpleNamespace(workers=workers)))
    return CallSessions(host), records  # type: ignore[arg-type]


def hold(calls: CallSessions, records: dict[str, SessionRecord], sid: str) -> str:
    records[sid] = SessionRecord(sid, "bob@x/y", m.SessionKind.CALL, m.Direction.OUTGOING)
    worker = calls.place(sid)
    records[sid].call = CallState(worker=worker)
    return worker


def test_calls_spread_over_the_pool_and_skip_a_member_that_is_down():
    calls, records = pool(3)
    assert calls.pool.names == ("media", "media-2", "media-3")
    assert [hold(calls, records, f"c{i}") for i in range(4)] == [
        "media", "media-2", "media-3", "media"]
    calls.worker_changed("media-2", m.WorkerState.EXITED)
    assert hold(calls, records, "c4") == "media-3"  # media holds 2, media-2 is down
    calls.worker_changed("media-2", m.WorkerState.RESTARTED)
    del records["c1"]  # its call ended with the crash
    assert hold(calls, records, "c5") == "media-2"


def test_a_worker_that_joins_takes_calls_and_all_down_falls_back_to_the_first():
    calls, records = pool(1)
    hold(calls, records, "c0")
    calls.worker_changed("media-9", m.WorkerState.STARTED)
    assert calls.pool.names == ("media", "media-9")
    assert hold(calls, records, "c1") == "media-9"
    calls.worker_changed("media", m.WorkerState.EXITED)
    calls.worker_changed("media-9", m.WorkerState.EXITED)
    assert hold(calls, records, "c2") == "media"  # its restart is under way
