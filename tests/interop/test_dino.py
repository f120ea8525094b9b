"""Interop with the real Dino 0.4 (Debian ``dino-im``), run headless beside our agents.

The network: our agents on host a, Dino on host b, Prosody (STARTTLS, XEP-0065
proxy) on the "internet" between them (scripts/natlab.py, open routing). Three
agents, each for one way of moving files: alice (defaults: SOCKS5 direct first,
calls), carol (``policy.relay_only``: the server's proxy only) and dave
(``transfer.transports = ["ibb"]``: in-band only). Dino is bob.

Every test writes its row of the interop matrix (peer x scenario), printed at the
end of the run and written to ``$PJ_INTEROP_MATRIX`` when set; the README shows it.
Dino's own limits are recorded as such, not as our failures.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import tempfile
import time
import wave
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from scripts.agents import USERS, Agent
from scripts.local_prosody import LocalProsody
from scripts.natlab import SERVER, NatLab
from tests.integration.netns import namespaces_usable
from tests.integration.test_voice import peak_frequency, voiced
from tests.interop import dino as dino_peer
from tests.interop.matrix import record

pytestmark = [pytest.mark.prosody, pytest.mark.timeout(240)]

DOMAIN = "pyjingle.test"
OUR_TONE, DINO_TONE = 440, 880
PEER = "Dino 0.4.2"


class Lab:
    """What the tests share: the network, the server, Dino and our three agents."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.net = NatLab()
        self.net.set_mode("open")
        self.server = LocalProsody(folder / "prosody", domain=DOMAIN, tls=True,
                                   interfaces=(SERVER,), prefix=self.net.server_prefix(),
                                   c2s_port=5222)  # Dino finds the server at the default port
        self.server.configure(USERS)
        self.server.start()
        (folder / "dino").mkdir()
        self.dino = dino_peer.Dino(self.net.prefix("b"), folder / "dino", f"bob@{DOMAIN}",
                                   USERS["bob"], SERVER, self.server.certificate,
                                   display=90 + os.getpid() % 400)
        self.agents: dict[str, Agent] = {}
        extras = {"alice": "", "carol": "[policy]\nrelay_only = true\n",
                  "dave": '[transfer]\ntransports = ["ibb"]\n'}
        self.dino.prepare([f"{user}@{DOMAIN}" for user in extras])
        for user, extra in extras.items():
            home = folder / user
            home.mkdir()
            self.agents[user] = Agent(
                self.server, user, home, prefix=self.net.prefix("a"), address=SERVER,
                tls="optional",
                extra=f'[audio]\ninput = "tone:{OUR_TONE}"\n'
                      f'output = "file:{home}/heard-{{sid}}.wav"\n{extra}'
                      + ("" if "[transfer]" in extra else "[transfer]\n")
                      + f'download_dir = "{home}/files"\n')
        for agent in self.agents.values():
            agent.wait_connected(30)
        self.dino.start()
        self.dino.microphone(DINO_TONE)

    def close(self) -> None:
        for agent in self.agents.values():
            agent.stop()
        self.dino.stop()
        self.server.stop()
        self.net.close()


@pytest.fixture(scope="module")
def lab() -> Iterator[Lab]:
    reason = namespaces_usable() or dino_peer.missing()
    if reason:
        pytest.skip(reason)
    folder = Path(tempfile.mkdtemp(prefix="pj-dino-"))
    built = Lab(folder)
    try:
        wait_until_online(built)
        yield built
    finally:
        built.close()
        if os.environ.get("PJ_KEEP_LOGS"):
            shutil.copytree(folder, "/tmp/last-dino", dirs_exist_ok=True,
                            ignore=shutil.ignore_patterns("*-bus", "*-cmd", "*-ev", "bus",
                                                          "*.sock"))
        shutil.rmtree(folder, ignore_errors=True)


def fresh_dino(lab: Lab) -> None:
    """Dino restarted, microphone fed, online again. Dino 0.4's audio pipeline
    degrades over successive calls in one run ("Trying to link elements ... that
    don't share a common ancestor", its echo canceller failing): each call test
    starts with a fresh one, as a person would restart a misbehaving client."""
    lab.dino.stop()
    lab.dino.start()
    lab.dino.microphone(DINO_TONE)
    wait_until_online(lab)


def wait_until_online(lab: Lab, timeout: float = 40.0) -> None:
    """Until Dino is online for alice: a call she places reaches it (then ends)."""
    alice = lab.agents["alice"]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            sid = alice.client.call(f"bob@{DOMAIN}")
        except Exception:
            time.sleep(0.5)
            continue
        alice.client.hangup(sid)
        alice.state(sid, "DEINIT")
        return
    raise AssertionError(f"Dino never came online: {lab.dino.log_tail()}")


# --- helpers --------------------------------------------------------------------------


def payload(folder: Path, name: str, size: int) -> tuple[Path, str]:
    path = folder / name
    data = os.urandom(size)
    path.write_bytes(data)
    return path, hashlib.sha256(data).hexdigest()


def wait_dino_file(lab: Lab, name: str, digest: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = lab.dino.received_file(name)
        if found is not None and hashlib.sha256(found.read_bytes()).hexdigest() == digest:
            return
        time.sleep(0.2)
    raise AssertionError(f"Dino has no whole {name}: {lab.dino.received_file(name)}")


def connected_over(agent: Agent, sid: str, timeout: float = 30.0) -> dict:
    return agent.watch.wait_for(timeout, event="transport.state", sid=sid, state="connected")


def tail_hz(path: Path, seconds: float = 2.0) -> float | None:
    """The main frequency of what a WAV being written holds in its last seconds (None
    while it has no header yet or is caught between a frame and its header)."""
    try:
        with wave.open(str(path)) as w:
            rate = w.getframerate()
            frames = w.getnframes()
            w.setpos(max(0, frames - int(seconds * rate)))
            samples = np.frombuffer(w.readframes(frames), dtype=np.int16).astype(float)
    except (OSError, EOFError, wave.Error):
        return None
    sound = voiced(samples, rate, threshold=300.0)
    return peak_frequency(sound, rate) if len(sound) > rate // 5 else None


def dino_hears(lab: Lab, seconds: float = 2.5) -> float | None:
    """Record Dino's speaker for a while; the main frequency of what played."""
    path = lab.folder / "dino" / f"speaker-{time.monotonic_ns()}.wav"
    recorder = lab.dino.record(path)
    time.sleep(seconds)
    os.killpg(recorder.pid, 15)
    recorder.wait(5)
    with wave.open(str(path)) as w:
        rate = w.getframerate()
        samples = np.frombuffer(w.readframes(w.getnframes()), dtype=np.int16).astype(float)
    sound = voiced(samples, rate, threshold=300.0)
    return peak_frequency(sound, rate) if len(sound) > rate // 5 else None


def near(hz: float | None, target: float) -> bool:
    return hz is not None and abs(hz - target) < 15


def until(check, timeout: float, step: float = 0.5):
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value or time.monotonic() > deadline:
            return value
        time.sleep(step)


def stats_of(agent: Agent, sid: str) -> list[dict]:
    """Every media.stats of call ``sid`` seen so far (draining what has arrived)."""
    while agent.watch.poll(0.05) is not None:
        pass
    return [e for e in agent.watch.seen
            if e.get("event") == "media.stats" and e.get("sid") == sid]


def latest_stats(agent: Agent, sid: str) -> dict:
    found = stats_of(agent, sid)
    assert found, "no media.stats"
    return found[-1]


def our_call_to_dino(lab: Lab) -> tuple[Agent, str]:
    """alice calls a fresh Dino, Dino's user accepts. Dino 0.4's audio pipeline
    sometimes starts without sending anything: such a call is hung up and placed
    once more, on a Dino restarted again."""
    alice = lab.agents["alice"]
    for attempt in (1, 2):
        fresh_dino(lab)
        sid = alice.client.call(f"bob@{DOMAIN}")
        alice.state(sid, "SENTINITIATE")
        lab.dino.open_conversation(f"alice@{DOMAIN}")  # where Dino shows the ringing call
        lab.dino.ui("press", "Accept", "20")
        alice.state(sid, "INPROGRESS", timeout=30)
        if until(lambda sid=sid: received(alice, sid) > 0, 8) or attempt == 2:
            return alice, sid
        alice.client.hangup(sid)
        alice.state(sid, "DEINIT", timeout=10)
    raise AssertionError("unreachable")


def received(agent: Agent, sid: str) -> int:
    """Packets received so far (0 before the first media.stats)."""
    found = stats_of(agent, sid)
    return found[-1]["received_packets"] if found else 0


def heard_file(agent: Agent, sid: str) -> Path:
    return agent.folder / f"heard-{sid}.wav"


# --- files ----------------------------------------------------------------------------


@pytest.mark.parametrize(("user", "how", "expect"), [
    ("alice", "S5B direct", ("direct",)),
    ("carol", "S5B through the proxy", ("proxy",)),
])
def test_file_to_dino(lab, user, how, expect):
    agent = lab.agents[user]
    path, digest = payload(agent.folder, f"to-dino-{user}.bin", 1_000_000)
    sid = agent.client.send_file(f"bob@{DOMAIN}", str(path))
    connected = connected_over(agent, sid)
    assert connected["method"] == "s5b"
    assert {connected["local"], connected["remote"]} & set(expect), connected
    done = agent.watch.wait_for(30, event="transfer.complete", sid=sid)
    assert done["sha256"] == digest
    wait_dino_file(lab, path.name, digest)
    agent.state(sid, "DEINIT", timeout=15)
    record(PEER, f"file to the peer, {how}", "works")


def test_file_to_dino_in_band_ends_cleanly(lab):
    """Dino 0.4.2 cannot receive in-band (it closes the stream it is offered). What we
    owe our user is a clear end, not a transfer that hangs."""
    dave = lab.agents["dave"]
    path, _ = payload(dave.folder, "to-dino-ibb.bin", 200_000)
    sid = dave.client.send_file(f"bob@{DOMAIN}", str(path))
    end = dave.state(sid, "DEINIT", timeout=60)
    complete = [e for e in dave.watch.seen
                if e.get("event") == "transfer.complete" and e.get("sid") == sid]
    if complete:
        record(PEER, "file to the peer, in-band (IBB)", "works")
    else:
        assert end.get("reason") not in (None, "success"), end
        record(PEER, "file to the peer, in-band (IBB)",
               f"Dino 0.4.2 cannot receive in-band; ends `{end.get('reason')}`")


@pytest.mark.parametrize(("user", "how", "expect"), [
    ("alice", "S5B direct", "direct"),
    ("carol", "S5B through the proxy", "proxy"),
    ("dave", "in-band (IBB, after candidate-error and transport-replace)", None),
])
def test_file_from_dino(lab, user, how, expect):
    agent = lab.agents[user]
    path, digest = payload(lab.folder, f"from-dino-{user}.bin", 700_000)
    lab.dino.send_file(f"{user}@{DOMAIN}", path)
    offer = agent.watch.wait_for(30, event="session.state", state="RECEIVEDINITIATE",
                                 kind="file")
    sid = offer["sid"]
    assert offer["file"]["name"] == path.name and offer["file"]["size"] == path.stat().st_size
    agent.client.accept(sid)
    done = agent.watch.wait_for(60, event="transfer.complete", sid=sid)
    assert done["sha256"] == digest
    assert hashlib.sha256(Path(done["path"]).read_bytes()).hexdigest() == digest
    connected = [e for e in agent.watch.seen if e.get("event") == "transport.state"
                 and e.get("sid") == sid and e.get("state") == "connected"]
    assert connected, "no transport.state connected"
    if expect is None:
        assert connected[-1]["method"] == "ibb", connected
    else:
        assert connected[-1]["method"] == "s5b"
        assert expect in (connected[-1]["local"], connected[-1]["remote"]), connected
    agent.state(sid, "DEINIT", timeout=15)
    record(PEER, f"file from the peer, {how}", "works")


# --- calls ----------------------------------------------------------------------------


def test_our_call_to_dino_with_mute_hold_and_hangup(lab):
    alice, sid = our_call_to_dino(lab)
    heard = heard_file(alice, sid)
    assert near(dino_hears(lab), OUR_TONE), "Dino does not hear our tone"
    assert near(until(lambda: tail_hz(heard), 10), DINO_TONE), "we do not hear Dino"
    record(PEER, "call to the peer, audio both ways", "works")

    alice.client.mute(sid)
    time.sleep(10)
    assert dino_hears(lab, 1.5) is None, "Dino still hears us while we are muted"
    alice.client.mute(sid, False)
    assert near(until(lambda: dino_hears(lab), 10, 0), OUR_TONE), "no audio after unmute"
    assert near(tail_hz(heard), DINO_TONE)
    record(PEER, "we mute 10 s and unmute", "works, audio after")

    alice.client.hold(sid)
    time.sleep(5)
    alice.client.hold(sid, False)
    assert near(until(lambda: dino_hears(lab), 10, 0), OUR_TONE), "no audio after hold"
    assert near(until(lambda: tail_hz(heard), 5), DINO_TONE)
    record(PEER, "we hold and resume", "works, audio after")

    states = [e["state"] for e in alice.watch.seen
              if e.get("event") == "session.state" and e.get("sid") == sid]
    assert "DEINIT" not in states
    alice.client.hangup(sid)
    alice.state(sid, "DEINIT", timeout=10)
    assert until(lambda: lab.dino.ui("windows").count("DinoUiCallWindow") == 0, 10, 1), \
        "Dino kept the call window"
    record(PEER, "we hang up", "works")


def dino_calls_alice(lab: Lab) -> tuple[Agent, str]:
    """A fresh Dino calls alice; the sid of the call ringing at her agent."""
    alice = lab.agents["alice"]
    fresh_dino(lab)
    lab.dino.call(f"alice@{DOMAIN}")
    offer = alice.watch.wait_for(30, event="session.state", state="RECEIVEDINITIATE",
                                 kind="call")
    return alice, offer["sid"]


def test_dino_calls_us_mutes_and_hangs_up(lab):
    alice, sid = dino_calls_alice(lab)
    alice.client.accept(sid)
    alice.state(sid, "INPROGRESS", timeout=30)
    heard = heard_file(alice, sid)
    assert near(until(lambda: tail_hz(heard), 10), DINO_TONE), "we do not hear Dino"
    assert near(dino_hears(lab), OUR_TONE), "Dino does not hear us"
    record(PEER, "call from the peer, audio both ways", "works")

    lab.dino.ui("mute")
    assert until(lambda: latest_stats(alice, sid)["peer_muted"], 10), "no mute seen"
    time.sleep(10)
    assert latest_stats(alice, sid)["peer_muted"]
    lab.dino.ui("mute")
    assert until(lambda: not latest_stats(alice, sid)["peer_muted"], 10), "no unmute seen"
    time.sleep(2.5)
    assert near(tail_hz(heard), DINO_TONE), "no audio from Dino after its unmute"
    assert near(dino_hears(lab), OUR_TONE)
    assert "DEINIT" not in [e["state"] for e in alice.watch.seen
                            if e.get("event") == "session.state" and e.get("sid") == sid]
    record(PEER, "the peer mutes 10 s and unmutes", "works, audio after")

    lab.dino.ui("hangup")
    end = alice.state(sid, "DEINIT", timeout=10)
    assert end.get("reason") == "success", end
    record(PEER, "the peer hangs up", "works")


def test_dino_rings_and_we_reject(lab):
    alice, sid = dino_calls_alice(lab)
    alice.client.reject(sid)
    alice.state(sid, "DEINIT", timeout=10)
    assert until(lambda: lab.dino.ui("windows").count("DinoUiCallWindow") == 0, 10, 1)
    record(PEER, "we reject the peer's call", "works")


def test_an_address_the_call_did_not_use_vanishing_keeps_the_call(lab):
    """A second address of our host, one Dino cannot reach, disappears mid-call: we
    restart ICE (any address we gathered may have been the one in use), Dino does not
    answer the restart, the old pair answers our probe, and the call carries on over
    it, audio both ways."""
    net = lab.net
    spare = "10.99.0.1"  # routed nowhere: its pairs never work, the call uses the other
    run = ("ip", "netns", "exec", net.hosts["a"], "ip", "addr")
    subprocess.run([*run, "add", f"{spare}/32", "dev", "lo"], check=True)
    alice, sid = our_call_to_dino(lab)
    try:
        time.sleep(1.5)
        subprocess.run([*run, "del", f"{spare}/32", "dev", "lo"], check=True)
        alice.watch.wait_for(10, event="transport.state", sid=sid, state="checking",
                             restart=True)
        again = alice.watch.wait_for(20, event="transport.state", sid=sid, state="connected",
                                     restart=True)
        assert again["local"] == "host"
        before = latest_stats(alice, sid)["received_packets"]
        time.sleep(2.0)
        assert latest_stats(alice, sid)["received_packets"] > before + 50
        assert near(dino_hears(lab), OUR_TONE)
        assert near(tail_hz(heard_file(alice, sid)), DINO_TONE)
        record(PEER, "an unused address of ours vanishes mid-call",
               "the restart goes unanswered; the old pair still works and carries on")
    finally:
        alice.client.hangup(sid)
        alice.state(sid, "DEINIT", timeout=10)


def test_address_change_on_our_side_mid_call(lab):
    """Our host's address changes: we restart ICE. Dino 0.4 cannot follow a restart
    (it answers with an empty result and keeps the old credentials), so the call
    cannot carry on from the new address. What must not happen: a call that stays
    INPROGRESS with media dead both ways and no event. Runs last: the host keeps its
    new address."""
    alice, sid = our_call_to_dino(lab)
    time.sleep(2)
    before = latest_stats(alice, sid)["received_packets"]
    lab.net.move("a")
    alice.watch.wait_for(20, event="transport.state", sid=sid, state="checking", restart=True)

    def settled():
        states = {e.get("state") for e in alice.watch.seen
                  if e.get("sid") == sid and e.get("event") in ("session.state",
                                                                 "transport.state")}
        return "DEINIT" in states or ("connected" in states and any(
            e.get("restart") for e in alice.watch.seen if e.get("event") == "transport.state"
            and e.get("sid") == sid and e.get("state") == "connected"))

    def drained_and_settled():
        while alice.watch.poll(0.05) is not None:
            pass
        return settled()

    assert until(drained_and_settled, 60), "neither ended nor connected again in 60 s"
    events = [e for e in alice.watch.seen if e.get("sid") == sid]
    ends = [e for e in events if e.get("event") == "session.state" and e["state"] == "DEINIT"]
    if ends:
        assert ends[-1].get("reason") == "failed-transport", ends[-1]
        failed = [e for e in events if e.get("event") == "transport.state"
                  and e["state"] == "failed"]
        assert failed and failed[-1].get("reason"), "the failure says why"
        record(PEER, "our address changes mid-call",
               "ends `failed-transport` with a reason (Dino 0.4 cannot follow an ICE restart)")
    else:
        time.sleep(3)
        assert latest_stats(alice, sid)["received_packets"] > before + 100
        assert near(dino_hears(lab), OUR_TONE)
        record(PEER, "our address changes mid-call", "survives, audio both ways")
        alice.client.hangup(sid)
