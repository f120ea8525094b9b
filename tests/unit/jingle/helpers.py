"""Builders for Jingle tests: fixture loading and two in-memory peers (like h11's
ConnectionPair and aioquic's client_and_server)."""

from __future__ import annotations

import itertools
import xml.etree.ElementTree as ET
from pathlib import Path

from signalling.jingle import ice_udp, rtp
from signalling.jingle import namespaces as ns
from signalling.jingle.manager import ManagerEvent, SessionManager
from signalling.jingle.session import SendError, SendRequest, SendResult, Stanza, Timeouts
from signalling.jingle.stanzas import Content, Formats, build_error, build_jingle
from signalling.jingle.states import Role

FIXTURES = Path(__file__).parents[2] / "fixtures" / "xep0166"
ROMEO = "romeo@montague.lit/orchard"
JULIET = "juliet@capulet.lit/balcony"
FORMATS = Formats(
    descriptions={ns.RTP: rtp.parse_description},
    transports={ns.ICE_UDP: ice_udp.parse_transport},
    infos={ns.RTP_INFO: rtp.parse_info},
)


def fixture(name: str) -> ET.Element:
    return ET.fromstring((FIXTURES / name).read_text())


def manager(local: str, prefix: str, timeouts: Timeouts | None = None) -> SessionManager:
    counter = itertools.count(1)
    return SessionManager(local=local, formats=FORMATS, timeouts=timeouts or Timeouts(),
                          new_sid=lambda: f"{prefix}{next(counter)}")


def voice_content() -> tuple[Content, ...]:
    return (Content(Role.INITIATOR, "voice", rtp.audio_offer(),
                    ice_udp.IceUdpTransport("8hhy", "asd88fgpdd777uzjYhagZg")),)


def to_element(sender: str, stanza: Stanza) -> ET.Element:
    """Serialise as the stream would, then parse back: what the peer receives."""
    if isinstance(stanza, SendRequest):
        iq = ET.Element("iq", {"from": sender, "to": stanza.to, "id": stanza.iq_id,
                               "type": "set"})
        iq.append(build_jingle(stanza.jingle))
    elif isinstance(stanza, SendResult):
        iq = ET.Element("iq", {"from": sender, "to": stanza.to, "id": stanza.iq_id,
                               "type": "result"})
    else:
        iq = ET.Element("iq", {"from": sender, "to": stanza.to, "id": stanza.iq_id,
                               "type": "error"})
        iq.append(build_error(stanza.error))
    return ET.fromstring(ET.tostring(iq))


class Pair:
    """Romeo and Juliet, each with a SessionManager, wired by an in-memory stream."""

    def __init__(self, timeouts: Timeouts | None = None) -> None:
        self.romeo = manager(ROMEO, "r", timeouts)
        self.juliet = manager(JULIET, "j", timeouts)
        self.wire: list[tuple[str, ET.Element]] = []  # everything that crossed
        self.now = 0.0

    def events(self, who: SessionManager) -> list[ManagerEvent]:
        out = []
        while (e := who.next_event()) is not None:
            out.append(e)
        return out

    def pump(self) -> None:
        from signalling.jingle.stanzas import parse_error

        for _ in range(100):
            moved = False
            for src, dst in ((self.romeo, self.juliet), (self.juliet, self.romeo)):
                for stanza in src.stanzas_to_send():
                    moved = True
                    el = to_element(src.local, stanza)
                    self.wire.append((src.local, el))
                    if isinstance(stanza, SendRequest):
                        dst.receive_iq(el, self.now)
                    elif isinstance(stanza, SendResult):
                        dst.receive_response(stanza.iq_id, None, self.now)
                    elif isinstance(stanza, SendError):
                        dst.receive_response(stanza.iq_id, parse_error(el), self.now)
            if not moved:
                return
        raise AssertionError("the peers never went quiet")
