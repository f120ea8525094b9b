"""Parsing and building against the example stanzas of XEP-0166 and XEP-0167."""

import xml.etree.ElementTree as ET

import pytest

from signalling.jingle import namespaces as ns
from signalling.jingle.errors import ProtocolError
from signalling.jingle.ice_udp import IceUdpTransport
from signalling.jingle.rtp import OPUS, PCMU, RtpDescription, RtpInfo, RtpInfoKind, answer
from signalling.jingle.stanzas import (
    UnknownPayload,
    build_error,
    build_jingle,
    parse_error,
    parse_iq,
    parse_jingle,
)
from signalling.jingle.states import Action, Reason, Role, Senders
from tests.unit.jingle.helpers import FORMATS, JULIET, ROMEO, fixture


def test_session_initiate_example():
    iq = parse_iq(fixture("session-initiate.xml"), FORMATS)
    assert (iq.id, iq.sender, iq.recipient) == ("nzu25s8", ROMEO, JULIET)
    j = iq.jingle
    assert j.action is Action.SESSION_INITIATE
    assert j.sid == "a73sjjvkla37jfea"
    assert j.initiator == ROMEO
    (content,) = j.contents
    assert (content.creator, content.name, content.senders) == (Role.INITIATOR, "voice",
                                                                Senders.BOTH)
    desc = content.description
    assert isinstance(desc, RtpDescription)
    assert desc.media == "audio"
    assert [(p.id, p.name, p.clockrate, p.channels) for p in desc.payload_types] == [
        (96, "speex", 16000, 1), (97, "speex", 8000, 1), (18, "G729", None, 1),
        (0, "PCMU", None, 1), (103, "L16", 16000, 2), (98, "x-ISAC", 8000, 1)]
    transport = content.transport
    assert isinstance(transport, IceUdpTransport)
    assert (transport.ufrag, transport.pwd) == ("8hhy", "asd88fgpdd777uzjYhagZg")
    host, srflx = transport.candidates
    assert (host.type, host.ip, host.port, host.priority) == ("host", "10.0.1.1", 8998,
                                                              2130706431)
    assert (srflx.type, srflx.rel_addr, srflx.rel_port) == ("srflx", "10.0.1.1", 8998)


@pytest.mark.parametrize("name", [
    "session-initiate.xml", "session-accept.xml", "session-terminate-success.xml",
    "session-terminate-decline.xml", "session-terminate-alternative.xml",
    "session-info-ringing.xml", "session-info-mute.xml", "content-add.xml",
])
def test_build_parse_round_trip(name):
    """What we build from a parsed example parses back to the same thing."""
    j = parse_iq(fixture(name), FORMATS).jingle
    rebuilt = parse_jingle(ET.fromstring(ET.tostring(build_jingle(j))), FORMATS)
    assert rebuilt == j


def test_terminate_reasons():
    success = parse_iq(fixture("session-terminate-success.xml"), FORMATS).jingle.reason
    assert success is not None
    assert (success.condition, success.text) == (Reason.SUCCESS, "Sorry, gotta go!")
    decline = parse_iq(fixture("session-terminate-decline.xml"), FORMATS).jingle.reason
    assert decline is not None and decline.condition is Reason.DECLINE
    alt = parse_iq(fixture("session-terminate-alternative.xml"), FORMATS).jingle.reason
    assert alt is not None
    assert (alt.condition, alt.alternative_sid) == (Reason.ALTERNATIVE_SESSION,
                                                    "b84tkkwlmb48kgfb")


def test_session_info_payloads():
    ringing = parse_iq(fixture("session-info-ringing.xml"), FORMATS).jingle.info
    assert ringing == RtpInfo(RtpInfoKind.RINGING)
    mute = parse_iq(fixture("session-info-mute.xml"), FORMATS).jingle.info
    assert mute == RtpInfo(RtpInfoKind.MUTE, "responder", "voice")
    unknown = parse_iq(fixture("session-info-unsupported.xml"), FORMATS).jingle.info
    assert isinstance(unknown, UnknownPayload)
    assert unknown.namespace == "urn:xmpp:jingle:apps:video:1"
    assert parse_iq(fixture("session-info-ping.xml"), FORMATS).jingle.info is None


@pytest.mark.parametrize("name, condition, jingle_condition", [
    ("error-unknown-session.xml", "item-not-found", "unknown-session"),
    ("error-out-of-order.xml", "unexpected-request", "out-of-order"),
    ("error-tie-break.xml", "conflict", "tie-break"),
    ("error-service-unavailable.xml", "service-unavailable", None),
])
def test_error_examples(name, condition, jingle_condition):
    error = parse_error(fixture(name))
    assert (error.condition, error.jingle_condition) == (condition, jingle_condition)
    rebuilt = ET.Element("iq", {"type": "error"})
    rebuilt.append(build_error(error))
    assert parse_error(ET.fromstring(ET.tostring(rebuilt))) == error


def test_malformed_is_bad_request():
    with pytest.raises(ProtocolError) as info:
        parse_iq(fixture("malformed-no-sid.xml"), FORMATS)
    assert info.value.error.condition == "bad-request"


@pytest.mark.parametrize("xml", [
    "<iq type='set'><jingle xmlns='urn:xmpp:jingle:1' action='dance' sid='x'/></iq>",
    "<iq type='get'><jingle xmlns='urn:xmpp:jingle:1' action='session-info' sid='x'/></iq>",
    "<iq type='set'><jingle xmlns='urn:xmpp:jingle:1' action='session-info' sid='x'>"
    "<content creator='nobody' name='a'/></jingle></iq>",
    "<iq type='set'><jingle xmlns='urn:xmpp:jingle:1' action='session-terminate' sid='x'>"
    "<reason/></jingle></iq>",
    "<iq type='set'><jingle xmlns='urn:xmpp:jingle:1' action='session-initiate' sid='x'>"
    "<content creator='initiator' name='a'><description xmlns='urn:xmpp:jingle:apps:rtp:1'"
    " media='audio'><payload-type id='abc'/></description></content></jingle></iq>",
    "<iq type='set'><jingle xmlns='urn:xmpp:jingle:1' action='session-initiate' sid='x'>"
    "<content creator='initiator' name='a'/><content creator='initiator' name='a'/>"
    "</jingle></iq>",
])
def test_bad_input_is_bad_request(xml):
    with pytest.raises(ProtocolError) as info:
        parse_iq(ET.fromstring(xml), FORMATS)
    assert info.value.error.condition == "bad-request"


def test_unknown_description_and_transport_are_kept():
    xml = ("<iq type='set'><jingle xmlns='urn:xmpp:jingle:1' action='session-initiate' sid='x'>"
           "<content creator='initiator' name='a'><description xmlns='urn:example:app'/>"
           "<transport xmlns='urn:example:tr'/></content></jingle></iq>")
    (content,) = parse_iq(ET.fromstring(xml), FORMATS).jingle.contents
    assert isinstance(content.description, UnknownPayload)
    assert content.description.namespace == "urn:example:app"
    assert isinstance(content.transport, UnknownPayload)


def test_rtp_answer_is_the_intersection_in_offer_order():
    offer = parse_iq(fixture("session-initiate.xml"), FORMATS).jingle.contents[0].description
    assert isinstance(offer, RtpDescription)
    ans = answer(offer, (OPUS, PCMU))
    assert ans is not None
    assert [(p.id, p.name) for p in ans.payload_types] == [(0, "PCMU")]
    video = RtpDescription("video", offer.payload_types)
    assert answer(video, (OPUS, PCMU)) is None
    assert answer(RtpDescription("audio", (offer.payload_types[0],)), (OPUS, PCMU)) is None


def test_opus_offer_element():
    el = ET.fromstring(ET.tostring(RtpDescription("audio", (OPUS, PCMU), True).to_element()))
    assert el.tag == f"{{{ns.RTP}}}description"
    opus = el.find(f"{{{ns.RTP}}}payload-type")
    assert opus is not None
    assert (opus.get("id"), opus.get("name"), opus.get("clockrate"), opus.get("channels")) == (
        "111", "opus", "48000", "2")
    params = {p.get("name"): p.get("value") for p in opus}
    assert params["useinbandfec"] == "1"
    assert el.find(f"{{{ns.RTP}}}rtcp-mux") is not None
