"""XEP-0320: fingerprint/setup parsing and building, and one call's negotiation."""

import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from signalling.jingle import namespaces as ns
from signalling.jingle.dtls import (
    DtlsNegotiation,
    Encryption,
    Fingerprint,
    SecurityFailure,
    Setup,
    answer_setup,
    parse_fingerprint,
)
from signalling.jingle.errors import ProtocolError
from signalling.jingle.ice_udp import IceUdpTransport, parse_transport
from signalling.jingle.stanzas import parse_iq
from tests.unit.jingle.helpers import FORMATS

XEP0320 = Path(__file__).parents[2] / "fixtures" / "xep0320"
XEP_VALUE = ("02:1A:CC:54:27:AB:EB:9C:53:3F:3E:4B:65:2E:7D:46:3F:54:42:CD:54:F1:7A:03:A2:7D:"
             "F9:B0:7F:46:19:B2")
JULIET_VALUE = ("D8:C9:2A:00:6F:41:17:E1:53:96:1C:7E:2B:3A:91:08:55:C3:AB:9D:72:04:3F:E6:11:"
                "BC:68:8A:20:5D:C4:F7")
OURS = ":".join(["AB"] * 32)


def transport_of(name):
    iq = parse_iq(ET.fromstring((XEP0320 / name).read_text()), FORMATS)
    (content,) = iq.jingle.contents
    return content.transport


def test_xep_example_fingerprint_is_parsed_with_whitespace_stripped():
    transport = transport_of("session-initiate.xml")
    assert isinstance(transport, IceUdpTransport)
    assert transport.fingerprint == Fingerprint("sha-256", XEP_VALUE, Setup.ACTPASS)
    assert len(transport.candidates) == 2


def test_fingerprint_round_trips_inside_the_transport_before_candidates():
    transport = transport_of("session-initiate.xml")
    el = transport.to_element()
    assert [child.tag.split("}")[1] for child in el] == ["fingerprint", "candidate", "candidate"]
    fp = el[0]
    assert fp.tag == f"{{{ns.DTLS}}}fingerprint"
    assert (fp.get("hash"), fp.get("setup"), fp.text) == ("sha-256", "actpass", XEP_VALUE)
    assert parse_transport(el) == transport


@pytest.mark.parametrize("attrs, text, problem", [
    ({"hash": "md5", "setup": "actpass"}, "AB:CD", "unknown hash"),
    ({"hash": "sha-256", "setup": "sideways"}, "AB:CD", "setup"),
    ({"hash": "sha-256", "setup": "active"}, "not hex", "hex"),
    ({"setup": "active"}, "AB:CD", "unknown hash"),
])
def test_malformed_fingerprints_are_bad_requests(attrs, text, problem):
    el = ET.Element(f"{{{ns.DTLS}}}fingerprint", attrs)
    el.text = text
    with pytest.raises(ProtocolError) as info:
        parse_fingerprint(el)
    assert info.value.error.condition == "bad-request"
    assert problem in (info.value.error.text or "")


def test_lower_case_hex_and_missing_setup_are_accepted():
    el = ET.Element(f"{{{ns.DTLS}}}fingerprint", {"hash": "SHA-256"})
    el.text = "ab:cd:ef"
    assert parse_fingerprint(el) == Fingerprint("sha-256", "AB:CD:EF", Setup.ACTPASS)


@pytest.mark.parametrize("offered, answered", [
    (Setup.ACTPASS, Setup.ACTIVE), (Setup.ACTIVE, Setup.PASSIVE), (Setup.PASSIVE, Setup.ACTIVE),
])
def test_answer_setup_follows_rfc5763(offered, answered):
    assert answer_setup(offered) is answered


def test_holdconn_cannot_be_answered():
    with pytest.raises(SecurityFailure):
        answer_setup(Setup.HOLDCONN)


def test_callee_answers_the_xep_offer_as_dtls_client():
    callee = DtlsNegotiation(Encryption.REQUIRED, OURS)
    ours = callee.answer(transport_of("session-initiate.xml").fingerprint)
    assert ours == Fingerprint("sha-256", OURS, Setup.ACTIVE)
    role = callee.role()
    assert role is not None and role.client and role.remote.value == XEP_VALUE


def test_caller_is_dtls_server_when_the_answer_is_active():
    caller = DtlsNegotiation(Encryption.REQUIRED, OURS)
    assert caller.offer() == Fingerprint("sha-256", OURS, Setup.ACTPASS)
    caller.learn(transport_of("session-accept.xml").fingerprint)
    role = caller.role()
    assert role is not None and not role.client and role.remote.value == JULIET_VALUE


def test_fingerprint_in_transport_info_before_accept_is_pinned_and_checked():
    """The interop trap: the answer's fingerprint arrives in a transport-info first."""
    caller = DtlsNegotiation(Encryption.REQUIRED, OURS)
    caller.offer()
    assert caller.learn(transport_of("transport-info-before-accept.xml").fingerprint)
    # The accept repeats it: fine, nothing new.
    assert not caller.learn(transport_of("session-accept.xml").fingerprint)
    assert caller.role().remote.value == JULIET_VALUE
    # A different key afterwards is refused.
    with pytest.raises(SecurityFailure):
        caller.learn(Fingerprint("sha-256", OURS, Setup.ACTIVE))


def test_early_fingerprint_differing_from_the_accept_is_a_security_failure():
    caller = DtlsNegotiation(Encryption.REQUIRED, OURS)
    caller.offer()
    caller.learn(Fingerprint("sha-256", OURS, Setup.ACTIVE))
    with pytest.raises(SecurityFailure):
        caller.learn(transport_of("session-accept.xml").fingerprint)


def test_transport_info_actpass_does_not_override_a_decided_setup():
    caller = DtlsNegotiation(Encryption.REQUIRED, OURS)
    caller.offer()
    caller.learn(Fingerprint("sha-256", JULIET_VALUE, Setup.PASSIVE))
    caller.learn(Fingerprint("sha-256", JULIET_VALUE, Setup.ACTPASS))
    assert caller.role().client


def test_required_refuses_a_plain_offer_and_a_plain_answer():
    with pytest.raises(SecurityFailure):
        DtlsNegotiation(Encryption.REQUIRED, OURS).answer(None)
    caller = DtlsNegotiation(Encryption.REQUIRED, OURS)
    caller.offer()
    with pytest.raises(SecurityFailure):
        caller.role()


def test_optional_falls_back_to_plain_rtp():
    callee = DtlsNegotiation(Encryption.OPTIONAL, OURS)
    assert callee.answer(None) is None and callee.role() is None
    caller = DtlsNegotiation(Encryption.OPTIONAL, OURS)
    assert caller.offer() is not None
    assert caller.role() is None


def test_off_neither_offers_nor_answers():
    caller = DtlsNegotiation(Encryption.OFF, OURS)
    assert caller.offer() is None
    callee = DtlsNegotiation(Encryption.OFF, OURS)
    assert callee.answer(transport_of("session-initiate.xml").fingerprint) is None
    assert callee.role() is None

