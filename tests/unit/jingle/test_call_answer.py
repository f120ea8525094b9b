"""The callee's answer (signalling/jingle/call_answer.py), fed the offers today's
clients send (tests/fixtures/clients/) and the XEP-0167 example."""

from __future__ import annotations

import dataclasses
import xml.etree.ElementTree as ET

import pytest

from signalling.jingle import ice_udp, rtp
from signalling.jingle.call_answer import Answer, Refusal, answer_call
from signalling.jingle.dtls import DtlsNegotiation, Encryption, Setup
from signalling.jingle.stanzas import Content, parse_iq
from signalling.jingle.states import Reason
from tests.unit.jingle.helpers import FORMATS, fixture
from tests.unit.jingle.test_conversations_restart import CLIENTS

SUPPORTED = (rtp.OPUS, rtp.PCMU)
CREDS = ("0urU", "0urpassword0urpassword")
OURS = ":".join(["AB"] * 32)


def offer(name: str) -> tuple[Content, ...]:
    return parse_iq(ET.fromstring((CLIENTS / name).read_text()), FORMATS).jingle.contents


def dtls(mode: Encryption = Encryption.REQUIRED) -> DtlsNegotiation:
    return DtlsNegotiation(mode, OURS)


@pytest.mark.parametrize("name", ["conversations-initiate.xml", "dino-initiate.xml"])
def test_todays_clients_get_opus_on_their_id_and_our_dtls_role(name):
    offered = offer(name)
    decided = answer_call(offered, SUPPORTED, CREDS, dtls())
    assert isinstance(decided, Answer)
    assert decided.content.name == offered[0].name and decided.offered == offered[0]
    desc = decided.content.description
    assert isinstance(desc, rtp.RtpDescription)
    assert (desc.payload_types[0].name, desc.payload_types[0].id) == ("opus", 111)
    transport = decided.content.transport
    assert isinstance(transport, ice_udp.IceUdpTransport)
    assert (transport.ufrag, transport.pwd) == CREDS and transport.candidates == ()
    assert transport.fingerprint is not None
    assert transport.fingerprint.setup in (Setup.ACTIVE, Setup.PASSIVE)


def test_the_xep_example_offer_is_answered_in_plain_rtp_when_allowed():
    """XEP-0167 §5's example has no fingerprint: optional encryption answers it plain,
    required encryption refuses it before it rings."""
    offered = parse_iq(fixture("session-initiate.xml"), FORMATS).jingle.contents
    decided = answer_call(offered, SUPPORTED, CREDS, dtls(Encryption.OPTIONAL))
    assert isinstance(decided, Answer)
    assert decided.content.transport.fingerprint is None  # type: ignore[union-attr]
    refused = answer_call(offered, SUPPORTED, CREDS, dtls(Encryption.REQUIRED))
    assert isinstance(refused, Refusal) and refused.reason is Reason.SECURITY_ERROR


def test_no_codec_in_common_is_failed_application():
    (content,) = offer("conversations-initiate.xml")
    desc = content.description
    assert isinstance(desc, rtp.RtpDescription)
    g722_only = dataclasses.replace(desc, payload_types=tuple(
        p for p in desc.payload_types if p.name == "G722"))
    decided = answer_call((dataclasses.replace(content, description=g722_only),),
                          SUPPORTED, CREDS, dtls())
    assert decided == Refusal(Reason.FAILED_APPLICATION, "no codec in common with the caller")


def test_only_the_first_answerable_audio_content_is_taken():
    (audio,) = offer("conversations-initiate.xml")
    video = dataclasses.replace(audio, name="1", description=rtp.RtpDescription(
        "video", (rtp.PayloadType(96, "VP8", 90000),)))
    decided = answer_call((video, audio), SUPPORTED, CREDS, dtls())
    assert isinstance(decided, Answer) and decided.content.name == "0"


def test_a_content_without_ice_udp_is_not_answered():
    (audio,) = offer("conversations-initiate.xml")
    decided = answer_call((dataclasses.replace(audio, transport=None),), SUPPORTED, CREDS,
                          dtls())
    assert isinstance(decided, Refusal) and decided.reason is Reason.FAILED_APPLICATION
