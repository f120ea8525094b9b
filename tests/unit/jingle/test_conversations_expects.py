"""What Conversations requires of the call stanzas it receives, checked on ours.

Its RtpContentMap (read in its current source; these are our own words for its
rules) refuses a session-initiate or session-accept unless every content has an
RTP description and an ICE-UDP transport with one set of non-empty credentials
and a DTLS fingerprint (hash, value and setup; ``actpass`` in an initiate).
A transport-info with new credentials and no candidate is a restart offer; with
candidates, the answer to a restart of its own. Ours are built by the same
functions CallSessions uses, serialised and parsed back as they travel.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET

import pytest

from signalling.jingle import ice_udp, rtp
from signalling.jingle.dtls import DtlsNegotiation, Encryption, Fingerprint, Setup
from signalling.jingle.stanzas import Content, Jingle, build_jingle, parse_iq
from signalling.jingle.states import Action, Role
from tests.unit.jingle.helpers import FORMATS
from tests.unit.jingle.test_conversations_restart import CLIENTS

OURS = ":".join(["AB"] * 32)
THEIRS = ":".join(["CD"] * 32)


def conversations_accepts(jingle_el: ET.Element, initiate: bool) -> None:
    """Its requireContentDescriptions + requireDTLSFingerprint + getDistinctCredentials,
    as assertions."""
    iq = ET.Element("iq", {"type": "set", "id": "x", "from": "a@b/c", "to": "d@e/f"})
    iq.append(jingle_el)
    jingle = parse_iq(ET.fromstring(ET.tostring(iq)), FORMATS).jingle
    assert jingle.contents, "No contents available"
    credentials = set()
    for content in jingle.contents:
        assert isinstance(content.description, rtp.RtpDescription), "lacking description"
        transport = content.transport
        assert isinstance(transport, ice_udp.IceUdpTransport), "no ICE-UDP transport"
        fingerprint = transport.fingerprint
        assert fingerprint is not None and fingerprint.value and fingerprint.hash, \
            "Use of DTLS-SRTP (XEP-0320) is required"
        assert fingerprint.setup is not None, "missing setup attribute"
        if initiate:
            assert fingerprint.setup is Setup.ACTPASS, "Initiator needs to offer ACTPASS"
        assert transport.ufrag and transport.pwd, "Credentials are missing password or ufrag"
        credentials.add((transport.ufrag, transport.pwd))
    assert len(credentials) == 1, "Content map does not have distinct credentials"


def test_our_session_initiate_is_one_it_accepts():
    """Built as CallSessions.call builds it: no candidate (trickled), actpass."""
    dtls = DtlsNegotiation(Encryption.REQUIRED, OURS)
    content = Content(Role.INITIATOR, "voice", rtp.audio_offer(),
                      ice_udp.IceUdpTransport("8hhy", "asd88fgpdd777uzjYhagZg",
                                              fingerprint=dtls.offer()))
    el = build_jingle(Jingle(Action.SESSION_INITIATE, "s1", initiator="a@b/c",
                             contents=(content,)))
    conversations_accepts(el, initiate=True)


def test_our_session_accept_of_its_initiate_is_one_it_accepts():
    """Its own session-initiate (the fixture), answered the way CallSessions.accept
    answers: codec answer plus our fingerprint with the setup XEP-0320 derives."""
    offer_iq = parse_iq(ET.fromstring((CLIENTS / "conversations-initiate.xml").read_text()),
                        FORMATS)
    (offered,) = offer_iq.jingle.contents
    assert isinstance(offered.description, rtp.RtpDescription)
    assert isinstance(offered.transport, ice_udp.IceUdpTransport)
    dtls = DtlsNegotiation(Encryption.REQUIRED, OURS)
    ours = dtls.answer(offered.transport.fingerprint)
    answer = rtp.answer(offered.description, (rtp.OPUS, rtp.PCMU))
    assert answer is not None and ours is not None
    assert ours.setup in (Setup.ACTIVE, Setup.PASSIVE)
    content = Content(offered.creator, offered.name, answer,
                      ice_udp.IceUdpTransport("n3wU", "n3wpasswordn3wpassword", fingerprint=ours),
                      offered.senders)
    el = build_jingle(Jingle(Action.SESSION_ACCEPT, offer_iq.jingle.sid, responder="d@e/f",
                             contents=(content,)))
    conversations_accepts(el, initiate=False)
    # It maps payload types by id: ours answers Opus on the id it offered (111).
    assert answer.payload_types[0].id == 111 and answer.payload_types[0].name == "opus"


@pytest.mark.parametrize("setup", [Setup.ACTPASS, Setup.ACTIVE])
def test_a_fingerprint_without_setup_is_what_it_refuses(setup):
    """The check above can fail: a transport without fingerprint is refused."""
    content = Content(Role.INITIATOR, "voice", rtp.audio_offer(),
                      ice_udp.IceUdpTransport("8hhy", "asd88fgpdd777uzjYhagZg"))
    el = build_jingle(Jingle(Action.SESSION_INITIATE, "s1", contents=(content,)))
    with pytest.raises(AssertionError, match="DTLS-SRTP"):
        conversations_accepts(el, initiate=True)
    fingerprint = Fingerprint("sha-256", THEIRS, setup)
    content = Content(Role.INITIATOR, "voice", rtp.audio_offer(),
                      ice_udp.IceUdpTransport("8hhy", "asd88fgpdd777uzjYhagZg",
                                              fingerprint=fingerprint))
    el = build_jingle(Jingle(Action.SESSION_INITIATE, "s1", contents=(content,)))
    if setup is Setup.ACTPASS:
        conversations_accepts(el, initiate=True)
    else:
        with pytest.raises(AssertionError, match="ACTPASS"):
            conversations_accepts(el, initiate=True)


def test_its_session_accept_of_our_call_is_taken_with_its_dtls_role():
    """What it answers to our initiate: content name echoed, Opus on 111, setup
    ``active`` (it is the DTLS client), a BUNDLE group, no candidates (trickled)."""
    iq = parse_iq(ET.fromstring((CLIENTS / "conversations-accept.xml").read_text()), FORMATS)
    assert iq.jingle.action is Action.SESSION_ACCEPT
    (content,) = iq.jingle.contents
    assert content.name == "voice"
    assert isinstance(content.description, rtp.RtpDescription)
    assert rtp.chosen_codec(content.description, (rtp.OPUS, rtp.PCMU)) is not None
    assert isinstance(content.transport, ice_udp.IceUdpTransport)
    assert content.transport.candidates == ()
    dtls = DtlsNegotiation(Encryption.REQUIRED, OURS)
    dtls.offer()
    assert dtls.learn(content.transport.fingerprint)
    assert dtls.peer_setup is Setup.ACTIVE


def test_its_session_terminate_ends_with_success():
    iq = parse_iq(ET.fromstring((CLIENTS / "conversations-terminate.xml").read_text()), FORMATS)
    assert iq.jingle.action is Action.SESSION_TERMINATE
    assert iq.jingle.reason is not None and iq.jingle.reason.condition.value == "success"
