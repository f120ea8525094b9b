"""XEP-0353 end to end: every device rings, one answers, the others stop; an
older-generation callee; and what a caller learns before anyone accepts."""

from __future__ import annotations

import asyncio
import time

import pytest
import slixmpp
from slixmpp.xmlstream.handler import Callback
from slixmpp.xmlstream.matcher import MatchXPath

from control.client import ControlFailed
from scripts.raw_xmpp import login
from signalling.jingle import namespaces as ns
from tests.integration.conftest import make_ready

pytestmark = pytest.mark.prosody
QUIET = '[audio]\ninput = "silence"\noutput = "null"\n'


def test_both_devices_ring_and_the_second_stops_when_the_first_answers(start_agent):
    alice = start_agent("alice", extra=QUIET)
    phone = start_agent("bob", extra=QUIET, resource="phone")
    laptop = start_agent("bob", extra=QUIET, resource="laptop")
    make_ready(alice, phone)
    for device in (phone, laptop):  # the probe call rang both; let them settle
        device.watch.seen.clear()
    sid = alice.client.call(phone.bare)
    out = alice.state(sid, "SENTINITIATE")
    assert out["peer"].startswith(phone.bare + "/")
    for device in (phone, laptop):
        ringing = device.state(sid, "RECEIVEDINITIATE")
        assert ringing["peer"] == alice.full and ringing["direction"] == "incoming"
    assert alice.watch.wait_for(5, event="session.info", sid=sid, info="ringing")
    with pytest.raises(Exception):  # noqa: B017 - nothing to mute before a device answers
        alice.client.mute(sid, True)
    laptop.client.accept(sid)
    stopped = phone.state(sid, "DEINIT")
    assert stopped["reason"] == "answered-elsewhere"
    accepted = alice.state(sid, "RECEIVEDACCEPT", timeout=10)
    assert accepted["peer"] == laptop.full
    alice.state(sid, "INPROGRESS", timeout=15)
    laptop.state(sid, "INPROGRESS", timeout=15)
    connected = laptop.watch.wait_for(5, event="transport.state", sid=sid, state="connected")
    assert connected["encryption"] == "dtls-srtp"
    # The phone never held media for the call, nor a session.
    assert [s for s in phone.client.sessions() if s["sid"] == sid] == []
    alice.client.hangup(sid)
    laptop.state(sid, "DEINIT")
    alice.state(sid, "DEINIT")


def test_rejecting_on_one_device_stops_the_other_and_tells_the_caller(start_agent):
    alice = start_agent("alice", extra=QUIET)
    phone = start_agent("bob", extra=QUIET, resource="phone")
    laptop = start_agent("bob", extra=QUIET, resource="laptop")
    make_ready(alice, phone)
    sid = alice.client.call(phone.bare)
    for device in (phone, laptop):
        device.state(sid, "RECEIVEDINITIATE")
    phone.client.reject(sid, "busy")
    assert alice.state(sid, "RECEIVEDREJECT")["reason"] == "busy"
    assert alice.state(sid, "DEINIT")["reason"] == "busy"
    assert laptop.state(sid, "DEINIT")["reason"] == "rejected-elsewhere"


def test_caller_retracts_before_anyone_answers(start_agent):
    alice, bob = start_agent("alice", extra=QUIET), start_agent("bob", extra=QUIET)
    make_ready(alice, bob)
    sid = alice.client.call(bob.bare)
    bob.state(sid, "RECEIVEDINITIATE")
    alice.client.hangup(sid)
    assert alice.state(sid, "DEINIT")["reason"] == "cancel"
    assert bob.state(sid, "RECEIVEDTERMINATE")["reason"] == "cancel"
    bob.state(sid, "DEINIT")


async def _call_when_online(caller, to: str) -> str:
    """``call`` as soon as the caller has seen ``to``'s presence (a raw client's)."""
    loop = asyncio.get_running_loop()
    for _ in range(50):
        try:
            return await loop.run_in_executor(None, caller.client.call, to)
        except ControlFailed:
            await asyncio.sleep(0.1)
    raise AssertionError(f"{to} never came online for {caller.user}")


def _features(client, *extra):
    disco = client.plugin["xep_0030"]
    for feature in (ns.JINGLE, ns.RTP, ns.RTP_AUDIO, ns.ICE_UDP, ns.DTLS, *extra):
        disco.add_feature(feature)


def test_older_generation_callee_answers_at_the_bare_jid(prosody, start_agent):
    """A callee of the older action set (no ringing, accept to its own bare JID,
    proceed to our bare JID): our caller still initiates, to that device only, with
    the proposal's id and no candidate."""
    alice = start_agent("alice", extra=QUIET)
    seen: dict[str, object] = {}

    async def main():
        client = await login(prosody, "dave")
        client.register_plugin("xep_0030")
        _features(client, ns.JMI)
        initiated = asyncio.Event()

        def on_message(msg):
            propose = msg.xml.find(f"{{{ns.JMI}}}propose")
            if propose is None:
                return
            seen["propose"] = slixmpp.xmlstream.tostring(msg.xml)
            pid = propose.get("id")
            for to, action in ((f"dave@{prosody.domain}", "accept"), (alice.bare, "proceed")):
                reply = client.make_message(mto=to)  # no type, no hints: 0.3 style
                reply.xml.append(slixmpp.xmlstream.ET.fromstring(
                    f"<{action} xmlns='{ns.JMI}' id='{pid}'/>"))
                reply.send()

        def on_jingle(iq):
            iq.reply().send()
            jingle = iq.xml.find(f"{{{ns.JINGLE}}}jingle")
            if jingle.get("action") == "session-initiate":
                seen["initiate"] = slixmpp.xmlstream.tostring(iq.xml)
                seen["sid"] = jingle.get("sid")
                initiated.set()

        client.register_handler(Callback("m", MatchXPath("{jabber:client}message"), on_message))
        client.register_handler(Callback("j", MatchXPath(
            f"{{jabber:client}}iq/{{{ns.JINGLE}}}jingle"), on_jingle))
        client.send_presence()
        try:
            loop = asyncio.get_running_loop()
            sid = await _call_when_online(alice, f"dave@{prosody.domain}")
            await asyncio.wait_for(initiated.wait(), 10)
            seen["call"] = sid
            await loop.run_in_executor(None, alice.client.hangup, sid)
            await asyncio.sleep(0.3)
        finally:
            client.disconnect()

    asyncio.run(main())
    assert seen["sid"] == seen["call"], "the session reuses the proposal's id"
    assert f"to=\"dave@{prosody.domain}\"" in seen["propose"]
    assert "<candidate" not in seen["initiate"]
    assert "fingerprint" in seen["initiate"]
    assert alice.state(seen["call"], "DEINIT")


def test_peer_without_jmi_gets_a_plain_session_initiate(prosody, start_agent):
    """Disco says the callee has no XEP-0353: no propose, a direct initiate."""
    alice = start_agent("alice", extra=QUIET)
    got: list[str] = []

    async def main():
        client = await login(prosody, "dave")
        client.register_plugin("xep_0030")
        _features(client)
        done = asyncio.Event()

        def on_any(stanza):
            got.append(slixmpp.xmlstream.tostring(stanza.xml))
            if stanza.xml.tag.endswith("iq") and stanza["type"] == "set":
                stanza.reply().send()
                done.set()

        client.register_handler(Callback("m", MatchXPath("{jabber:client}message"), on_any))
        client.register_handler(Callback("j", MatchXPath(
            f"{{jabber:client}}iq/{{{ns.JINGLE}}}jingle"), on_any))
        client.send_presence()
        try:
            loop = asyncio.get_running_loop()
            sid = await _call_when_online(alice, f"dave@{prosody.domain}")
            await asyncio.wait_for(done.wait(), 10)
            await loop.run_in_executor(None, alice.client.hangup, sid)
        finally:
            client.disconnect()

    asyncio.run(main())
    assert not any("propose" in x for x in got)
    assert any("session-initiate" in x for x in got)


def test_a_stranger_calling_or_offering_a_file_learns_no_address_before_accept(
        prosody, start_agent):
    """What a raw caller that is not in bob's roster receives from bob's agent, for a
    plain call and a file offer, until bob accepts: no ICE candidate, no streamhost."""
    bob = start_agent("bob", extra=QUIET)
    received: list[str] = []

    async def main():
        client = await login(prosody, "dave")

        def on_jingle(iq):
            received.append(slixmpp.xmlstream.tostring(iq.xml))
            if iq["type"] == "set":
                iq.reply().send()

        client.register_handler(Callback("j", MatchXPath(
            f"{{jabber:client}}iq/{{{ns.JINGLE}}}jingle"), on_jingle))
        client.register_handler(Callback("r", MatchXPath("{jabber:client}iq"),
                                         lambda iq: received.append(
                                             slixmpp.xmlstream.tostring(iq.xml))))
        fp = ":".join(["AB"] * 32)
        for xml in (
            f"<jingle xmlns='{ns.JINGLE}' action='session-initiate' sid='strangecall'"
            f" initiator='{client.boundjid}'><content creator='initiator' name='voice'>"
            f"<description xmlns='{ns.RTP}' media='audio'><payload-type id='111' name='opus'"
            " clockrate='48000' channels='2'/></description>"
            f"<transport xmlns='{ns.ICE_UDP}' ufrag='dave' pwd='davedavedavedavedave12'>"
            f"<fingerprint xmlns='{ns.DTLS}' hash='sha-256' setup='actpass'>{fp}</fingerprint>"
            "<candidate component='1' foundation='1' generation='0' id='c1' ip='192.0.2.77'"
            " network='0' port='40000' priority='2130706431' protocol='udp' type='host'/>"
            "</transport></content></jingle>",
            f"<jingle xmlns='{ns.JINGLE}' action='session-initiate' sid='strangefile'"
            f" initiator='{client.boundjid}'><content creator='initiator' name='f'>"
            f"<description xmlns='{ns.FILE_TRANSFER}'><file><name>a.txt</name><size>5</size>"
            f"<hash xmlns='{ns.HASHES}' algo='sha-256'>LPJNul+wow4m6DsqxbninhsWHlwfp0JecwQzYp"
            "OLmCQ=</hash></file></description>"
            f"<transport xmlns='{ns.S5B}' sid='s5' dstaddr='"
            + "a" * 40 + "' mode='tcp'><candidate cid='c1' host='192.0.2.77' jid='"
            f"{client.boundjid}' port='40001' priority='8257536' type='direct'/>"
            "</transport></content></jingle>",
        ):
            iq = client.make_iq_set(ito=bob.full)
            iq.xml.append(slixmpp.xmlstream.ET.fromstring(xml))
            await iq.send(timeout=5)
        await asyncio.sleep(2.0)  # everything bob would say before anyone accepts
        client.disconnect()

    asyncio.run(main())
    bob.state("strangecall", "RECEIVEDINITIATE")
    bob.state("strangefile", "RECEIVEDINITIATE")
    assert received, "bob answered the requests"
    for stanza in received:
        assert "<candidate" not in stanza and "streamhost" not in stanza, stanza
        assert "192.0.2.2" not in stanza and "127.0.0.1" not in stanza, stanza
    time.sleep(0.1)


def test_hangup_right_after_an_automatic_proceed_ends_both_sides(start_agent):
    """The window between <proceed/> and the session-initiate: a hang-up there
    retracts, and both sides reach DEINIT."""
    alice = start_agent("alice", extra=QUIET)
    bob = start_agent("bob", extra=QUIET + '[policy]\nauto_accept_calls = "all"\n')
    make_ready(alice, bob)
    for _ in range(5):
        sid = alice.client.call(bob.bare)
        alice.client.hangup(sid)
        alice.state(sid, "DEINIT")
        bob.state(sid, "DEINIT", timeout=15)


def test_reveal_policy_always_trickles_candidates_while_ringing(prosody, start_agent):
    """policy.reveal_ip_before_accept = "always": libjingle's behaviour, on request."""
    bob = start_agent("bob", extra=QUIET + '[policy]\nreveal_ip_before_accept = "always"\n')
    received: list[str] = []

    async def main():
        client = await login(prosody, "dave")
        got = asyncio.Event()

        def on_jingle(iq):
            received.append(slixmpp.xmlstream.tostring(iq.xml))
            iq.reply().send()
            if "<candidate" in received[-1]:
                got.set()

        client.register_handler(Callback("j", MatchXPath(
            f"{{jabber:client}}iq/{{{ns.JINGLE}}}jingle"), on_jingle))
        fp = ":".join(["AB"] * 32)
        iq = client.make_iq_set(ito=bob.full)
        iq.xml.append(slixmpp.xmlstream.ET.fromstring(
            f"<jingle xmlns='{ns.JINGLE}' action='session-initiate' sid='early1'"
            f" initiator='{client.boundjid}'><content creator='initiator' name='voice'>"
            f"<description xmlns='{ns.RTP}' media='audio'><payload-type id='111' name='opus'"
            " clockrate='48000' channels='2'/></description>"
            f"<transport xmlns='{ns.ICE_UDP}' ufrag='dave' pwd='davedavedavedavedave12'>"
            f"<fingerprint xmlns='{ns.DTLS}' hash='sha-256' setup='actpass'>{fp}</fingerprint>"
            "</transport></content></jingle>"))
        await iq.send(timeout=5)
        try:
            await asyncio.wait_for(got.wait(), 10)
        finally:
            client.disconnect()

    asyncio.run(main())
    assert bob.state("early1", "RECEIVEDINITIATE")
    early = next(x for x in received if "<candidate" in x)
    assert "transport-info" in early
    assert not [e for e in bob.watch.seen if e.get("state") == "SENTACCEPT"]


def test_older_generation_caller_is_answered_and_its_initiate_accepted(prosody, start_agent):
    """A caller of the older action set proposes without type or hints; bob's agent
    rings, and once bob accepts it gets <proceed/>, then its session-initiate with the
    proposal's id is accepted at once (no second ring)."""
    bob = start_agent("bob", extra=QUIET)
    got: dict[str, object] = {"actions": []}
    pid = "a73sjjvkla37jfea"

    async def main():
        client = await login(prosody, "dave")
        proceeded, accepted = asyncio.Event(), asyncio.Event()

        def on_message(msg):
            for child in msg.xml:
                if child.tag == f"{{{ns.JMI}}}proceed" and child.get("id") == pid:
                    got["proceed_to"] = msg["to"].full
                    proceeded.set()

        def on_jingle(iq):
            iq.reply().send()
            jingle = iq.xml.find(f"{{{ns.JINGLE}}}jingle")
            got["actions"].append(jingle.get("action"))
            if jingle.get("action") == "session-accept":
                got["accept"] = slixmpp.xmlstream.tostring(iq.xml)
                accepted.set()

        client.register_handler(Callback("m", MatchXPath("{jabber:client}message"), on_message))
        client.register_handler(Callback("j", MatchXPath(
            f"{{jabber:client}}iq/{{{ns.JINGLE}}}jingle"), on_jingle))
        propose = client.make_message(mto=bob.bare)  # no type, no hints: 0.3 style
        propose.xml.append(slixmpp.xmlstream.ET.fromstring(
            f"<propose xmlns='{ns.JMI}' id='{pid}'><description xmlns='{ns.RTP}' "
            "media='audio'/></propose>"))
        propose.send()
        loop = asyncio.get_running_loop()
        try:
            await loop.run_in_executor(None, lambda: bob.state(pid, "RECEIVEDINITIATE"))
            await loop.run_in_executor(None, bob.client.accept, pid)
            await asyncio.wait_for(proceeded.wait(), 10)
            fp = ":".join(["AB"] * 32)
            iq = client.make_iq_set(ito=bob.full)
            iq.xml.append(slixmpp.xmlstream.ET.fromstring(
                f"<jingle xmlns='{ns.JINGLE}' action='session-initiate' sid='{pid}'"
                f" initiator='{client.boundjid}'><content creator='initiator' name='0'>"
                f"<description xmlns='{ns.RTP}' media='audio'><payload-type id='111'"
                " name='opus' clockrate='48000' channels='2'/></description>"
                f"<transport xmlns='{ns.ICE_UDP}' ufrag='dave' pwd='davedavedavedavedave12'>"
                f"<fingerprint xmlns='{ns.DTLS}' hash='sha-256' setup='actpass'>{fp}"
                "</fingerprint></transport></content></jingle>"))
            await iq.send(timeout=5)
            await asyncio.wait_for(accepted.wait(), 10)
            end = client.make_iq_set(ito=bob.full)
            end.xml.append(slixmpp.xmlstream.ET.fromstring(
                f"<jingle xmlns='{ns.JINGLE}' action='session-terminate' sid='{pid}'>"
                "<reason><success/></reason></jingle>"))
            await end.send(timeout=5)
        finally:
            client.disconnect()

    asyncio.run(main())
    assert str(got["proceed_to"]).startswith("dave@")
    assert "session-info" not in got["actions"], "no second ring for an accepted proposal"
    assert "setup=\"active\"" in got["accept"] and "<candidate" not in got["accept"]
    bob.state(pid, "DEINIT")
