"""Calls across a lossy network: two agents in their own network namespaces."""

import shutil
import tempfile
import time
from pathlib import Path

import pytest

from scripts.local_prosody import LocalProsody
from tests.integration.conftest import USERS, Agent, make_ready
from tests.integration.netns import Lab, namespaces_usable
from tests.integration.test_voice import dominant_hz, latest, peak_frequency, voiced

pytestmark = pytest.mark.prosody


@pytest.fixture(scope="module")
def lab():
    reason = namespaces_usable()
    if reason:
        pytest.skip(reason)
    if shutil.which("nft") is None and shutil.which("tc") is None:
        pytest.skip("neither tc nor nft is installed (scripts/setup.sh installs nftables)")
    lab = Lab()
    data = Path(tempfile.mkdtemp(prefix="pj-lab-"))
    server = LocalProsody(data, tls=True,
                          interfaces=tuple(gw for gw, _ in lab.addresses.values()),
                          prefix=("ip", "netns", "exec", lab.router))
    try:
        server.configure(USERS)
        server.start()
        yield lab, server
    finally:
        server.stop()
        lab.close()
        shutil.rmtree(data, ignore_errors=True)


@pytest.mark.parametrize("loss", [5, 20])
def test_call_survives_loss(lab, folder, loss, record_property):
    lab, server = lab
    if not lab.can_delay:
        record_property("impairment", f"{loss}% UDP loss via nftables; this kernel has no "
                                      "sch_netem, so the 30 ms +-10 ms delay is not applied")
    agents = []
    try:
        for user, tone in (("alice", 440), ("bob", 660)):
            host = "a" if user == "alice" else "b"
            gw, _ = lab.addresses[host]
            agent = Agent(server, user, folder, prefix=lab.prefix(host), address=gw,
                          tls="optional",
                          extra=f'[audio]\ninput = "tone:{tone}"\n'
                                f'output = "file:{folder}/{user}-heard.wav"\n')
            agents.append(agent)
            agent.wait_connected(30)
        alice, bob = agents
        make_ready(alice, bob, timeout=20)
        lab.impair(loss, delay_ms=30, jitter_ms=10)
        sid = alice.client.call(bob.bare)
        bob.state(sid, "RECEIVEDINITIATE", timeout=15)
        bob.client.accept(sid)
        alice.state(sid, "INPROGRESS", timeout=30)
        bob.state(sid, "INPROGRESS", timeout=30)
        connected = alice.watch.wait_for(5, event="transport.state", sid=sid,
                                         state="connected")
        assert connected["local"] == "host"  # the routed 10.77.x path, no NAT here
        time.sleep(4.0)
        stats = {a.user: latest(a, event="media.stats", sid=sid) for a in agents}
        alice.client.hangup(sid)
        bob.state(sid, "DEINIT", timeout=15)
        for user, s in stats.items():
            assert s["received_packets"] > 100, (user, s)
            assert s["lost_packets"] > 0, (user, s)  # the loss is seen and reported
            ratio = s["lost_packets"] / (s["lost_packets"] + s["received_packets"])
            assert ratio < loss / 100 * 2.5 + 0.02, (user, ratio)
        time.sleep(0.5)
        for listener, expected in (("alice", 660), ("bob", 440)):
            rate, _seconds, samples = dominant_hz(folder / f"{listener}-heard.wav")
            sound = voiced(samples, rate)
            assert len(sound) / rate > 2.5, f"{listener} heard {len(sound) / rate:.1f} s"
            assert abs(peak_frequency(sound, rate) - expected) <= 5, listener
    finally:
        import os
        if os.environ.get("PJ_KEEP_LOGS"):
            shutil.copytree(folder, f"/tmp/last-lab-{loss}", dirs_exist_ok=True)
        for host in lab.hosts:
            lab.clear(host)
        for agent in agents:
            agent.stop()
