"""The NAT matrix: a call (tones both ways) and a 5 MB file between two agents
behind NATs of each kind, with Prosody (XEP-0215 -> coturn) on the "internet".

Run alone: ``scripts/test.sh tests/integration/test_nat_matrix.py`` (root; the
tests skip, saying why, where network namespaces cannot be made).
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
import time
from pathlib import Path

import pytest

from scripts.local_coturn import LocalCoturn
from scripts.local_prosody import LocalProsody
from tests.integration.conftest import USERS, Agent, make_ready
from tests.integration.natlab import SERVER, NatLab
from tests.integration.netns import namespaces_usable
from tests.integration.test_voice import dominant_hz, latest, peak_frequency, voiced

pytestmark = pytest.mark.prosody
SECRET = "matrix-secret"


@pytest.fixture(scope="module")
def internet():
    reason = namespaces_usable()
    if reason:
        pytest.skip(reason)
    if shutil.which("nft") is None or shutil.which("turnserver") is None:
        pytest.skip("nftables and coturn are needed (scripts/setup.sh installs them)")
    lab = NatLab()
    data = Path(tempfile.mkdtemp(prefix="pj-nat-"))
    turn = LocalCoturn(data / "turn", auth_secret=SECRET, ip=SERVER, prefix=lab.server_prefix())
    server = LocalProsody(data / "prosody", tls=True, interfaces=(SERVER,),
                          prefix=lab.server_prefix(), turn=(SERVER, 0, SECRET, 3600))
    try:
        turn.start()
        server.turn = (SERVER, turn.port, SECRET, 3600)
        server.configure(USERS)
        server.start()
        yield lab, server
    finally:
        server.stop()
        turn.stop()
        lab.close()
        if os.environ.get("PJ_KEEP_LOGS"):
            shutil.copy(data / "turn" / "turnserver.log", "/tmp/last-nat-turnserver.log")
        shutil.rmtree(data, ignore_errors=True)


def start_pair(lab, server, folder, extra=""):
    agents = []
    for user, side, tone in (("alice", "a", 440), ("bob", "b", 660)):
        agent = Agent(server, user, folder, prefix=lab.prefix(side), address=SERVER,
                      tls="optional",
                      extra=f'[audio]\ninput = "tone:{tone}"\n'
                            f'output = "file:{folder}/{user}-heard.wav"\n'
                            '[policy]\nauto_accept_calls = "all"\nauto_accept_files = "all"\n'
                            f'[transfer]\ndownload_dir = "{folder}/{user}-files"\n{extra}')
        agents.append(agent)
    for agent in agents:
        agent.wait_connected(30)
    make_ready(*agents, timeout=20)
    return agents


# mode -> what the chosen candidate pair must look like, from alice's side
EXPECT = {
    "open": lambda local, remote: local == "host" and remote == "host",
    "cone": lambda local, remote: "relay" not in (local, remote)
    and ({local, remote} & {"srflx", "prflx"}),
    "symmetric": lambda local, remote: "relay" in (local, remote),
    "symmetric-unfiltered": lambda local, remote: "relay" in (local, remote),
    "udp-blocked": lambda local, remote: local == "relay",
}


@pytest.mark.parametrize("mode", list(EXPECT))
def test_call_and_file_across(internet, folder, mode, record_property):
    lab, server = internet
    lab.set_mode(mode)
    agents = start_pair(lab, server, folder)
    alice, bob = agents
    try:
        started = time.monotonic()
        sid = alice.client.call(bob.bare)
        alice.state(sid, "INPROGRESS", timeout=40)
        bob.state(sid, "INPROGRESS", timeout=40)
        record_property("connect_seconds", round(time.monotonic() - started, 2))
        pairs = {}
        for agent in agents:
            connected = agent.watch.wait_for(5, event="transport.state", sid=sid,
                                             state="connected")
            assert connected["encryption"] == "dtls-srtp"
            pairs[agent.user] = (connected["local"], connected["remote"])
        record_property("pairs", str(pairs))
        assert EXPECT[mode](*pairs["alice"]), (mode, pairs)
        if mode == "udp-blocked":
            assert pairs["bob"][0] == "relay", pairs
        time.sleep(3.0)
        stats = {a.user: latest(a, event="media.stats", sid=sid) for a in agents}
        alice.client.hangup(sid)
        bob.state(sid, "DEINIT", timeout=15)
        for user, s in stats.items():
            assert s["received_packets"] > 100, (user, s)
        time.sleep(0.5)
        for listener, expected in (("alice", 660), ("bob", 440)):
            rate, _seconds, samples = dominant_hz(folder / f"{listener}-heard.wav")
            sound = voiced(samples, rate)
            assert len(sound) / rate > 2.0, f"{listener} heard {len(sound) / rate:.1f} s"
            assert abs(peak_frequency(sound, rate) - expected) <= 5, listener

        payload = os.urandom(5 * 1024 * 1024)
        source = folder / "five.bin"
        source.write_bytes(payload)
        fsid = alice.client.send_file(bob.bare, str(source))
        done = bob.watch.wait_for(60, event="transfer.complete", sid=fsid)
        assert done["verified"] and done["sha256"] == hashlib.sha256(payload).hexdigest()
        assert Path(done["path"]).read_bytes() == payload
        carried = bob.watch.wait_for(5, event="transport.state", sid=fsid, state="connected")
        record_property("file_transport", f"{carried['method']} {carried.get('remote')}")
        if mode != "open":
            # Direct SOCKS5 cannot cross these NATs: the server's proxy carries it.
            assert carried["method"] == "s5b" and "proxy" in (
                carried.get("local"), carried.get("remote")), carried
    finally:
        if os.environ.get("PJ_KEEP_LOGS"):
            shutil.copytree(folder, f"/tmp/last-nat-{mode}", dirs_exist_ok=True,
                            ignore=shutil.ignore_patterns("*-bus", "*-cmd", "*-ev"))
        for agent in agents:
            agent.stop()
