"""XEP-0167 RTP description (audio), its session-info payloads, and codec negotiation.

SDP-free: payload types are dataclasses, and the answer to an offer is the
intersection in the offerer's order (XEP-0167 §5: the responder keeps what it
supports). Parameters travel as ``<parameter name value/>`` (§4.1).
"""

from __future__ import annotations

import enum
import xml.etree.ElementTree as ET
from dataclasses import dataclass, replace

from signalling.jingle import namespaces as ns
from signalling.jingle.errors import bad_request, unsupported_info


@dataclass(frozen=True)
class PayloadType:
    """XEP-0167 §4.1 <payload-type/>."""

    id: int
    name: str = ""
    clockrate: int | None = None
    channels: int = 1
    ptime: int | None = None
    maxptime: int | None = None
    parameters: tuple[tuple[str, str], ...] = ()

    def matches(self, other: PayloadType) -> bool:
        """Same codec: static ids (< 96) by id, dynamic ones by name/rate/channels."""
        if self.id < 96 and other.id < 96:
            return self.id == other.id
        return (
            self.name.lower() == other.name.lower()
            and (self.clockrate or 8000) == (other.clockrate or 8000)
            and self.channels == other.channels
        )


@dataclass(frozen=True)
class RtpDescription:
    """XEP-0167 §4 <description xmlns='urn:xmpp:jingle:apps:rtp:1'/>."""

    media: str
    payload_types: tuple[PayloadType, ...]
    rtcp_mux: bool = False
    ssrc: str | None = None

    @property
    def namespace(self) -> str:
        return ns.RTP

    def to_element(self) -> ET.Element:
        el = ET.Element(f"{{{ns.RTP}}}description", {"media": self.media})
        if self.ssrc:
            el.set("ssrc", self.ssrc)
        for pt in self.payload_types:
            attrs = {"id": str(pt.id)}
            if pt.name:
                attrs["name"] = pt.name
            if pt.clockrate is not None:
                attrs["clockrate"] = str(pt.clockrate)
            if pt.channels != 1:
                attrs["channels"] = str(pt.channels)
            if pt.ptime is not None:
                attrs["ptime"] = str(pt.ptime)
            if pt.maxptime is not None:
                attrs["maxptime"] = str(pt.maxptime)
            p = ET.SubElement(el, f"{{{ns.RTP}}}payload-type", attrs)
            for name, value in pt.parameters:
                ET.SubElement(p, f"{{{ns.RTP}}}parameter", {"name": name, "value": value})
        if self.rtcp_mux:
            ET.SubElement(el, f"{{{ns.RTP}}}rtcp-mux")
        return el


def _int(el: ET.Element, name: str, default: int | None = None) -> int | None:
    raw = el.get(name)
    if raw is None:
        return default
    try:
        return int(raw)
    except ValueError:
        raise bad_request(f"payload-type {name}={raw!r} is not a number") from None


def parse_description(el: ET.Element) -> RtpDescription:
    media = el.get("media")
    if not media:
        raise bad_request("RTP description without media")
    pts: list[PayloadType] = []
    rtcp_mux = False
    for child in el:
        if child.tag == f"{{{ns.RTP}}}payload-type":
            pt_id = _int(child, "id")
            if pt_id is None or not 0 <= pt_id <= 127:
                raise bad_request("payload-type id missing or out of 0..127")
            params = tuple(
                (p.get("name", ""), p.get("value", ""))
                for p in child
                if p.tag == f"{{{ns.RTP}}}parameter"
            )
            pts.append(PayloadType(
                id=pt_id,
                name=child.get("name", ""),
                clockrate=_int(child, "clockrate"),
                channels=_int(child, "channels", 1) or 1,
                ptime=_int(child, "ptime"),
                maxptime=_int(child, "maxptime"),
                parameters=params,
            ))
        elif child.tag == f"{{{ns.RTP}}}rtcp-mux":
            rtcp_mux = True
    return RtpDescription(media, tuple(pts), rtcp_mux, el.get("ssrc"))


OPUS = PayloadType(111, "opus", 48000, 2, parameters=(("minptime", "10"), ("useinbandfec", "1")))
PCMU = PayloadType(0, "PCMU", 8000)


def audio_offer() -> RtpDescription:
    """What pyjingle offers for a voice call: Opus, PCMU as the fallback."""
    return RtpDescription("audio", (OPUS, PCMU), rtcp_mux=True)


def answer(offer: RtpDescription, supported: tuple[PayloadType, ...]) -> RtpDescription | None:
    """The intersection, in the offerer's order with the offerer's ids; None if empty."""
    common = tuple(
        replace(pt, parameters=pt.parameters)
        for pt in offer.payload_types
        if any(pt.matches(ours) for ours in supported)
    )
    if offer.media != "audio" or not common:
        return None
    return RtpDescription(offer.media, common, offer.rtcp_mux)


def chosen_codec(answer_desc: RtpDescription,
                 supported: tuple[PayloadType, ...]) -> PayloadType | None:
    """The payload type a call sends: the first of the answer that we support
    (XEP-0167 §5: the answer lists what both accept, most preferred first)."""
    return next((pt for pt in answer_desc.payload_types
                 if any(pt.matches(ours) for ours in supported)), None)


class RtpInfoKind(enum.StrEnum):
    """XEP-0167 §7 session-info payloads."""

    ACTIVE = "active"
    HOLD = "hold"
    UNHOLD = "unhold"
    MUTE = "mute"
    UNMUTE = "unmute"
    RINGING = "ringing"


@dataclass(frozen=True)
class RtpInfo:
    kind: RtpInfoKind
    creator: str | None = None
    name: str | None = None

    @property
    def namespace(self) -> str:
        return ns.RTP_INFO

    def to_element(self) -> ET.Element:
        el = ET.Element(f"{{{ns.RTP_INFO}}}{self.kind.value}")
        if self.creator:
            el.set("creator", self.creator)
        if self.name:
            el.set("name", self.name)
        return el


def parse_info(el: ET.Element) -> RtpInfo:
    local = el.tag.rpartition("}")[2]
    try:
        kind = RtpInfoKind(local)
    except ValueError:
        # Not one of ours: the session answers unsupported-info (XEP-0166 §8).
        raise unsupported_info(f"unknown RTP info <{local}/>") from None
    return RtpInfo(kind, el.get("creator"), el.get("name"))
