"""XEP-0260 SOCKS5 bytestreams transport: the element and its negotiation rules.

Each party offers candidates (its own listening sockets, ``direct``; the
server's XEP-0065 proxy, ``proxy``), tries the other's in priority order, and
says which one worked (``candidate-used``) or that none did
(``candidate-error``). The nominated pair is the used candidate of higher
priority; on a tie the initiator's choice wins (§2.4). A proxy candidate is
then activated by its owner (``activated``).
"""

from __future__ import annotations

import enum
import hashlib
import xml.etree.ElementTree as ET
from dataclasses import dataclass

from signalling.jingle import namespaces as ns
from signalling.jingle.errors import bad_request

TYPE_PREFERENCE = {"direct": 126, "assisted": 120, "tunnel": 110, "proxy": 10}


def priority(kind: str, local_preference: int = 0) -> int:
    """XEP-0260 §2.2: (2^16)*type preference + (2^8)*local preference + 256 - component."""
    return (TYPE_PREFERENCE[kind] << 16) + (local_preference << 8) + 255


def dstaddr(sid: str, requester: str, target: str) -> str:
    """XEP-0065 §5.3.2: SHA-1(SID + requester JID + target JID), lowercase hex.

    XEP-0260 §2.2: the requester is the party that offers the candidates, so
    connections to the initiator's candidates use SHA-1(SID + initiator +
    responder), and to the responder's SHA-1(SID + responder + initiator).
    """
    return hashlib.sha1(f"{sid}{requester}{target}".encode()).hexdigest()


@dataclass(frozen=True)
class S5bCandidate:
    """XEP-0260 §2.2 <candidate/>."""

    cid: str
    host: str
    jid: str
    port: int
    priority: int
    type: str = "direct"

    def to_element(self) -> ET.Element:
        return ET.Element(f"{{{ns.S5B}}}candidate", {
            "cid": self.cid, "host": self.host, "jid": self.jid, "port": str(self.port),
            "priority": str(self.priority), "type": self.type})


class S5bInfo(enum.StrEnum):
    """What a transport-info may say (XEP-0260 §2.3-2.5)."""

    CANDIDATE_USED = "candidate-used"
    CANDIDATE_ERROR = "candidate-error"
    ACTIVATED = "activated"
    PROXY_ERROR = "proxy-error"


@dataclass(frozen=True)
class S5bTransport:
    """XEP-0260 <transport xmlns='urn:xmpp:jingle:transports:s5b:1'/>."""

    sid: str
    candidates: tuple[S5bCandidate, ...] = ()
    dstaddr: str | None = None
    mode: str = "tcp"
    info: S5bInfo | None = None
    info_cid: str | None = None

    @property
    def namespace(self) -> str:
        return ns.S5B

    def to_element(self) -> ET.Element:
        attrs = {"sid": self.sid}
        if self.mode != "tcp":
            attrs["mode"] = self.mode
        if self.dstaddr:
            attrs["dstaddr"] = self.dstaddr
        el = ET.Element(f"{{{ns.S5B}}}transport", attrs)
        for c in self.candidates:
            el.append(c.to_element())
        if self.info is not None:
            child = ET.SubElement(el, f"{{{ns.S5B}}}{self.info.value}")
            if self.info_cid:
                child.set("cid", self.info_cid)
        return el


MAX_CANDIDATES = 16  # streamhosts per transport: a few addresses and a proxy in practice


def parse_transport(el: ET.Element) -> S5bTransport:
    sid = el.get("sid")
    if not sid:
        raise bad_request("s5b transport without sid")
    mode = el.get("mode", "tcp")
    if mode not in ("tcp", "udp"):
        raise bad_request(f"s5b mode {mode!r}")
    candidates: list[S5bCandidate] = []
    info: S5bInfo | None = None
    info_cid: str | None = None
    for child in el:
        local = child.tag.rpartition("}")[2]
        if local == "candidate":
            if len(candidates) >= MAX_CANDIDATES:
                raise bad_request(f"more than {MAX_CANDIDATES} s5b candidates")
            try:
                port, prio = int(child.get("port", "1080")), int(child.get("priority", ""))
            except ValueError:
                raise bad_request("s5b candidate port/priority is not a number") from None
            cid, host, jid = child.get("cid"), child.get("host"), child.get("jid")
            kind = child.get("type", "direct")
            if not cid or not host or not jid or kind not in TYPE_PREFERENCE:
                raise bad_request("s5b candidate lacks cid, host, jid or a known type")
            if not 0 < port < 65536:
                raise bad_request("s5b candidate port out of range")
            candidates.append(S5bCandidate(cid, host, jid, port, prio, kind))
        else:
            try:
                info = S5bInfo(local)
            except ValueError:
                continue
            info_cid = child.get("cid")
    return S5bTransport(sid, tuple(candidates), el.get("dstaddr"), mode, info, info_cid)


@dataclass(frozen=True)
class Nomination:
    """The candidate both sides use: ``cid`` offered by ``offered_by_us``."""

    cid: str
    offered_by_us: bool


def nominate(ours_used: S5bCandidate | None, theirs_used: S5bCandidate | None,
             we_are_initiator: bool) -> Nomination | None:
    """XEP-0260 §2.4. ``ours_used``: the peer's candidate that *we* connected to;
    ``theirs_used``: our candidate that the *peer* connected to. None: both failed."""
    if ours_used is None and theirs_used is None:
        return None
    if theirs_used is None:
        assert ours_used is not None
        return Nomination(ours_used.cid, offered_by_us=False)
    if ours_used is None:
        return Nomination(theirs_used.cid, offered_by_us=True)
    if ours_used.priority != theirs_used.priority:
        if ours_used.priority > theirs_used.priority:
            return Nomination(ours_used.cid, offered_by_us=False)
        return Nomination(theirs_used.cid, offered_by_us=True)
    # Equal priority: the initiator's choice wins, i.e. the candidate it connected to.
    if we_are_initiator:
        return Nomination(ours_used.cid, offered_by_us=False)
    return Nomination(theirs_used.cid, offered_by_us=True)
