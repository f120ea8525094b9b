"""XEP-0215 external services: STUN/TURN servers and time-limited TURN credentials
from the XMPP server, chosen for aioice and refreshed before they expire. Pure.

aioice takes one STUN and one TURN server per connection (as measured on our test machines):
UDP is preferred for both, TURN over TCP is kept when it is all there is.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from dataclasses import dataclass
from datetime import datetime

NS = "urn:xmpp:extdisco:2"
REFRESH_AT = 0.8  # of the credentials' lifetime
MIN_REFRESH = 1.0  # seconds


@dataclass(frozen=True)
class ExternalService:
    """XEP-0215 §3 <service/>."""

    type: str
    host: str
    port: int
    transport: str = "udp"
    username: str | None = None
    password: str | None = None
    expires: float | None = None  # Unix time


@dataclass(frozen=True)
class IceServers:
    stun: tuple[str, int] | None = None
    turn: tuple[str, int] | None = None
    turn_username: str | None = None
    turn_password: str | None = None
    turn_transport: str = "udp"
    expires: float | None = None
    turns: tuple[str, int] | None = None  # TURN over TLS, the last resort (XEP-0215 'turns')


def request() -> ET.Element:
    return ET.Element(f"{{{NS}}}services")


def _expires(value: str | None) -> float | None:
    if not value:
        return None
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return None


def parse(el: ET.Element) -> tuple[ExternalService, ...]:
    """The services of a <services/> result; malformed entries are skipped, not fatal."""
    out = []
    for child in el.findall(f"{{{NS}}}service"):
        kind, host, port = child.get("type"), child.get("host"), child.get("port", "")
        if kind not in ("stun", "turn", "turns") or not host or not port.isdigit():
            continue
        out.append(ExternalService(kind, host, int(port), child.get("transport", "udp"),
                                   child.get("username"), child.get("password"),
                                   _expires(child.get("expires"))))
    return tuple(out)


def choose(services: tuple[ExternalService, ...]) -> IceServers:
    """One STUN and one TURN server for aioice: UDP first, then TCP; a TLS one
    (``turns``) is kept as the fallback for networks that let nothing else out."""
    def best(kind: str) -> ExternalService | None:
        found = [s for s in services if s.type == kind and s.transport in ("udp", "tcp")]
        found.sort(key=lambda s: s.transport != "udp")
        return found[0] if found else None

    stun, turn = best("stun"), best("turn")
    if turn is not None and not (turn.username and turn.password):
        turn = None  # XEP-0215 §3.2: credentials are needed; without them it is useless
    # Prosody's mod_turn_external lists 'turns' without credentials: the ones of its
    # 'turn' entry work there (same server, same shared secret).
    turns = next((s for s in services if s.type == "turns"
                  and ((s.username and s.password) or turn is not None)), None)
    if turn is None and turns is not None and turns.username and turns.password:
        # Only TLS on offer: it is the TURN server (aioice: TCP with TLS).
        return IceServers(
            stun=(stun.host, stun.port) if stun else None,
            turn=(turns.host, turns.port), turn_username=turns.username,
            turn_password=turns.password, turn_transport="tls", expires=turns.expires)
    return IceServers(
        stun=(stun.host, stun.port) if stun else None,
        turn=(turn.host, turn.port) if turn else None,
        turn_username=turn.username if turn else None,
        turn_password=turn.password if turn else None,
        turn_transport=turn.transport if turn else "udp",
        expires=turn.expires if turn else None,
        turns=(turns.host, turns.port) if turns and turn else None,
    )


def refresh_delay(servers: IceServers, fetched_at: float, now: float) -> float | None:
    """Seconds until the credentials should be fetched again (before ``expires``)."""
    if servers.expires is None:
        return None
    lifetime = max(servers.expires - fetched_at, 0.0)
    due = fetched_at + REFRESH_AT * lifetime
    return max(due - now, MIN_REFRESH)
