"""Call sessions in signalling: XEP-0167 audio over XEP-0176 ICE-UDP.

Signalling negotiates, the media worker moves the audio. Per call this holds
the ICE credentials the worker made for us; for the agent, the STUN/TURN
servers the XMPP server offers (XEP-0215), refreshed before their credentials
expire. No address is gathered, let alone sent, before the call is accepted.
"""

from __future__ import annotations

import asyncio
import logging
import time
import xml.etree.ElementTree as ET
from collections.abc import Coroutine
from dataclasses import dataclass
from typing import Any, Protocol

from bus import messages as m
from bus.config import AgentConfig
from control import protocol as cp
from signalling import external_services as extdisco
from signalling.errors import CommandError
from signalling.jingle import ice_udp, rtp
from signalling.jingle import namespaces as ns
from signalling.jingle.call_answer import Refusal, answer_call
from signalling.jingle.dtls import DtlsNegotiation, Encryption, SecurityFailure
from signalling.jingle.errors import UsageError
from signalling.jingle.manager import bare
from signalling.jingle.session import Session
from signalling.jingle.stanzas import Content
from signalling.jingle.states import Reason, Role, SessionState
from signalling.pools import WorkerPool
from signalling.records import SessionRecord, Slot

log = logging.getLogger(__name__)

CALL_FEATURES = (ns.JINGLE, ns.RTP, ns.RTP_AUDIO, ns.ICE_UDP)
SUPPORTED_CODECS = (rtp.OPUS, rtp.PCMU)
MAX_REMOTE_CANDIDATES = 64  # trickled candidates per call forwarded to the media worker


class Host(Protocol):
    """What the signalling service offers this helper."""

    config: AgentConfig
    records: dict[str, SessionRecord]  # one per session (signalling/records.py)

    def post(self, process: str, message: m.Message) -> None: ...
    def session(self, sid: str) -> Session | None: ...
    def end(self, session: Session, reason: Reason, text: str) -> None: ...
    def spawn(self, coro: Coroutine[Any, Any, Any]) -> asyncio.Task[Any]: ...
    def in_roster(self, bare_jid: str) -> bool: ...
    async def external_services(self) -> ET.Element | None: ...
    async def ask(self, worker: str, message: m.Message, answer: type[m.Message],
                  sid: str) -> m.Message: ...


def candidate_to_bus(c: ice_udp.IceCandidate) -> m.IceCandidateInfo:
    return m.IceCandidateInfo(c.component, c.foundation, c.generation, c.id, c.ip, c.port,
                              c.priority, c.protocol, c.type, c.rel_addr, c.rel_port)


def candidate_from_bus(c: m.IceCandidateInfo) -> ice_udp.IceCandidate:
    return ice_udp.IceCandidate(c.component, c.foundation, c.generation, c.id, c.ip, c.port,
                                c.priority, c.protocol, c.type, 0, c.rel_addr, c.rel_port)


@dataclass
class CallState:
    """What signalling holds about one call, in one record."""

    preparing: asyncio.Task[m.Message] | None = None  # the media worker's PrepareMedia
    ice: tuple[str, str] | None = None  # our ufrag/pwd (the current ICE generation)
    dtls: DtlsNegotiation | None = None  # XEP-0320 roles and the peer's pinned key
    remote_ice: tuple[str, str] | None = None  # the peer's ufrag/pwd
    remote_count: int = 0  # trickled candidates forwarded (capped)
    peer_muted: bool = False
    peer_held: bool = False
    worker: str = m.Process.MEDIA.value  # the media worker of the pool that holds it


class CallSessions:
    def __init__(self, host: Host) -> None:
        self.host = host
        self.calls: Slot[CallState] = Slot(host.records, "call")
        # The media worker pool (media.workers) and the members that are down.
        self.pool = WorkerPool(m.Process.MEDIA, host.config.media.workers)
        self.servers: extdisco.IceServers | None = None
        self._refresh: asyncio.TimerHandle | None = None

    # --- caller -------------------------------------------------------------------

    async def call(self, session: Session) -> None:
        """Prepare the media worker, then send session-initiate without any candidate."""
        ufrag, pwd = await self.prepare(session.sid, controlling=True)
        content = Content(Role.INITIATOR, "voice", rtp.audio_offer(),
                          ice_udp.IceUdpTransport(ufrag, pwd,
                                                  fingerprint=self._dtls(session.sid).offer()))
        session.initiate((content,), time.monotonic())

    # --- callee -------------------------------------------------------------------

    async def incoming(self, sid: str, peer: str, accepted: bool = False) -> None:
        """An incoming call: prepare media (no socket yet), say ringing, maybe auto-accept.

        ``accepted``: the user already said yes to this call's XEP-0353 proposal.
        """
        try:
            await self.prepare(sid, controlling=False)
        except CommandError as exc:
            session = self.host.session(sid)
            if session is not None:
                self.host.end(session, Reason.FAILED_APPLICATION, str(exc))
            return
        session = self.host.session(sid)
        if session is not None and not self._learn(session, session.remote_contents):
            return
        if session is not None and not self._dtls(sid).offer_acceptable():
            # Refused before ringing: nobody should pick up a call that cannot proceed.
            self.host.end(session, Reason.SECURITY_ERROR,
                          "unencrypted calls are refused (XEP-0320 DTLS-SRTP required)")
            return
        if accepted:
            try:
                await self.accept(sid)
            except CommandError as exc:
                log.warning("accepting proposed call %s failed: %s", sid, exc)
            return
        if session is not None and session.state is SessionState.RECEIVEDINITIATE:
            # XEP-0167 §5: tell the caller the call is being presented to the user.
            session.send_info(rtp.RtpInfo(rtp.RtpInfoKind.RINGING), time.monotonic())
            self._reveal_early(session)
        policy = self.host.config.policy
        if policy.auto_accepts(policy.auto_accept_calls, self.host.in_roster(bare(peer))):
            try:
                await self.accept(sid)
            except CommandError as exc:
                log.warning("auto-accept of %s failed: %s", sid, exc)

    def _reveal_early(self, session: Session) -> None:
        """Only where ``policy.reveal_ip_before_accept`` allows it for this caller:
        gather now and trickle candidates while ringing, as libjingle did."""
        if not self.host.config.policy.reveals_early(self.host.in_roster(bare(session.peer))):
            return
        offer = next((c.transport for c in session.remote_contents
                      if isinstance(c.transport, ice_udp.IceUdpTransport)), None)
        if offer is None or not offer.ufrag or not offer.pwd:
            return
        self.host.post(self.worker_of(session.sid), m.OpenMedia(
            session.sid, offer.ufrag, offer.pwd,
            tuple(candidate_to_bus(c) for c in offer.candidates)))

    async def accept(self, sid: str) -> None:
        """session-accept with our answer (XEP-0167 §5), then start the media."""
        call = self.calls.get(sid)
        if call is None or call.ice is None:
            await self.prepare(sid, controlling=False)
        session = self.host.session(sid)
        call = self.calls.get(sid)
        if session is None or call is None or call.ice is None or call.dtls is None:
            raise CommandError(cp.UNKNOWN_SESSION, f"no session {sid!r}")
        decided = answer_call(session.remote_contents, SUPPORTED_CODECS, call.ice, call.dtls)
        if isinstance(decided, Refusal):
            self.host.end(session, decided.reason, decided.text)
            raise CommandError(decided.reason.value, decided.text)
        try:
            session.accept((decided.content,), time.monotonic())
        except UsageError as exc:
            raise CommandError(cp.NOT_ALLOWED, str(exc)) from None
        offer = decided.offered
        self.start_media(session, (Content(offer.creator, offer.name,
                                           decided.content.description, offer.transport),))

    def mute(self, session: Session, muted: bool) -> None:
        creator = "initiator" if session.role is Role.INITIATOR else "responder"
        kind = rtp.RtpInfoKind.MUTE if muted else rtp.RtpInfoKind.UNMUTE
        try:
            # XEP-0167 §7.5: name the content muted, from our side.
            session.send_info(rtp.RtpInfo(kind, creator, "voice"), time.monotonic())
        except UsageError as exc:
            raise CommandError(cp.NOT_ALLOWED, str(exc)) from None
        self.host.post(self.worker_of(session.sid), m.SetMute(session.sid, muted))

    def hold(self, session: Session, held: bool) -> None:
        """XEP-0167 §7.3: session-info hold / unhold; no media is sent while held."""
        kind = rtp.RtpInfoKind.HOLD if held else rtp.RtpInfoKind.UNHOLD
        try:
            session.send_info(rtp.RtpInfo(kind), time.monotonic())
        except UsageError as exc:
            raise CommandError(cp.NOT_ALLOWED, str(exc)) from None
        self.host.post(self.worker_of(session.sid), m.SetHold(session.sid, held))

    def peer_info(self, sid: str, info: rtp.RtpInfo) -> None:
        """The peer's mute / hold / active, remembered per call and told to the media
        worker: its quiet is expected, not a failure."""
        call = self.calls.get(sid)
        if call is None:
            return
        muted, held = call.peer_muted, call.peer_held
        if info.kind is rtp.RtpInfoKind.MUTE:
            muted = True
        elif info.kind is rtp.RtpInfoKind.UNMUTE:
            muted = False
        elif info.kind is rtp.RtpInfoKind.HOLD:
            held = True
        elif info.kind in (rtp.RtpInfoKind.UNHOLD, rtp.RtpInfoKind.ACTIVE):
            held = False
        else:
            return
        call.peer_muted, call.peer_held = muted, held
        self.host.post(call.worker, m.PeerMediaState(sid, muted, held))

    # --- media ------------------------------------------------------------------------

    async def prepare(self, sid: str, *, controlling: bool) -> tuple[str, str]:
        """Ask the media worker once per session, however many callers wait for it
        (an incoming call is prepared on arrival, and accept may come before that ends)."""
        call = self.calls.setdefault(sid, CallState())
        task = call.preparing
        if task is None:
            session = self.host.session(sid)
            relay_only = self.host.config.policy.relay_only_for(session.peer if session else "")
            prepare = m.PrepareMedia(sid, controlling, self._servers_for_call(), relay_only)
            call.worker = self.place(sid)
            task = self.host.spawn(self.host.ask(call.worker, prepare, m.MediaPrepared, sid))
            call.preparing = task
        try:
            answer = await asyncio.shield(task)
        except CommandError:
            call.preparing = None
            raise
        assert isinstance(answer, m.MediaPrepared)
        call.ice = (answer.ufrag, answer.pwd)
        if call.dtls is None:
            call.dtls = DtlsNegotiation(Encryption(self.host.config.media.encryption),
                                        answer.fingerprint or None)
        return answer.ufrag, answer.pwd

    def place(self, sid: str) -> str:
        """The media worker call ``sid`` goes to: the live one holding fewest other
        calls."""
        return self.pool.place(call.worker for other, call in self.calls.items()
                               if other != sid)

    def worker_of(self, sid: str) -> str:
        call = self.calls.get(sid)
        return call.worker if call is not None else m.Process.MEDIA.value

    def worker_changed(self, name: str, state: m.WorkerState) -> None:
        self.pool.changed(name, state)

    def _dtls(self, sid: str) -> DtlsNegotiation:
        call = self.calls.get(sid)
        if call is None or call.dtls is None:
            raise CommandError(cp.UNKNOWN_SESSION, f"no call {sid!r}")
        return call.dtls

    def start_media(self, session: Session, contents: tuple[Content, ...]) -> None:
        """After accept: the agreed codec and the peer's ICE credentials to the worker."""
        call = next((c for c in contents if isinstance(c.description, rtp.RtpDescription)
                     and isinstance(c.transport, ice_udp.IceUdpTransport)), None)
        if call is None:
            self.host.end(session, Reason.FAILED_APPLICATION, "no RTP content over ICE-UDP")
            return
        assert isinstance(call.description, rtp.RtpDescription)
        assert isinstance(call.transport, ice_udp.IceUdpTransport)
        codec = rtp.chosen_codec(call.description, SUPPORTED_CODECS)
        if codec is None or not call.transport.ufrag or not call.transport.pwd:
            self.host.end(session, Reason.FAILED_APPLICATION,
                          "no usable codec or ICE credentials")
            return
        choice = m.CodecChoice(codec.id, codec.name, codec.clockrate or 8000, codec.channels,
                               ("useinbandfec", "1") in codec.parameters)
        record = self.calls.get(session.sid)
        negotiation = record.dtls if record is not None else None
        if record is None or negotiation is None or not self._learn(session, contents):
            return
        try:
            role = negotiation.role()
        except SecurityFailure as exc:
            self.host.end(session, Reason.SECURITY_ERROR, str(exc))
            return
        record.remote_ice = (call.transport.ufrag, call.transport.pwd)
        dtls = None
        if role is not None and role.remote is not None:
            dtls = m.DtlsParams(role.client, role.remote.hash, role.remote.value)
        self.host.post(record.worker, m.StartMedia(
            session.sid, call.transport.ufrag, call.transport.pwd, choice,
            tuple(candidate_to_bus(c) for c in call.transport.candidates), dtls))

    def send_candidates(self, message: m.LocalCandidates, allow_empty: bool = False) -> None:
        """XEP-0176 §6: our candidates go to the peer in a transport-info."""
        session = self.host.session(message.sid)
        call = self.calls.get(message.sid)
        creds = call.ice if call is not None else None
        if session is None or call is None or creds is None or not (
                message.candidates or allow_empty):
            return
        # Before our accept (candidates revealed early) we name the offered content.
        content = (session.local_contents or session.remote_contents)[0]
        negotiation = call.dtls
        transport = ice_udp.IceUdpTransport(
            creds[0], creds[1], tuple(candidate_from_bus(c) for c in message.candidates),
            negotiation.local() if negotiation else None)
        try:
            session.send_transport_info(
                (Content(content.creator, content.name, None, transport),), time.monotonic())
        except UsageError:
            return

    def _learn(self, session: Session, contents: tuple[Content, ...]) -> bool:
        """Pin the peer's DTLS fingerprint from whatever stanza carries it (a
        transport-info may bring it before session-accept); a changed one ends the
        call with security-error. Returns False when the call was ended."""
        call = self.calls.get(session.sid)
        negotiation = call.dtls if call is not None else None
        if negotiation is None:
            return True
        try:
            for content in contents:
                if isinstance(content.transport, ice_udp.IceUdpTransport):
                    negotiation.learn(content.transport.fingerprint)
        except SecurityFailure as exc:
            self.host.end(session, Reason.SECURITY_ERROR, str(exc))
            return False
        return True

    def transport_info(self, session: Session, contents: tuple[Content, ...]) -> None:
        if not self._learn(session, contents):
            return
        call = self.calls.get(session.sid)
        known = call.remote_ice if call is not None else None
        for content in contents:
            transport = content.transport
            if isinstance(transport, ice_udp.IceUdpTransport) and ice_udp.is_restart(
                    known, transport):
                # RFC 8445 §9: the peer restarted ICE (or answers our restart).
                assert transport.ufrag and transport.pwd
                if call is not None:
                    call.remote_ice = (transport.ufrag, transport.pwd)
                self.host.post(self.worker_of(session.sid), m.RestartIce(
                    session.sid, transport.ufrag, transport.pwd,
                    tuple(candidate_to_bus(c) for c in transport.candidates)))
                return
        self.forward_candidates(session.sid, contents)

    def restarted(self, message: m.IceRestarted) -> None:
        """Our media worker began a new ICE generation: its credentials (and the
        candidates gathered so far) go to the peer in a transport-info."""
        call = self.calls.get(message.sid)
        if call is None or call.ice is None:
            return
        call.ice = (message.ufrag, message.pwd)
        self.send_candidates(m.LocalCandidates(message.sid, message.candidates),
                             allow_empty=True)

    def forward_candidates(self, sid: str, contents: tuple[Content, ...]) -> None:
        candidates = tuple(
            candidate_to_bus(c) for content in contents
            if isinstance(content.transport, ice_udp.IceUdpTransport)
            for c in content.transport.candidates)
        # Trickled candidates add up: past the cap a peer only makes the media worker
        # send connectivity checks for it (an amplifier), so the rest are dropped.
        call = self.calls.get(sid)
        if call is None:
            return
        room = MAX_REMOTE_CANDIDATES - call.remote_count
        if len(candidates) > room:
            log.warning("session %s: peer sent over %d candidates, ignoring %d", sid,
                        MAX_REMOTE_CANDIDATES, len(candidates) - max(0, room))
            candidates = candidates[:max(0, room)]
        if candidates:
            call.remote_count += len(candidates)
            self.host.post(call.worker, m.RemoteCandidates(sid, candidates))

    # --- XEP-0215 -----------------------------------------------------------------------

    async def refresh_servers(self) -> None:
        """STUN/TURN from the server, fetched again before the TURN credentials expire
        so that a long-running agent keeps relaying."""
        if self._refresh is not None:
            self._refresh.cancel()
            self._refresh = None
        fetched_at = time.time()
        found = await self.host.external_services()
        self.servers = extdisco.choose(extdisco.parse(found)) if found is not None else None
        if self.servers is None:
            return
        log.info("ICE servers from the server: stun %s, turn %s (expires %s)",
                 self.servers.stun, self.servers.turn, self.servers.expires)
        delay = extdisco.refresh_delay(self.servers, fetched_at, time.time())
        if delay is not None:
            self._refresh = asyncio.get_running_loop().call_later(
                delay, lambda: self.host.spawn(self.refresh_servers()))

    def _servers_for_call(self) -> m.IceServerInfo | None:
        s = self.servers
        if s is None or (s.stun is None and s.turn is None):
            return None
        return m.IceServerInfo(
            s.stun[0] if s.stun else None, s.stun[1] if s.stun else 0,
            s.turn[0] if s.turn else None, s.turn[1] if s.turn else 0,
            s.turn_username, s.turn_password, s.turn_transport,
            s.turns[0] if s.turns else None, s.turns[1] if s.turns else 0)
