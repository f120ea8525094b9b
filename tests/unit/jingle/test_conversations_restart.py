"""ICE restarts with Conversations, in the stanza shapes it sends and expects (its
JingleRtpConnection: "zero candidates + modified credentials are an ICE restart offer";
credentials with candidates confirm a restart of its own)."""

import xml.etree.ElementTree as ET
from pathlib import Path

from signalling.jingle import namespaces as ns
from signalling.jingle.ice_udp import IceCandidate, IceUdpTransport, is_restart
from signalling.jingle.stanzas import parse_iq
from tests.unit.jingle.helpers import FORMATS

CLIENTS = Path(__file__).parents[2] / "fixtures" / "clients"
CURRENT = ("qLdj", "8Z3Rg9mVkk2vEzQyqXwNuNRa")  # from conversations-initiate.xml


def _transport(name: str) -> IceUdpTransport:
    iq = parse_iq(ET.fromstring((CLIENTS / name).read_text()), FORMATS)
    (content,) = iq.jingle.contents
    assert isinstance(content.transport, IceUdpTransport)
    return content.transport


def test_its_restart_offer_restarts_ours():
    offer = _transport("conversations-restart-offer.xml")
    assert offer.candidates == () and is_restart(CURRENT, offer)


def test_its_trickled_candidate_after_the_restart_is_only_a_candidate():
    candidate = _transport("conversations-candidate.xml")
    assert len(candidate.candidates) == 1
    assert not is_restart(("Zk8u", "J0rv2gM6wQeZ1xXkYbTqA9sP"), candidate)


def test_our_restart_offer_is_what_it_reads_as_an_offer():
    """Ours carries the new credentials and no candidate; our answer to its restart
    carries both (it would read a bare one as a crossing offer)."""
    offer = IceUdpTransport("n3wU", "n3wpasswordn3wpassword").to_element()
    assert offer.get("ufrag") == "n3wU" and offer.get("pwd")
    assert offer.find(f"{{{ns.ICE_UDP}}}candidate") is None
    answer = IceUdpTransport("n3wU", "n3wpasswordn3wpassword", (
        IceCandidate(1, "1", 0, "c1", "192.0.2.1", 5000, 2130706431, "udp", "host"),))
    assert answer.to_element().find(f"{{{ns.ICE_UDP}}}candidate") is not None
