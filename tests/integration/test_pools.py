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


def wait_alive(agent, worker, timeout=20.0):
    """The pid of ``worker`` once the agent's status says it is alive."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = agent.client.status()["workers"].get(worker)
        if found and found["alive"]:
            return found["pid"]
        time.sleep(0.1)
    raise AssertionError(f"{worker} never joined: {agent.client.status()['workers']}")


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


def test_a_media_worker_in_another_namespace_joins_over_tcp_and_curve(folder):
    """A media worker started on its own on another host (here: another network
    namespace) joins alice's bus over tcp:// with CURVE, announces itself and carries
    her call, audio both ways; its host's addresses are the call's candidates."""
    import shutil
    import subprocess
    import sys
    import tempfile
    from pathlib import Path

    from bus.curve import make_keys
    from scripts.agents import ROOT, USERS, Agent
    from scripts.local_prosody import LocalProsody
    from tests.integration.netns import Lab, namespaces_usable
    from tests.integration.test_voice import dominant_hz, peak_frequency, voiced

    reason = namespaces_usable()
    if reason:
        pytest.skip(reason)
    lab = Lab(hosts=("a", "b", "w"))
    data = Path(tempfile.mkdtemp(prefix="pj-pool-"))
    server = LocalProsody(data, tls=True,
                          interfaces=tuple(gw for gw, _ in lab.addresses.values()),
                          prefix=("ip", "netns", "exec", lab.router))
    agents, remote, extra = [], None, []
    try:
        server.configure(USERS)
        server.start()
        keys = make_keys(folder / "bus-keys")
        _, alice_addr = lab.addresses["a"]
        bus = {"PYJINGLE_BUS_ENDPOINT": f"tcp://{alice_addr}:47123",
               "PYJINGLE_BUS_CURVE_KEYS": str(keys)}
        for user, host, tone, env in (
                ("alice", "a", 440, bus | {"PYJINGLE_BUS_SPAWN": "signalling,transfer"}),
                ("bob", "b", 660, {})):
            gw, _ = lab.addresses[host]
            agents.append(Agent(server, user, folder, prefix=lab.prefix(host), address=gw,
                                tls="optional", extra=f'[audio]\ninput = "tone:{tone}"\n'
                                      f'output = "file:{folder}/{user}-heard.wav"\n', env=env))
        alice, bob = agents
        log = open(folder / "remote-media.log", "wb")  # noqa: SIM115
        env = {k: v for k, v in os.environ.items() if not k.startswith("PYJINGLE_")} | bus
        remote = subprocess.Popen([*lab.prefix("w"), sys.executable, "-m", "media_worker",
                                   "--config", str(alice.config)], cwd=ROOT, env=env,
                                  stdout=log, stderr=subprocess.STDOUT)
        for agent in agents:
            agent.wait_connected(30)
        # (status, not the worker.state event: that may be published before the
        # event subscription is through, ZeroMQ's slow joiner)
        try:
            assert wait_alive(alice, "media") == remote.pid  # ip netns exec execs it
        except AssertionError as exc:
            log.flush()
            raise AssertionError(f"{exc}\nworker log: "
                                 f"{(folder / 'remote-media.log').read_text()[-3000:]}"
                                 f"\nagent log: {alice.log_text()}") from None
        make_ready(alice, bob, timeout=20)
        sid = call(alice, bob)
        connected = alice.watch.wait_for(10, event="transport.state", sid=sid,
                                         state="connected")
        assert connected["local"] == "host"
        time.sleep(3.0)
        alice.client.hangup(sid)
        bob.state(sid, "DEINIT", timeout=10)
        for user, expected in (("alice", 660), ("bob", 440)):
            rate, _, samples = dominant_hz(folder / f"{user}-heard.wav")
            sound = voiced(samples, rate)
            assert len(sound) > rate, f"{user} heard nothing"
            assert abs(peak_frequency(sound, rate) - expected) < 15

        # A second worker nobody declared joins under its own name and takes calls.
        second = subprocess.Popen([*lab.prefix("w"), sys.executable, "-m", "media_worker",
                                   "--config", str(alice.config), "--name", "media-2"],
                                  cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
        extra.append(second)
        assert wait_alive(alice, "media-2") == second.pid
        first, other = call(alice, bob), call(alice, bob)
        assert {worker_of(alice, first), worker_of(alice, other)} == {"media", "media-2"}
        for sid in (first, other):
            alice.client.hangup(sid)
            bob.state(sid, "DEINIT", timeout=10)
    finally:
        for proc in extra:
            proc.terminate()
            proc.wait(10)
        for agent in agents:
            agent.stop()
        if remote is not None:
            remote.terminate()
            remote.wait(10)
        server.stop()
        lab.close()
        shutil.rmtree(data, ignore_errors=True)
