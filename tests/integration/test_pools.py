"""A pool of media workers (media.workers): calls are placed on the least busy live
worker, a killed worker ends only its own calls (the others keep receiving audio), it
comes back and takes calls again."""

from __future__ import annotations

import os
import signal
import time

import pytest

from tests.integration.conftest import make_ready

pytestmark = pytest.mark.prosody


def latest_received(agent, sid):
    while agent.watch.poll(0.05) is not None:
        pass
    stats = [e for e in agent.watch.seen if e.get("event") == "media.stats"
             and e.get("sid") == sid]
    return stats[-1]["received_packets"] if stats else 0


def call(alice, bob):
    sid = alice.client.call(bob.bare)
    bob.state(sid, "RECEIVEDINITIATE")
    bob.client.accept(sid)
    alice.state(sid, "INPROGRESS", timeout=15)
    bob.state(sid, "INPROGRESS", timeout=15)
    return sid


def worker_of(agent, sid):
    return next(s["worker"] for s in agent.client.sessions() if s["sid"] == sid)


def test_two_media_workers_share_calls_and_a_crash_ends_only_its_own(start_agent):
    pool = '[media]\nworkers = 2\n[audio]\ninput = "tone:440"\noutput = "null"\n'
    alice = start_agent("alice", extra=pool)
    bob = start_agent("bob", extra='[audio]\ninput = "tone:660"\noutput = "null"\n')
    make_ready(alice, bob)
    workers = alice.client.status()["workers"]
    assert {"media", "media-2"} <= set(workers) and all(
        workers[w]["alive"] for w in ("media", "media-2"))

    first, second = call(alice, bob), call(alice, bob)
    placed = {worker_of(alice, first), worker_of(alice, second)}
    assert placed == {"media", "media-2"}, placed  # one call on each

    victim = worker_of(alice, first)
    os.kill(workers[victim]["pid"], signal.SIGKILL)
    end = alice.state(first, "DEINIT", timeout=10)
    assert end["reason"] == "failed-application"
    before = latest_received(alice, second)
    time.sleep(2.0)
    assert latest_received(alice, second) > before + 50, "the other worker's call went deaf"
    assert not [e for e in alice.watch.seen if e.get("event") == "session.state"
                and e.get("sid") == second and e.get("state") == "DEINIT"]

    alice.watch.wait_for(10, event="worker.state", worker=victim, state="restarted")
    third = call(alice, bob)  # the restarted worker is the least busy: it takes it
    assert worker_of(alice, third) == victim
    for sid in (second, third):
        alice.client.hangup(sid)
        bob.state(sid, "DEINIT", timeout=10)


def test_two_transfer_workers_carry_two_transfers_at_once(start_agent, folder):
    import hashlib

    # Paced (2 MB/s) so both transfers are seen under way at once.
    pool = "[transfer]\nworkers = 2\nmax_rate = 2000000\n"
    alice = start_agent("alice", extra=pool)
    bob = start_agent("bob", extra=f'[transfer]\nworkers = 2\ndownload_dir = "{folder}/dl"\n')
    make_ready(alice, bob)
    assert {"transfer", "transfer-2"} <= set(alice.client.status()["workers"])
    sids, digests = [], {}
    for i in range(2):
        data = os.urandom(3_000_000)
        path = folder / f"pool-{i}.bin"
        path.write_bytes(data)
        sid = alice.client.send_file(bob.bare, str(path))
        sids.append(sid)
        digests[sid] = hashlib.sha256(data).hexdigest()
    for sid in sids:
        bob.state(sid, "RECEIVEDINITIATE")
    for sid in sids:
        bob.client.accept(sid)
    for sid in sids:
        bob.watch.wait_for(10, event="transfer.progress", sid=sid)
    on = {sid: (worker_of(alice, sid), worker_of(bob, sid)) for sid in sids}
    for sid in sids:
        done = bob.watch.wait_for(30, event="transfer.complete", sid=sid)
        assert done["sha256"] == digests[sid] and done["verified"]
    assert {on[s][0] for s in sids} == {"transfer", "transfer-2"}, on  # one each, sender
    assert {on[s][1] for s in sids} == {"transfer", "transfer-2"}, on  # and receiver
