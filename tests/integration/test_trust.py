"""Strangers and trust: contacts are the user's decision, a stranger gets bounded work
and a clear answer, and nothing anyone sends stalls or deafens the agent.

eve is registered on the test server but in nobody's roster (a stranger); dave,
like alice and bob, is in everyone's shared roster (a contact).
"""

from __future__ import annotations

import asyncio
import os
import secrets
import socket
import subprocess
import sys
import time

import msgpack
import pytest
import slixmpp
from slixmpp.xmlstream.handler import Callback
from slixmpp.xmlstream.matcher import MatchXPath

from control import protocol as cp
from control.client import AgentUnreachable, ControlClient, ControlFailed
from scripts.agents import call_in_progress, udp_sockets
from scripts.raw_xmpp import login
from signalling.jingle import namespaces as ns
from tests.integration.conftest import ROOT, make_ready

pytestmark = pytest.mark.prosody
QUIET = '[audio]\ninput = "silence"\noutput = "null"\n'
FP = ":".join(["AB"] * 32)


def call_initiate(sid: str, initiator: str) -> str:
    return (f"<jingle xmlns='{ns.JINGLE}' action='session-initiate' sid='{sid}'"
            f" initiator='{initiator}'><content creator='initiator' name='voice'>"
            f"<description xmlns='{ns.RTP}' media='audio'><payload-type id='111' name='opus'"
            " clockrate='48000' channels='2'/></description>"
            f"<transport xmlns='{ns.ICE_UDP}' ufrag='eve1' pwd='eveeveeveeveeveeveeve1'>"
            f"<fingerprint xmlns='{ns.DTLS}' hash='sha-256' setup='actpass'>{FP}</fingerprint>"
            "</transport></content></jingle>")


def file_initiate(sid: str, initiator: str) -> str:
    return (f"<jingle xmlns='{ns.JINGLE}' action='session-initiate' sid='{sid}'"
            f" initiator='{initiator}'><content creator='initiator' name='f'>"
            f"<description xmlns='{ns.FILE_TRANSFER}'><file><name>a.txt</name><size>5</size>"
            "</file></description>"
            f"<transport xmlns='{ns.IBB}' sid='ibb{sid}' block-size='4096'/>"
            "</content></jingle>")


def propose(sid: str) -> str:
    return (f"<propose xmlns='{ns.JMI}' id='{sid}'>"
            f"<description xmlns='{ns.RTP}' media='audio'/></propose>")


class Raw:
    """A raw client's view: every Jingle IQ and JMI message it gets, IQ-set answered."""

    def __init__(self, client: slixmpp.ClientXMPP) -> None:
        self.client = client
        self.seen: list[str] = []
        client.register_handler(Callback("j", MatchXPath(
            f"{{jabber:client}}iq/{{{ns.JINGLE}}}jingle"), self._iq))
        client.register_handler(Callback("m", MatchXPath("{jabber:client}message"),
                                         lambda msg: self.seen.append(str(msg))))

    def _iq(self, iq) -> None:
        self.seen.append(str(iq))
        if iq["type"] == "set":
            iq.reply().send()

    async def jingle(self, to: str, xml: str) -> str | None:
        """Send a Jingle IQ; None on a result, else the error condition."""
        iq = self.client.make_iq_set(ito=to)
        iq.xml.append(slixmpp.xmlstream.ET.fromstring(xml))
        try:
            await iq.send(timeout=5)
        except slixmpp.exceptions.IqError as exc:
            return str(exc.iq["error"]["condition"])
        return None

    def message(self, to: str, xml: str) -> None:
        msg = self.client.make_message(mto=to, mtype="chat")
        msg.xml.append(slixmpp.xmlstream.ET.fromstring(xml))
        msg.send()


def events_named(agent, name: str, wait: float = 0.5) -> list[dict]:
    end = time.monotonic() + wait
    while time.monotonic() < end:
        agent.watch.poll(0.05)
    return [e for e in agent.watch.seen if e["event"] == name]


# --- contacts ----------------------------------------------------------------------------


def test_a_strangers_subscription_request_waits_for_the_user(prosody, start_agent):
    """eve asks alice for a subscription: it stays pending (no automatic approval, no
    subscription back); eve is no contact for the roster policies, so her call is not
    auto-accepted and reveals no address; once alice approves, eve is a contact."""
    alice = start_agent("alice", extra=QUIET + '[policy]\nauto_accept_calls = "roster"\n'
                                             'reveal_ip_before_accept = "roster"\n')
    eve_jid = f"eve@{prosody.domain}"

    async def ask_and_call() -> Raw:
        eve = Raw(await login(prosody, "eve"))
        eve.client.send_presence()
        eve.client.send_presence(pto=alice.bare, ptype="subscribe")
        await asyncio.get_running_loop().run_in_executor(
            None, lambda: alice.watch.wait_for(10, event="contact.request", jid=eve_jid))
        answer = await eve.jingle(alice.full, call_initiate("evecall", str(eve.client.boundjid)))
        assert answer is None
        await asyncio.sleep(2.0)  # what alice's agent would say on its own meanwhile
        eve.client.disconnect()
        return eve

    eve = asyncio.run(ask_and_call())
    contacts = {c["jid"]: c for c in alice.client.contacts()}
    assert contacts[eve_jid]["pending"] is True
    assert contacts[eve_jid]["subscription"] in ("none", "to") and \
        contacts[eve_jid]["subscription"] not in ("from", "both")
    assert contacts[f"bob@{prosody.domain}"]["subscription"] == "both"
    alice.state("evecall", "RECEIVEDINITIATE")
    states = [e["state"] for e in alice.watch.seen
              if e["event"] == "session.state" and e.get("sid") == "evecall"]
    assert "SENTACCEPT" not in states and "INPROGRESS" not in states, states
    for stanza in eve.seen:
        assert "<candidate" not in stanza and "session-accept" not in stanza, stanza
    alice.client.reject("evecall")

    # The user decides: approve (and ask for hers; the raw client approves back).
    async def approved() -> None:
        client = await login(prosody, "eve")
        client.send_presence()
        await asyncio.get_running_loop().run_in_executor(None, alice.client.approve, eve_jid)
        await asyncio.get_running_loop().run_in_executor(
            None, lambda: alice.watch.wait_for(10, event="contact.state", jid=eve_jid,
                                               subscription="both"))
        client.disconnect()

    asyncio.run(approved())
    alice.client.remove_contact(eve_jid)
    alice.watch.wait_for(10, event="contact.state", jid=eve_jid, subscription="none")
    assert eve_jid not in {c["jid"] for c in alice.client.contacts()}


def test_contact_commands_refuse_bad_jids(start_agent):
    alice = start_agent("alice", extra=QUIET)
    for bad in ("not a jid", "@@", "alice@localhost@x"):
        with pytest.raises(ControlFailed) as err:
            alice.client.approve(bad)
        assert err.value.code == cp.BAD_REQUEST and "jid" in err.value.message
    with pytest.raises(ControlFailed) as err:
        alice.client.request("add", {})
    assert err.value.code == cp.BAD_REQUEST


def test_calls_and_files_only_from_contacts(prosody, start_agent):
    """policy.calls_from/files_from = contacts: eve's initiate is refused as by an agent
    without Jingle (service-unavailable), her propose gets no ringing; nothing rings
    for alice. dave, a contact, still gets through."""
    alice = start_agent("alice", extra=QUIET + '[policy]\ncalls_from = "contacts"\n'
                                             'files_from = "contacts"\n')
    results: dict[str, str | None] = {}

    async def main() -> list[str]:
        eve = Raw(await login(prosody, "eve"))
        me = str(eve.client.boundjid)
        results["call"] = await eve.jingle(alice.full, call_initiate("evecall2", me))
        results["file"] = await eve.jingle(alice.full, file_initiate("evefile2", me))
        eve.message(alice.bare, propose("evepropose"))
        dave = Raw(await login(prosody, "dave"))
        results["dave"] = await dave.jingle(alice.full, call_initiate(
            "davecall", str(dave.client.boundjid)))
        await asyncio.sleep(1.5)
        eve.client.disconnect()
        dave.client.disconnect()
        return eve.seen

    eve_seen = asyncio.run(main())
    assert results == {"call": "service-unavailable", "file": "service-unavailable",
                       "dave": None}
    assert not any("ringing" in s for s in eve_seen), eve_seen
    alice.state("davecall", "RECEIVEDINITIATE")
    sids = {e.get("sid") for e in events_named(alice, "session.state")}
    assert not sids & {"evecall2", "evefile2", "evepropose"}, sids


def test_a_stranger_gets_a_few_pending_sessions_and_then_errors(prosody, start_agent):
    """Unanswered incoming sessions are capped per bare JID; the excess is refused with
    resource-constraint and never presented; a burst of IQs hits the rate limit."""
    alice = start_agent("alice", extra=QUIET)

    async def main() -> tuple[list[str | None], list[str | None]]:
        eve = Raw(await login(prosody, "eve"))
        me = str(eve.client.boundjid)
        first = [await eve.jingle(alice.full, call_initiate(f"many{i}", me)) for i in range(6)]
        burst = await asyncio.gather(*(
            eve.jingle(alice.full, f"<jingle xmlns='{ns.JINGLE}' action='session-info'"
                                   f" sid='many0'/>") for _ in range(150)))
        eve.client.disconnect()
        return first, list(burst)

    first, burst = asyncio.run(main())
    assert first[:3] == [None, None, None]
    assert first[3:] == ["resource-constraint"] * 3
    assert "resource-constraint" in burst and None in burst
    presented = {e.get("sid") for e in events_named(alice, "session.state")
                 if e.get("state") == "RECEIVEDINITIATE"}
    assert presented == {"many0", "many1", "many2"}
    assert alice.client.status()["connected"]


# --- the control socket ----------------------------------------------------------------


def test_malformed_jids_are_bad_requests_naming_the_argument(start_agent, folder):
    alice = start_agent("alice", extra=QUIET)
    path = folder / "x.txt"
    path.write_text("x")
    for call in (lambda: alice.client.call("a b@c"),
                 lambda: alice.client.call("@@"),
                 lambda: alice.client.send_file("bob@" + "x" * 1100, str(path)),
                 lambda: alice.client.request_file("alice@localhost@x", "y")):
        with pytest.raises(ControlFailed) as err:
            call()
        assert err.value.code == cp.BAD_REQUEST, err.value
        assert err.value.message.startswith("to:"), err.value.message


def test_an_oversized_control_frame_restarts_nothing(start_agent):
    """A 12.8 MB frame (a map of a million entries) is dropped unread; a frame within
    ZeroMQ's limit but over the contract's is a bad request; every worker lives on."""
    alice = start_agent("alice", extra=QUIET)
    before = alice.client.status()["workers"]
    huge = msgpack.packb({"v": 1, "id": "huge", "cmd": "status",
                          "args": {f"k{i:07d}": i for i in range(1_000_000)}})
    assert len(huge) > 12_000_000
    attacker = ControlClient(alice.commands)
    try:
        with pytest.raises(AgentUnreachable):
            attacker.send_raw(huge, timeout=4.0)
    finally:
        attacker.close()
    big = msgpack.packb({"v": 1, "id": "big", "cmd": "status",
                         "args": {str(i): i for i in range(20_000)}})
    wide = msgpack.packb({"v": 1, "id": "wide", "cmd": "call", "args": {"to": ["x"] * 1000}})
    with ControlClient(alice.commands) as other:
        for frame in (big, wide):  # refused before decoding: the id is not known
            reply = other.send_raw(frame)
            assert (reply.ok, reply.code) == (False, cp.BAD_REQUEST), reply
    time.sleep(3.0)  # longer than the heartbeat timeout
    after = alice.client.status()["workers"]
    assert {k: (w["pid"], w["restarts"]) for k, w in after.items()} == \
        {k: (w["pid"], w["restarts"]) for k, w in before.items()}
    assert not [e for e in events_named(alice, "worker.state") if e["state"] != "started"]


def test_a_second_agent_on_the_same_config_exits_2_naming_the_first(start_agent):
    alice = start_agent("alice", extra=QUIET)
    second = subprocess.run([sys.executable, "-m", "supervisor", "--config", str(alice.config)],
                            cwd=ROOT, capture_output=True, text=True, timeout=30)
    assert second.returncode == 2, second.stderr
    assert f"pid {alice.proc.pid}" in second.stderr, second.stderr
    assert alice.client.status()["connected"]


# --- the media port ---------------------------------------------------------------------


def test_garbage_at_the_media_port_is_counted_and_the_call_goes_on(start_agent, folder):
    """During a DTLS-SRTP call: datagrams over 1,500 bytes, random bytes and forged
    RTP at every UDP socket of bob's media worker. Audio keeps arriving afterwards and
    media.stats counts what was dropped."""
    alice = start_agent("alice", extra='[audio]\ninput = "tone:440"\noutput = "null"\n')
    bob = start_agent("bob", extra='[audio]\ninput = "tone:660"\noutput = "null"\n')
    make_ready(alice, bob)
    sid = call_in_progress(alice, bob)
    time.sleep(1.5)
    ports = [address for address in udp_sockets(bob.client.status()["workers"]["media"]["pid"])
             .values() if "." in address[0]]
    assert ports
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        for address in ports:
            for size in (1501, 2000, 9000, 60000):
                sock.sendto(secrets.token_bytes(size), address)
            for _ in range(50):
                sock.sendto(secrets.token_bytes(secrets.randbelow(1400) + 1), address)
                forged = bytes([0x80, 111]) + secrets.token_bytes(10 + secrets.randbelow(200))
                sock.sendto(forged, address)
                sock.sendto(bytes([0x80, 200]) + secrets.token_bytes(30), address)  # "RTCP"
    # What arrives after the garbage: the newest stats, then those 2.5 s later.
    time.sleep(1.2)
    bob.watch.seen.clear()
    first = events_named(bob, "media.stats")[-1]
    time.sleep(2.5)
    later = events_named(bob, "media.stats")[-1]
    assert later["received_packets"] >= first["received_packets"] + 50, (first, later)
    assert later["dropped_packets"] > 0, later
    states = [e for e in events_named(bob, "session.state") if e.get("sid") == sid]
    assert not states, states  # still INPROGRESS: nothing ended it
    alice.client.hangup(sid)
    bob.state(sid, "DEINIT")


# --- files ---------------------------------------------------------------------------


def test_an_accepted_transfer_that_moves_nothing_times_out(prosody, start_agent, folder):
    """A peer that has its offer accepted and then sends nothing holds nothing of ours
    for ever: after transfer.idle_timeout the session ends with reason timeout."""
    bob = start_agent("bob", extra=f'[transfer]\ndownload_dir = "{folder}/dl"\n'
                                   "idle_timeout = 2\n")

    async def main() -> None:
        eve = Raw(await login(prosody, "eve"))
        assert await eve.jingle(bob.full, file_initiate("idle", str(eve.client.boundjid))) \
            is None
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(None, lambda: bob.state("idle", "RECEIVEDINITIATE"))
        await loop.run_in_executor(None, bob.client.accept, "idle")
        ended = await loop.run_in_executor(None, lambda: bob.state("idle", "DEINIT", 15))
        assert ended["reason"] == "timeout", ended
        eve.client.disconnect()

    asyncio.run(main())
    assert bob.client.status()["workers"]["transfer"]["restarts"] == 0


def test_accept_into_a_folder_that_cannot_exist_answers_at_once(prosody, start_agent, folder):
    bob = start_agent("bob", extra=f'[transfer]\ndownload_dir = "{folder}/dl"\n')
    not_a_folder = folder / "plain-file"
    not_a_folder.write_text("x")

    async def main() -> None:
        eve = Raw(await login(prosody, "eve"))
        assert await eve.jingle(bob.full, file_initiate("nodir", str(eve.client.boundjid))) \
            is None
        eve.client.disconnect()

    asyncio.run(main())
    bob.state("nodir", "RECEIVEDINITIATE")
    started = time.monotonic()
    with pytest.raises(ControlFailed) as refused:
        bob.client.accept("nodir", str(not_a_folder / "sub"))
    assert time.monotonic() - started < 2.0
    assert refused.value.code == cp.FAILED and "plain-file" in refused.value.message
    assert [s["state"] for s in bob.client.sessions() if s["sid"] == "nodir"] == \
        ["RECEIVEDINITIATE"]  # the user may still accept it elsewhere


def test_a_gigabyte_verified_with_sha3_restarts_no_worker(start_agent, folder):
    """sha3-256 runs below 1 GB/s here: hashing a gigabyte on the transfer worker's loop
    kept it silent past the heartbeat timeout (2 s in these tests) and the supervisor
    killed it. alice announces sha3-256 (transfer.hash), so both ends read the whole
    file once more for it; no worker of either agent restarts, with the heartbeat
    timeout cut to 1 s."""
    strict = {"PYJINGLE_BUS_HEARTBEAT_TIMEOUT": "1.0"}
    alice = start_agent("alice", extra='[transfer]\nhash = "sha3-256"\n', env=strict)
    bob = start_agent("bob", extra=f'[transfer]\ndownload_dir = "{folder}/dl"\n', env=strict)
    make_ready(alice, bob)
    source = folder / "giga.bin"
    block = secrets.token_bytes(1 << 20)
    with open(source, "wb") as fh:
        for i in range(1024):
            fh.write(i.to_bytes(4, "big") + block[4:])
    sid = alice.client.send_file(bob.bare, str(source))
    bob.state(sid, "RECEIVEDINITIATE")
    bob.client.accept(sid)
    done = bob.watch.wait_for(120, event="transfer.complete", sid=sid)
    assert done["verified"] is True and done["size"] == 1 << 30
    bob.state(sid, "DEINIT", timeout=30)
    for agent in (alice, bob):
        restarts = {k: w["restarts"] for k, w in agent.client.status()["workers"].items()}
        assert set(restarts.values()) == {0}, (agent.user, restarts)
        assert not [e for e in events_named(agent, "worker.state") if e["state"] != "started"]
    os.unlink(done["path"])
    os.unlink(source)
