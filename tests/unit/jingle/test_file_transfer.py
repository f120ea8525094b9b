"""XEP-0234 description and infos, XEP-0260 transport, against the XEPs' examples."""

import base64
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from signalling.jingle import file_transfer as ft
from signalling.jingle import namespaces as ns
from signalling.jingle import s5b
from signalling.jingle.errors import ProtocolError
from signalling.jingle.stanzas import Formats, build_jingle, parse_iq, parse_jingle

FIXTURES = Path(__file__).parents[2] / "fixtures" / "xep0234"
FORMATS = Formats(descriptions={ns.FILE_TRANSFER: ft.parse_description},
                  transports={ns.S5B: s5b.parse_transport},
                  infos={ns.FILE_TRANSFER: ft.parse_info})


def load(name):
    return parse_iq(ET.fromstring((FIXTURES / name).read_text()), FORMATS)


def test_offer_example():
    (content,) = load("session-initiate.xml").jingle.contents
    desc = content.description
    assert isinstance(desc, ft.FileDescription)
    f = desc.file
    assert (f.name, f.size, f.media_type, f.date) == ("test.txt", 6144, "text/plain",
                                                      "2015-07-26T21:46:00+01:00")
    assert f.hash("sha-1").value == base64.b64decode("w0mcJylzCn+AfvuGdqkty2+KP48=")
    transport = content.transport
    assert isinstance(transport, s5b.S5bTransport) and transport.sid == "vj3hs98y"
    assert [(c.cid, c.host, c.port, c.priority, c.type) for c in transport.candidates] == [
        ("hft54dqy", "192.168.4.1", 5086, 8257636, "direct"),
        ("hutr46fe", "24.24.24.1", 5087, 8258636, "direct")]


def test_range_request_example():
    (content,) = load("session-accept-range.xml").jingle.contents
    f = content.description.file
    assert f.range == ft.Range(270336) and f.hash("sha-1") is not None


def test_checksum_and_received_examples():
    checksum = load("checksum.xml").jingle.info
    assert isinstance(checksum, ft.Checksum) and checksum.name == "a-file-offer"
    assert checksum.file.hash("sha-1") is not None
    assert load("received.xml").jingle.info == ft.Received("initiator", "a-file-offer")


@pytest.mark.parametrize("name", ["session-initiate.xml", "checksum.xml", "received.xml"])
def test_round_trip(name):
    j = load(name).jingle
    assert parse_jingle(ET.fromstring(ET.tostring(build_jingle(j))), FORMATS) == j


def test_range_with_hash_round_trips():
    info = ft.FileInfo(name="x", hashes=(ft.Hash("sha-256", b"\x01" * 32),),
                       range=ft.Range(100, 50))
    again = ft.FileInfo.from_element(ET.fromstring(ET.tostring(info.to_element())))
    assert again == info


@pytest.mark.parametrize("xml", [
    f"<description xmlns='{ns.FILE_TRANSFER}'/>",
    f"<description xmlns='{ns.FILE_TRANSFER}'><file><size>big</size></file></description>",
    f"<description xmlns='{ns.FILE_TRANSFER}'><file><hash xmlns='{ns.HASHES}' algo='sha-256'>"
    "not base64!</hash></file></description>",
    f"<description xmlns='{ns.FILE_TRANSFER}'><file><range offset='-5'/></file></description>",
])
def test_bad_descriptions(xml):
    with pytest.raises(ProtocolError):
        ft.parse_description(ET.fromstring(xml))


def test_dstaddr_and_priority():
    # XEP-0065 §5.3.2: SHA1 over SID + requester + target, as lowercase hex.
    import hashlib

    expected = hashlib.sha1(b"vj3hs98yjuliet@capulet.example/yn0cl4bnw0yr3vym"
                            b"romeo@montague.example/dr4hcr0st3lup4c").hexdigest()
    assert s5b.dstaddr("vj3hs98y", "juliet@capulet.example/yn0cl4bnw0yr3vym",
                       "romeo@montague.example/dr4hcr0st3lup4c") == expected
    assert s5b.priority("direct") > s5b.priority("proxy")
    assert s5b.priority("direct") == 126 * 65536 + 255


def test_transport_info_elements_round_trip():
    for info in s5b.S5bInfo:
        t = s5b.S5bTransport("sid1", info=info, info_cid="c1" if info in (
            s5b.S5bInfo.CANDIDATE_USED, s5b.S5bInfo.ACTIVATED) else None)
        assert s5b.parse_transport(ET.fromstring(ET.tostring(t.to_element()))) == t


def test_nomination_rules():
    hi = s5b.S5bCandidate("hi", "h", "j", 1, 200)
    lo = s5b.S5bCandidate("lo", "h", "j", 1, 100)
    same = s5b.S5bCandidate("same", "h", "j", 1, 200)
    assert s5b.nominate(None, None, True) is None
    assert s5b.nominate(hi, None, False) == s5b.Nomination("hi", False)
    assert s5b.nominate(None, lo, False) == s5b.Nomination("lo", True)
    assert s5b.nominate(lo, hi, True) == s5b.Nomination("hi", True)
    assert s5b.nominate(hi, lo, False) == s5b.Nomination("hi", False)
    # A tie: the initiator's choice wins on both sides.
    assert s5b.nominate(hi, same, True) == s5b.Nomination("hi", False)
    assert s5b.nominate(same, hi, False) == s5b.Nomination("hi", True)


def test_ibb_transport_and_stanzas():
    from signalling.jingle import ibb

    (content,) = parse_iq(ET.fromstring((FIXTURES / "session-accept-range.xml").read_text()),
                          Formats(descriptions=FORMATS.descriptions,
                                  transports={ns.IBB: ibb.parse_transport})).jingle.contents
    assert content.transport == ibb.IbbTransport("ch3d9s71", 4096)
    for payload in (ibb.IbbOpen("s1", 4096), ibb.IbbData("s1", 65535, b"\x00\xffdata"),
                    ibb.IbbClose("s1")):
        assert ibb.parse(ET.fromstring(ET.tostring(ibb.build(payload)))) == payload
    # XEP-0047 §2.2 example payload.
    el = ET.fromstring("<data xmlns='http://jabber.org/protocol/ibb' seq='0' sid='i781hf64'>"
                       "qANQR1DBwU4DX7jmYZnncmUQB/9KuKBddzQH+tZ1ZywKK0yHKnq57kWq+RFtQdCJ"
                       "</data>")
    assert ibb.parse(el).seq == 0 and len(ibb.parse(el).data) == 48


@pytest.mark.parametrize("xml", [
    "<open xmlns='http://jabber.org/protocol/ibb' sid='s' block-size='x'/>",
    "<open xmlns='http://jabber.org/protocol/ibb' sid='s' block-size='4096' stanza='message'/>",
    "<data xmlns='http://jabber.org/protocol/ibb' sid='s' seq='70000'>AA==</data>",
    "<data xmlns='http://jabber.org/protocol/ibb' sid='s' seq='1'>!!</data>",
    "<data xmlns='http://jabber.org/protocol/ibb' seq='1'>AA==</data>",
])
def test_bad_ibb_stanzas(xml):
    from signalling.jingle import ibb

    with pytest.raises(ProtocolError):
        ibb.parse(ET.fromstring(xml))
