"""XEP-0176 ICE-UDP transport element: credentials and candidates.

Only the element lives here; gathering and checks happen in the media worker
(aioice), which sends candidates to signalling as bus messages.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from dataclasses import dataclass

from signalling.jingle import namespaces as ns
from signalling.jingle.dtls import Fingerprint, parse_fingerprint
from signalling.jingle.errors import bad_request

_CANDIDATE_INTS = ("component", "generation", "network", "port", "priority", "rel-port")


@dataclass(frozen=True)
class IceCandidate:
    """XEP-0176 §5.2 <candidate/>."""

    component: int
    foundation: str
    generation: int
    id: str
    ip: str
    port: int
    priority: int
    protocol: str
    type: str
    network: int = 0
    rel_addr: str | None = None
    rel_port: int | None = None

    def to_element(self) -> ET.Element:
        attrs = {
            "component": str(self.component), "foundation": self.foundation,
            "generation": str(self.generation), "id": self.id, "ip": self.ip,
            "network": str(self.network), "port": str(self.port),
            "priority": str(self.priority), "protocol": self.protocol, "type": self.type,
        }
        if self.rel_addr is not None:
            attrs["rel-addr"] = self.rel_addr
        if self.rel_port is not None:
            attrs["rel-port"] = str(self.rel_port)
        return ET.Element(f"{{{ns.ICE_UDP}}}candidate", attrs)


@dataclass(frozen=True)
class IceUdpTransport:
    """XEP-0176 §5.1 <transport/>; no candidates is legal (and is what we send before
    the user accepts, so that no address leaks). ``fingerprint``: XEP-0320 §1, the
    DTLS certificate this side will present, carried beside the credentials."""

    ufrag: str | None = None
    pwd: str | None = None
    candidates: tuple[IceCandidate, ...] = ()
    fingerprint: Fingerprint | None = None

    @property
    def namespace(self) -> str:
        return ns.ICE_UDP

    def to_element(self) -> ET.Element:
        el = ET.Element(f"{{{ns.ICE_UDP}}}transport")
        if self.pwd is not None:
            el.set("pwd", self.pwd)
        if self.ufrag is not None:
            el.set("ufrag", self.ufrag)
        if self.fingerprint is not None:
            el.append(self.fingerprint.to_element())
        for candidate in self.candidates:
            el.append(candidate.to_element())
        return el


# A host has a handful of addresses, each with host/srflx/relay candidates: no real
# client sends more than a few dozen; a stanza with more only costs us work.
MAX_CANDIDATES = 32


def parse_transport(el: ET.Element) -> IceUdpTransport:
    candidates: list[IceCandidate] = []
    fingerprint = None
    for child in el:
        if child.tag == f"{{{ns.DTLS}}}fingerprint" and fingerprint is None:
            fingerprint = parse_fingerprint(child)
            continue
        if child.tag != f"{{{ns.ICE_UDP}}}candidate":
            continue
        if len(candidates) >= MAX_CANDIDATES:
            raise bad_request(f"more than {MAX_CANDIDATES} ICE candidates in one transport")
        try:
            ints = {k: int(child.get(k, "0")) for k in _CANDIDATE_INTS}
        except ValueError:
            raise bad_request("ICE candidate with a non-numeric field") from None
        for required in ("foundation", "ip", "port", "priority", "protocol", "type"):
            if child.get(required) is None:
                raise bad_request(f"ICE candidate without {required}")
        candidates.append(IceCandidate(
            component=ints["component"] or 1,
            foundation=child.get("foundation", ""),
            generation=ints["generation"],
            id=child.get("id", ""),
            ip=child.get("ip", ""),
            port=ints["port"],
            priority=ints["priority"],
            protocol=child.get("protocol", ""),
            type=child.get("type", ""),
            network=ints["network"],
            rel_addr=child.get("rel-addr"),
            rel_port=int(child.get("rel-port", "0")) if child.get("rel-port") else None,
        ))
    return IceUdpTransport(el.get("ufrag"), el.get("pwd"), tuple(candidates), fingerprint)


def is_restart(known: tuple[str, str] | None, transport: IceUdpTransport) -> bool:
    """An ICE restart (RFC 8445 §9, XEP-0176 §5.9): a transport-info whose ufrag/pwd
    differ from the peer's current ones, with or without candidates (Conversations
    sends the new credentials alone, then trickles). The same credentials, or none,
    are just more candidates."""
    if known is None or not transport.ufrag or not transport.pwd:
        return False
    return (transport.ufrag, transport.pwd) != known
