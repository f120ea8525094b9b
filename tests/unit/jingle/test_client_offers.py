"""Offers in the shape Conversations and Dino send: parsed, answered, accepted."""

import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from signalling.jingle.ice_udp import IceUdpTransport
from signalling.jingle.rtp import OPUS, PCMU, RtpDescription, answer, chosen_codec
from signalling.jingle.session import SendResult
from signalling.jingle.stanzas import parse_iq
from signalling.jingle.states import SessionState
from tests.unit.jingle.helpers import FORMATS, JULIET, manager

CLIENTS = Path(__file__).parents[2] / "fixtures" / "clients"


def load(name):
    return ET.fromstring((CLIENTS / name).read_text())


@pytest.mark.parametrize("name, content, candidates", [
    ("conversations-initiate.xml", "0", 0),
    ("dino-initiate.xml", "audio", 3),
])
def test_client_offer_parses_and_answers_opus_with_fec(name, content, candidates):
    iq = parse_iq(load(name), FORMATS)
    (offer,) = iq.jingle.contents
    assert offer.name == content
    desc, transport = offer.description, offer.transport
    assert isinstance(desc, RtpDescription) and desc.rtcp_mux
    assert isinstance(transport, IceUdpTransport)
    assert transport.ufrag and transport.pwd and len(transport.candidates) == candidates
    ans = answer(desc, (OPUS, PCMU))
    assert ans is not None
    assert [(p.id, p.name) for p in ans.payload_types] == [(111, "opus"), (0, "PCMU")]
    codec = chosen_codec(ans, (OPUS, PCMU))
    assert codec is not None and codec.id == 111
    assert ("useinbandfec", "1") in codec.parameters


def test_red_parameter_without_name_is_kept():
    iq = parse_iq(load("conversations-initiate.xml"), FORMATS)
    red = next(p for p in iq.jingle.contents[0].description.payload_types if p.name == "red")
    assert red.parameters == (("", "111/111"),)


@pytest.mark.parametrize("name", ["conversations-initiate.xml", "dino-initiate.xml"])
def test_manager_takes_client_initiates(name):
    juliet = manager(JULIET, "j")
    element = load(name)
    juliet.receive_iq(element, 0.0)
    assert juliet.stanzas_to_send() == [SendResult(element.get("id"), element.get("from"))]
    session = juliet.get(parse_iq(element, FORMATS).jingle.sid)
    assert session is not None and session.state is SessionState.RECEIVEDINITIATE


@pytest.mark.parametrize("name", ["conversations-initiate.xml", "dino-initiate.xml"])
def test_client_offer_is_answered_as_dtls_client(name):
    """Both clients offer actpass: we answer active and start the handshake (RFC 5763)."""
    from signalling.jingle.dtls import DtlsNegotiation, Encryption, Setup

    iq = parse_iq(load(name), FORMATS)
    offered = iq.jingle.contents[0].transport.fingerprint
    assert offered is not None and offered.hash == "sha-256" and offered.setup is Setup.ACTPASS
    ours = DtlsNegotiation(Encryption.REQUIRED, ":".join(["AB"] * 32))
    answer = ours.answer(offered)
    assert answer is not None and answer.setup is Setup.ACTIVE
    role = ours.role()
    assert role is not None and role.client and role.remote == offered
