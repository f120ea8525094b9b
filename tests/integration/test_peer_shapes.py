"""What other clients do that the XEPs allow: a receiver that ends a transfer with
session-terminate ``success`` and never sends the optional <received/> (Dino)."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import os
from pathlib import Path

import pytest
from slixmpp.xmlstream import ET
from slixmpp.xmlstream.handler import Callback
from slixmpp.xmlstream.matcher import MatchXPath

from scripts.raw_xmpp import login, logout
from signalling.jingle import namespaces as ns

pytestmark = pytest.mark.prosody
IBB = "http://jabber.org/protocol/ibb"


def test_the_sender_completes_when_the_receiver_ends_with_success_alone(prosody,
                                                                         start_agent, folder):
    """XEP-0234 §7.2 makes <received/> optional: a receiver that only terminates with
    success still completes the transfer for our sender (verified false: unconfirmed)."""
    alice = start_agent("alice", extra='[transfer]\ntransports = ["ibb"]\n')
    payload = os.urandom(30_000)
    source = folder / "to-dino.bin"
    source.write_bytes(payload)
    got = bytearray()

    async def receiver() -> None:
        client = await login(prosody, "dave", "dino")
        client.register_plugin("xep_0030")
        for feature in (ns.JINGLE, ns.FILE_TRANSFER, ns.IBB, IBB):
            client.plugin["xep_0030"].add_feature(feature)
        done = asyncio.Event()

        def on_jingle(iq) -> None:
            iq.reply().send()
            jingle = iq.xml.find(f"{{{ns.JINGLE}}}jingle")
            if jingle.get("action") == "session-initiate":
                content = jingle.find(f"{{{ns.JINGLE}}}content")
                accept = client.make_iq_set(ito=iq["from"])
                answer = ET.SubElement(accept.xml, f"{{{ns.JINGLE}}}jingle", {
                    "action": "session-accept", "sid": jingle.get("sid"),
                    "responder": str(client.boundjid)})
                answer.append(content)
                accept.send()

        def on_ibb(iq) -> None:
            data = iq.xml.find(f"{{{IBB}}}data")
            if data is not None:
                got.extend(base64.b64decode(data.text or ""))
            iq.reply().send()
            if iq.xml.find(f"{{{IBB}}}close") is not None or len(got) >= len(payload):
                done.set()

        client.register_handler(Callback("j", MatchXPath(
            f"{{jabber:client}}iq/{{{ns.JINGLE}}}jingle"), on_jingle))
        for local in ("open", "data", "close"):
            client.register_handler(Callback(f"ibb {local}", MatchXPath(
                f"{{jabber:client}}iq/{{{IBB}}}{local}"), on_ibb))
        client.send_presence()
        loop = asyncio.get_running_loop()
        await asyncio.sleep(1.0)  # our presence reaches alice
        sid = await loop.run_in_executor(None, alice.client.send_file,
                                         f"dave@{prosody.domain}", str(source))
        await asyncio.wait_for(done.wait(), 20)
        await asyncio.sleep(0.3)
        end = client.make_iq_set(ito=f"alice@{prosody.domain}/agent")
        terminate = ET.SubElement(end.xml, f"{{{ns.JINGLE}}}jingle", {
            "action": "session-terminate", "sid": sid})
        ET.SubElement(ET.SubElement(terminate, f"{{{ns.JINGLE}}}reason"),
                      f"{{{ns.JINGLE}}}success")
        await end.send(timeout=5)
        complete = await loop.run_in_executor(
            None, lambda: alice.watch.wait_for(10, event="transfer.complete", sid=sid))
        assert complete["verified"] is False and complete["size"] == len(payload)
        assert complete["sha256"] == hashlib.sha256(payload).hexdigest()
        await loop.run_in_executor(None, lambda: alice.state(sid, "DEINIT"))
        await logout(client)

    asyncio.run(receiver())
    assert bytes(got) == payload


def test_a_propose_that_asks_for_a_receipt_gets_one(prosody, start_agent):
    """Conversations shows its caller "ringing" when the XEP-0184 receipt for its
    <propose/> arrives: the ringing device answers with <received id=.../>."""
    alice = start_agent("alice", extra='[audio]\ninput = "silence"\noutput = "null"\n')
    receipts: list[tuple[str, str]] = []

    async def caller() -> None:
        client = await login(prosody, "dave", "conversations")
        got = asyncio.Event()

        def on_message(msg) -> None:
            received = msg.xml.find(f"{{{ns.RECEIPTS}}}received")
            if received is not None:
                receipts.append((str(msg["from"]), received.get("id", "")))
                got.set()

        client.register_handler(Callback("m", MatchXPath("{jabber:client}message"),
                                         on_message))
        client.send_presence()
        message = client.make_message(mto=alice.bare, mtype="chat")
        message["id"] = "propose-1"
        ET.SubElement(ET.SubElement(message.xml, f"{{{ns.JMI}}}propose", {"id": "call-1"}),
                      f"{{{ns.RTP}}}description", {"media": "audio"})
        ET.SubElement(message.xml, f"{{{ns.RECEIPTS}}}request")
        message.send()
        await asyncio.wait_for(got.wait(), 10)
        retract = client.make_message(mto=alice.bare, mtype="chat")
        ET.SubElement(retract.xml, f"{{{ns.JMI}}}retract", {"id": "call-1"})
        retract.send()
        await asyncio.sleep(0.5)
        await logout(client)

    asyncio.run(caller())
    assert receipts == [(alice.full, "propose-1")]
    alice.state("call-1", "RECEIVEDINITIATE")


def test_an_s5b_offer_to_an_in_band_only_agent_falls_back_as_xep_0260_says(start_agent,
                                                                           folder):
    """Dino offers SOCKS5 whatever we advertise. bob does in-band only: he accepts,
    reports candidate-error at once, and alice (the initiator) replaces the transport
    with XEP-0261; the file arrives verified (before: session-terminate
    unsupported-transports)."""
    from scripts.agents import make_ready

    alice = start_agent("alice")
    bob = start_agent("bob", extra=f'[transfer]\ntransports = ["ibb"]\n'
                                   f'download_dir = "{folder}/dl"\n')
    make_ready(alice, bob)
    source = folder / "offered-over-s5b.bin"
    payload = os.urandom(200_000)
    source.write_bytes(payload)
    sid = alice.client.send_file(bob.bare, str(source))
    bob.state(sid, "RECEIVEDINITIATE")
    bob.client.accept(sid)
    failed = alice.watch.wait_for(15, event="transport.state", sid=sid, state="failed")
    assert failed["method"] == "s5b"
    connected = bob.watch.wait_for(15, event="transport.state", sid=sid, state="connected")
    assert connected["method"] == "ibb"
    done = bob.watch.wait_for(30, event="transfer.complete", sid=sid)
    assert done["verified"] is True
    assert Path(done["path"]).read_bytes() == payload
