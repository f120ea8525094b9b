"""The aioice edge: one ICE-UDP connection per call, candidates as bus values.

Facts measured on our test machines that shape it: aioice only ends its checks
once told there are no more remote candidates (``add_remote_candidate(None)``),
and failing checks can run for a minute, so the worker debounces an
end-of-candidates and bounds ``connect()`` in time.
"""

from __future__ import annotations

import asyncio
import dataclasses
import ipaddress
import logging
import secrets
from typing import Any

import aioice

from bus.config import IceConfig
from bus.messages import IceCandidateInfo
from media_worker.liveness import ConsentFreshness

log = logging.getLogger(__name__)

COMPONENT_RTP = 1  # rtcp-mux: RTP and RTCP share component 1 (XEP-0167 §6.5)


def to_info(candidate: aioice.Candidate) -> IceCandidateInfo:
    return IceCandidateInfo(
        component=candidate.component, foundation=candidate.foundation,
        generation=candidate.generation or 0, id=secrets.token_hex(5), ip=candidate.host,
        port=candidate.port, priority=candidate.priority,
        protocol=candidate.transport.lower(), type=candidate.type,
        rel_addr=candidate.related_address, rel_port=candidate.related_port)


def from_info(info: IceCandidateInfo) -> aioice.Candidate:
    return aioice.Candidate(
        foundation=info.foundation, component=info.component, transport=info.protocol,
        priority=info.priority, host=info.ip, port=info.port, type=info.type,
        related_address=info.rel_addr, related_port=info.rel_port,
        generation=info.generation)


def signalled(candidates: list[IceCandidateInfo], relay_only: bool,
              advertised: str | None = None) -> list[IceCandidateInfo]:
    """What may be sent to the peer. Relay-only: relayed candidates alone, without their
    related address (RFC 8445 §5.1.3 lets it reveal the address behind the relay).
    ``advertised``: the public address of a host behind a 1:1 NAT (a cloud VM), given
    in place of its IPv4 host addresses (the NAT maps it to them, port for port)."""
    if advertised is not None and not relay_only:
        candidates = [dataclasses.replace(c, ip=advertised)
                      if c.type == "host" and ":" not in c.ip else c for c in candidates]
    if not relay_only:
        return candidates
    return [dataclasses.replace(c, rel_addr=None, rel_port=None)
            for c in candidates if c.type == "relay"]


# Address space that only means something inside one site (RFC 1918, RFC 6598,
# RFC 4193, link-local, loopback).
_SITE_LOCAL = tuple(ipaddress.ip_network(n) for n in (
    "10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "100.64.0.0/10", "169.254.0.0/16",
    "127.0.0.0/8", "fc00::/7", "fe80::/10", "::1/128"))


RELAY_HEAD_START = 1.0  # seconds direct pairs get before relayed ones are checked
# Seconds a TURN server gets to answer before the next transport is tried (a server
# that answers at all does so in well under a second; aioice would wait 5).
FALLBACK_AFTER = 2


def _relayed(pair: Any) -> bool:
    return "relay" in (pair.local_candidate.type, pair.remote_candidate.type)


def site_local(host: str) -> bool:
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return False  # a name (mDNS): aioice already keeps relays away from those
    return any(address in net for net in _SITE_LOCAL)


class Connection(aioice.Connection):
    """aioice's connection, minus the pairs a relay can never serve.

    A TURN server outside the peer's site cannot reach the peer's private host
    address, yet aioice pairs our relayed candidate with it like any other. The
    check is not merely wasted: coturn gets an error sending into an address it
    has no route to and drops the whole allocation ("closed, reason: general"),
    taking the relay pairs that would have worked with it. Behind two symmetric
    NATs that left the default policy with nothing (the relay-only policy never
    sees host candidates, so it connected). aioice skips relay pairs to mDNS
    names for a similar reason; this extends the rule to site-local addresses
    when the relay itself is not site-local.

    This class is the only user of aioice internals (``_pair_remote_candidate``,
    ``_protocols``, ``_check_list``, ``_nominated``, ``_query_consent_task``, and
    ``query_consent`` replaced to follow our own consent timing); tests/unit/media_worker/
    test_aioice_contract.py fails if a release changes them, and pyproject pins the
    tested range. An upstream pairing-filter hook and a per-pair check delay would
    replace all of it.
    """

    # Seconds aioice waits for STUN/TURN answers while gathering (its own default: 5).
    # Shorter while another way to the TURN server is left to try.
    gather_timeout = 5

    async def get_component_candidates(self, component: int, addresses: list[str],
                                       timeout: int = 5) -> list[aioice.Candidate]:
        return list(await super().get_component_candidates(
            component, addresses, timeout=min(timeout, self.gather_timeout)))

    async def check_start(self, pair: Any) -> None:
        """Relayed pairs start RELAY_HEAD_START later while a direct pair may still work.

        aioice nominates the first pair that succeeds; a relay answers from the
        first packet, while a direct path through a cone NAT needs both sides'
        checks to punch the hole (a retransmission, ~0.5 s). Without a head start
        calls that could go direct went through the relay (the cone row of the
        NAT matrix), costing the relay's bandwidth and a detour.
        """
        if _relayed(pair) and any(
                not _relayed(p) and p.state not in (aioice.ice.CandidatePair.State.FAILED,)
                for p in self._check_list):
            self.check_state(pair, aioice.ice.CandidatePair.State.IN_PROGRESS)
            await asyncio.sleep(RELAY_HEAD_START)
            if self._nominated.get(pair.component) is not None:
                return  # a direct pair made it meanwhile
        await super().check_start(pair)

    async def query_consent(self) -> None:
        """RFC 7675 consent freshness on the selected pair, timed by the pure rules of
        :class:`media_worker.liveness.ConsentFreshness` (aioice's own loop counts six
        failed checks instead of 30 s without an answer). Lost consent closes the
        connection: the call's receive loop sees it end and the restart policy runs."""
        assert self.remote_password is not None
        loop = asyncio.get_running_loop()
        consent = ConsentFreshness(loop.time())
        while True:
            await asyncio.sleep(consent.wake(loop.time()) - loop.time())
            if consent.lost(loop.time()):
                log.info("consent to send expired (RFC 7675): no answer for %.0f s",
                         loop.time() - consent.last_answer)
                self._query_consent_task = None  # close() must not cancel this task
                await self.close()
                return
            if consent.due(loop.time()) and await self.probe_selected(retransmissions=0):
                consent.answered(loop.time())

    async def probe_selected(self, retransmissions: int | None = None) -> bool:
        """One binding request on each selected pair: whether any was answered."""
        if self.remote_password is None:
            return False
        for pair in list(self._nominated.values()):
            request = self.build_request(pair, nominate=False)
            try:
                await pair.protocol.request(
                    request, pair.remote_addr,
                    integrity_key=self.remote_password.encode("utf8"),
                    retransmissions=retransmissions)
                return True
            except (aioice.stun.TransactionError, ConnectionError, OSError):
                continue
        return False

    def _pair_remote_candidate(self, remote_candidate: aioice.Candidate) -> None:
        if remote_candidate.type == "host" and site_local(remote_candidate.host):
            relays = [p for p in self._protocols
                      if p.local_candidate.type == "relay"
                      and not site_local(p.local_candidate.host)]
            if relays:
                kept = self._protocols
                self._protocols = [p for p in kept if p not in relays]
                try:
                    super()._pair_remote_candidate(remote_candidate)
                finally:
                    self._protocols = kept
                return
        super()._pair_remote_candidate(remote_candidate)


class IceTransport:
    """ICE for one call. Credentials exist at once; sockets only after ``gather()``."""

    def __init__(self, controlling: bool, servers: IceConfig | None = None,
                 relay_only: bool = False, advertised: str | None = None) -> None:
        """``relay_only``: RFC 9429 §3.5.3 relay policy: neither host nor server-reflexive
        candidates are gathered, so no address of ours can reach the peer."""
        self.servers = servers
        self.relay_only = relay_only
        self.advertised = advertised  # media.advertised_address (1:1 NAT)
        self.controlling = controlling
        self.connection = self._connection()
        self._ended = False
        self._gathered = False
        self._early: list[IceCandidateInfo] = []

    def _connection(self, turn: tuple[tuple[str, int], str] | None = None,
                    ufrag: str | None = None, pwd: str | None = None,
                    stun: bool = True) -> Connection:
        """An aioice connection; ``turn``: (server, udp|tcp|tls) instead of the
        configured one."""
        policy = (aioice.TransportPolicy.RELAY if self.relay_only
                  else aioice.TransportPolicy.ALL)
        servers = self.servers
        if servers is None:
            return Connection(ice_controlling=self.controlling, components=1,
                              transport_policy=policy, local_username=ufrag,
                              local_password=pwd)
        server, transport = turn or (servers.turn_server, servers.turn_transport)
        return Connection(
            ice_controlling=self.controlling, components=1,
            stun_server=servers.stun_server if stun else None,
            turn_server=server, turn_username=servers.turn_username,
            turn_password=servers.turn_password,
            turn_transport="tcp" if transport == "tls" else transport,
            turn_ssl=transport == "tls", transport_policy=policy, local_username=ufrag,
            local_password=pwd)

    def _fallbacks(self) -> list[tuple[tuple[str, int], str]]:
        """Where to try TURN again when the configured way yields no relay: TCP to the
        same server after UDP (UDP blocked), then TLS (only TLS let out)."""
        s = self.servers
        if s is None or s.turn_server is None:
            return []
        out = []
        if s.turn_transport == "udp":
            out.append((s.turn_server, "tcp"))
        if s.turns_server is not None and s.turn_transport != "tls":
            out.append((s.turns_server, "tls"))
        return out

    @property
    def ufrag(self) -> str:
        return str(self.connection.local_username)

    @property
    def pwd(self) -> str:
        return str(self.connection.local_password)

    async def gather(self) -> list[IceCandidateInfo]:
        fallbacks = self._fallbacks()
        types: set[str] = set()
        for i, turn in enumerate([None, *fallbacks]):
            if turn is not None:
                if "relay" in types:
                    break
                # The way to the TURN server may be blocked (and aioice drops the
                # failure silently): try the next. Same credentials (ufrag/pwd are
                # already signalled), new sockets; no STUN again when it failed too.
                log.info("TURN gave no relayed candidate: trying %s:%d over %s",
                         turn[0][0], turn[0][1], turn[1].upper())
                remote = (self.connection.remote_username, self.connection.remote_password)
                await self.connection.close()
                self.connection = self._connection(turn, self.ufrag, self.pwd,
                                                   stun="srflx" in types)
                self.connection.remote_username, self.connection.remote_password = remote
            if i < len(fallbacks):
                self.connection.gather_timeout = FALLBACK_AFTER  # another way is left
            await self.connection.gather_candidates()
            types = {c.type for c in self.connection.local_candidates}
        self._gathered = True
        # aioice drops a failed STUN/TURN request without a word: say it.
        if self.servers and self.servers.stun_server and "srflx" not in types:
            log.warning("STUN server %s:%d gave no server-reflexive candidate",
                        *self.servers.stun_server)
        if self.servers and self.servers.turn_server and "relay" not in types:
            log.warning("TURN server %s:%d gave no relayed candidate",
                        *self.servers.turn_server)
        early, self._early = self._early, []
        for info in early:
            await self._add(info)
        return signalled([to_info(c) for c in self.connection.local_candidates],
                         self.relay_only, self.advertised)

    def set_remote_credentials(self, ufrag: str, pwd: str) -> None:
        self.connection.remote_username = ufrag
        self.connection.remote_password = pwd

    async def probe(self, timeout: float) -> bool:
        """Whether the selected pair still works: a consent check (RFC 7675) with
        retransmissions, bounded by ``timeout``. False once the connection is closed."""
        try:
            return await asyncio.wait_for(self.connection.probe_selected(), timeout)
        except TimeoutError:
            return False

    async def add_remote(self, candidates: tuple[IceCandidateInfo, ...]) -> int:
        """Add UDP candidates of component 1; returns how many were usable."""
        usable = [c for c in candidates
                  if c.protocol.lower() == "udp" and c.component == COMPONENT_RTP]
        for info in usable:
            if not self._gathered:
                self._early.append(info)
            elif not self._ended:
                await self._add(info)
        return len(usable)

    async def _add(self, info: IceCandidateInfo) -> None:
        try:
            await self.connection.add_remote_candidate(from_info(info))
        except ValueError as exc:
            log.info("remote candidate %s:%s refused: %s", info.ip, info.port, exc)

    async def end_of_candidates(self) -> None:
        if not self._ended and self._gathered:
            self._ended = True
            await self.connection.add_remote_candidate(None)

    async def connect(self, timeout: float) -> tuple[str | None, str | None]:
        """Connectivity checks; the (local, remote) candidate types of the chosen pair."""
        await asyncio.wait_for(self.connection.connect(), timeout)
        pair = getattr(self.connection, "_nominated", {}).get(COMPONENT_RTP)
        if pair is None:
            return None, None
        return pair.local_candidate.type, pair.remote_candidate.type

    async def send(self, data: bytes) -> None:
        await self.connection.send(data)

    async def recv(self) -> bytes:
        return bytes(await self.connection.recv())

    async def close(self) -> None:
        await self.connection.close()
