"""Two-way voice end to end: tones in, WAVs out, media.stats both ways, sockets released."""

import time
import wave

import numpy as np
import pytest

from scripts import agents

pytestmark = pytest.mark.prosody


def dominant_hz(path):
    with wave.open(str(path)) as w:
        rate = w.getframerate()
        samples = np.frombuffer(w.readframes(w.getnframes()), dtype=np.int16).astype(float)
    return rate, len(samples) / rate, samples


def peak_frequency(samples, rate):
    spectrum = np.abs(np.fft.rfft(samples * np.hanning(len(samples))))
    return float(np.argmax(spectrum) * rate / len(samples))


def voiced(samples, rate, threshold=1000.0):
    """The 100 ms blocks of a recording that carry sound (RMS above ``threshold``)."""
    block = rate // 10
    blocks = [samples[i:i + block] for i in range(0, len(samples) - block + 1, block)]
    kept = [b for b in blocks if np.sqrt(np.mean(b ** 2)) > threshold]
    return np.concatenate(kept) if kept else np.zeros(0)


def udp_sockets(pid):
    """Inodes of the UDP sockets a process holds."""
    return set(agents.udp_sockets(pid))


def latest(agent, **match):
    """The newest event matching ``match`` (draining what has arrived)."""
    while agent.watch.poll(0.05) is not None:
        pass
    found = [e for e in agent.watch.seen if all(e.get(k) == v for k, v in match.items())]
    assert found, f"no {match} event"
    return found[-1]


@pytest.fixture
def voice_pair(start_agent, folder):
    from tests.integration.conftest import make_ready

    alice = start_agent("alice", extra=f'[audio]\ninput = "tone:440"\n'
                                        f'output = "file:{folder}/alice-heard.wav"\n')
    bob = start_agent("bob", extra=f'[audio]\ninput = "tone:660"\n'
                                    f'output = "file:{folder}/bob-heard.wav"\n')
    make_ready(alice, bob)
    return alice, bob


def test_five_second_call_carries_each_tone_to_the_other_side(voice_pair, folder):
    alice, bob = voice_pair
    media_pids = {a.user: a.client.status()["workers"]["media"]["pid"] for a in voice_pair}
    before = {a.user: udp_sockets(media_pids[a.user]) for a in voice_pair}

    sid = alice.client.call(bob.bare)
    bob.state(sid, "RECEIVEDINITIATE")
    bob.client.accept(sid)
    alice.state(sid, "INPROGRESS", timeout=15)
    bob.state(sid, "INPROGRESS", timeout=15)
    for agent in voice_pair:
        connected = agent.watch.wait_for(5, event="transport.state", sid=sid, state="connected")
        assert connected["method"] == "ice-udp" and connected["local"] and connected["remote"]
    during = {a.user: udp_sockets(media_pids[a.user]) for a in voice_pair}
    assert all(during[u] - before[u] for u in during), "the call holds UDP sockets"
    time.sleep(5.0)
    stats = {a.user: latest(a, event="media.stats", sid=sid) for a in voice_pair}
    alice.client.hangup(sid)
    alice.state(sid, "DEINIT")
    bob.state(sid, "DEINIT")
    for user, s in stats.items():
        assert s["sent_packets"] > 100 and s["received_packets"] > 100, (user, s)
        assert s["codec"] == "opus" and s["lost_packets"] == 0
        assert s["rtt_ms"] is not None and 0 <= s["rtt_ms"] < 50, s  # RFC 3550 LSR/DLSR

    time.sleep(0.5)  # the worker closes the call and finishes the WAV
    for listener, expected in (("alice", 660), ("bob", 440)):
        rate, seconds, samples = dominant_hz(folder / f"{listener}-heard.wav")
        assert 4.5 < seconds < 7.5, (listener, seconds)
        sound = voiced(samples, rate)
        assert len(sound) / rate > 4.0, f"{listener} heard only {len(sound) / rate:.1f} s"
        assert abs(peak_frequency(sound, rate) - expected) <= 5, listener
    after = {a.user: udp_sockets(media_pids[a.user]) for a in voice_pair}
    assert after == before, "every socket of the call was released"


def test_rejected_call_opens_no_socket(voice_pair):
    alice, bob = voice_pair
    pids = {a.user: a.client.status()["workers"]["media"]["pid"] for a in voice_pair}
    before = {u: udp_sockets(p) for u, p in pids.items()}
    sid = alice.client.call(bob.bare)
    bob.state(sid, "RECEIVEDINITIATE")
    assert {u: udp_sockets(p) for u, p in pids.items()} == before  # nothing before accept
    bob.client.reject(sid)
    alice.state(sid, "DEINIT")
    assert {u: udp_sockets(p) for u, p in pids.items()} == before


def test_stun_and_turn_candidates_are_gathered(start_agent, folder):
    """With STUN and TURN configured (coturn on loopback) the media worker gathers
    server-reflexive and relayed candidates besides host ones, and the call connects."""
    import tempfile
    from pathlib import Path

    from scripts.agents import make_ready
    from scripts.local_coturn import LocalCoturn

    turn = LocalCoturn(Path(tempfile.mkdtemp(prefix="pj-turn-")))
    turn.start()
    try:
        ice = (f'[ice]\nstun_server = "127.0.0.1:{turn.port}"\n'
               f'turn_server = "127.0.0.1:{turn.port}"\n'
               f'turn_username = "{turn.user}"\nturn_password = "{turn.password}"\n'
               '[audio]\ninput = "silence"\noutput = "null"\n')
        alice = start_agent("alice", extra=ice)
        bob = start_agent("bob", extra=ice)
        make_ready(alice, bob)
        sid = alice.client.call(bob.bare)
        bob.state(sid, "RECEIVEDINITIATE")
        bob.client.accept(sid)
        checking = alice.watch.wait_for(10, event="transport.state", sid=sid, state="checking")
        assert set(checking["candidates"]) == {"host", "srflx", "relay"}, checking
        alice.state(sid, "INPROGRESS", timeout=15)
        alice.client.hangup(sid)
        bob.state(sid, "DEINIT")
    finally:
        turn.stop()


def test_mute_silences_what_the_peer_hears(voice_pair, folder):
    alice, bob = voice_pair
    sid = alice.client.call(bob.bare)
    bob.state(sid, "RECEIVEDINITIATE")
    bob.client.accept(sid)
    bob.state(sid, "INPROGRESS", timeout=15)
    time.sleep(1.5)
    alice.client.mute(sid, True)
    assert bob.watch.wait_for(5, event="session.info", sid=sid, info="mute")
    time.sleep(1.5)
    alice.client.mute(sid, False)
    time.sleep(1.5)
    alice.client.hangup(sid)
    bob.state(sid, "DEINIT")
    time.sleep(0.5)
    rate, _seconds, samples = dominant_hz(folder / "bob-heard.wav")
    block = rate // 10
    loud = [np.sqrt(np.mean(samples[i:i + block] ** 2)) > 1000
            for i in range(0, len(samples) - block + 1, block)]
    text = "".join("#" if x else "." for x in loud).lstrip(".")  # before media arrived
    # Tone, then at least a second of silence while muted, then tone again.
    assert "#" * 8 in text.split("." * 10, 1)[0], text
    assert "." * 10 in text and "#" * 8 in text.split("." * 10, 1)[1], text


def test_turn_credentials_from_the_server_are_refreshed(folder):
    """XEP-0215: Prosody's mod_turn_external hands out TURN credentials valid 4 s;
    the agent refreshes them before they expire, so a call placed after the first
    credentials died still gathers a relayed candidate."""
    import shutil
    import tempfile
    from pathlib import Path

    from scripts.agents import USERS, Agent, make_ready
    from scripts.local_coturn import LocalCoturn
    from scripts.local_prosody import LocalProsody

    data = Path(tempfile.mkdtemp(prefix="pj-xep0215-"))
    turn = LocalCoturn(data / "turn", auth_secret="xep0215-secret")
    turn.start()
    server = LocalProsody(data / "prosody", turn=("127.0.0.1", turn.port, "xep0215-secret", 4))
    server.configure(USERS)
    server.start()
    agents = []
    try:
        quiet = '[audio]\ninput = "silence"\noutput = "null"\n'
        alice, bob = Agent(server, "alice", folder, quiet), Agent(server, "bob", folder, quiet)
        agents = [alice, bob]
        for agent in agents:
            agent.wait_connected()
        make_ready(alice, bob)
        time.sleep(6.0)  # the first credentials (4 s) have expired by now
        sid = alice.client.call(bob.bare)
        bob.state(sid, "RECEIVEDINITIATE")
        bob.client.accept(sid)
        checking = alice.watch.wait_for(10, event="transport.state", sid=sid, state="checking")
        assert "relay" in checking["candidates"], checking
        alice.state(sid, "INPROGRESS", timeout=15)
        alice.client.hangup(sid)
        bob.state(sid, "DEINIT")
    finally:
        for agent in agents:
            agent.stop()
        server.stop()
        turn.stop()
        shutil.rmtree(data, ignore_errors=True)


def test_relay_only_call_uses_and_signals_relayed_candidates_only(start_agent, folder):
    """policy.relay_only: only relayed candidates are gathered and signalled, so the
    peer never learns a host or server-reflexive address; the call still connects."""
    import tempfile
    from pathlib import Path

    from scripts.agents import make_ready
    from scripts.local_coturn import LocalCoturn

    turn = LocalCoturn(Path(tempfile.mkdtemp(prefix="pj-relay-")))
    turn.start()
    try:
        ice = (f'[ice]\nturn_server = "127.0.0.1:{turn.port}"\n'
               f'turn_username = "{turn.user}"\nturn_password = "{turn.password}"\n'
               f'stun_server = "127.0.0.1:{turn.port}"\n'
               '[audio]\ninput = "tone:440"\noutput = "null"\n')
        # Alice hides her addresses from bob only; bob from everyone.
        alice = start_agent("alice", extra=ice + '[policy]\nrelay_only_contacts = '
                                                 '["bob@localhost"]\n')
        bob = start_agent("bob", extra=ice + '[policy]\nrelay_only = true\n')
        make_ready(alice, bob)
        sid = alice.client.call(bob.bare)
        bob.state(sid, "RECEIVEDINITIATE")
        bob.client.accept(sid)
        for agent in (alice, bob):
            checking = agent.watch.wait_for(10, event="transport.state", sid=sid,
                                            state="checking")
            assert checking["candidates"] == ["relay"], checking
        for agent in (alice, bob):
            connected = agent.watch.wait_for(15, event="transport.state", sid=sid,
                                             state="connected")
            assert (connected["local"], connected["remote"]) == ("relay", "relay")
        bob.state(sid, "INPROGRESS", timeout=15)
        alice.client.hangup(sid)
        bob.state(sid, "DEINIT")
    finally:
        turn.stop()


def test_a_peer_silent_for_thirty_seconds_keeps_the_call(voice_pair, folder):
    """bob mutes: he sends no RTP at all (XEP-0167 §7, as Dino does) for 30 s. alice's
    side must not take the quiet for a dead path (no ICE restart: Dino could not follow
    one); consent checks keep the pair, and bob's tone is heard again after unmute."""
    alice, bob = voice_pair
    sid = agents.call_in_progress(alice, bob)
    time.sleep(1.5)
    bob.client.mute(sid, True)
    assert alice.watch.wait_for(5, event="session.info", sid=sid, info="mute")
    time.sleep(2.0)
    quiet_stats = latest(alice, event="media.stats", sid=sid)
    quiet_from = quiet_stats["received_packets"]
    assert quiet_stats["peer_muted"] is True  # alice's media worker knows why it is quiet
    time.sleep(28.0)
    quiet_to = latest(alice, event="media.stats", sid=sid)["received_packets"]
    assert quiet_to - quiet_from < 5, (quiet_from, quiet_to)  # really nothing was sent
    bob.client.mute(sid, False)
    time.sleep(3.0)
    after = latest(alice, event="media.stats", sid=sid)["received_packets"]
    assert after > quiet_to + 100, (quiet_to, after)
    alice.client.hangup(sid)
    ended = [alice.state(sid, "DEINIT"), bob.state(sid, "DEINIT")]
    assert [e.get("reason") for e in ended] == ["success", "success"]
    events = alice.watch.seen + bob.watch.seen
    assert not [e for e in events if e.get("event") == "transport.state"
                and e.get("sid") == sid and e.get("restart")], "an ICE restart for silence"
    rate, _seconds, samples = dominant_hz(folder / "alice-heard.wav")
    tail = samples[-int(1.5 * rate):]
    assert abs(peak_frequency(voiced(tail, rate), rate) - 660) < 15


def test_hold_and_resume_both_ways(voice_pair, folder):
    """XEP-0167 §7.3: alice holds (she sends nothing, bob's stats say the peer holds),
    resumes, and bob's tone and hers flow again."""
    alice, bob = voice_pair
    sid = agents.call_in_progress(alice, bob)
    time.sleep(1.0)
    alice.client.hold(sid, True)
    assert bob.watch.wait_for(5, event="session.info", sid=sid, info="hold")
    time.sleep(2.0)
    held = latest(bob, event="media.stats", sid=sid)
    assert held["peer_held"] is True
    assert latest(alice, event="media.stats", sid=sid)["held"] is True
    time.sleep(2.0)
    still = latest(bob, event="media.stats", sid=sid)
    assert still["received_packets"] - held["received_packets"] < 5
    alice.client.hold(sid, False)
    assert bob.watch.wait_for(5, event="session.info", sid=sid, info="unhold")
    time.sleep(2.5)
    resumed = latest(bob, event="media.stats", sid=sid)
    assert resumed["peer_held"] is False
    assert resumed["received_packets"] > still["received_packets"] + 80
    alice.client.hangup(sid)
    bob.state(sid, "DEINIT")
