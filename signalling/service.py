"""The signalling process: the Jingle core driven by XMPP, control commands and workers.

Each input is fed to the pure :class:`SessionManager`, then :meth:`flush`
drains what it wants sent (stanzas, via the slixmpp adapter), what happened
(events, published on the bus and turned into worker commands), and re-arms
the one timer — aioquic's adapter loop. ``flush`` runs where an input ends,
and only there: a bus message, an XMPP stanza or response, a timer, a control
command, a helper's background task (``spawn``); the session helpers
(call_sessions, file_sessions) never flush themselves.
"""

from __future__ import annotations

import asyncio
import logging
import os
import secrets
import time
import xml.etree.ElementTree as ET
from collections import Counter
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any

import slixmpp
from slixmpp.jid import InvalidJID

from bus import messages as m
from bus.config import AgentConfig
from bus.link import ProcessLink
from bus.net import host_addresses
from bus.tasks import TaskSet
from control import protocol as cp
from signalling.admission import Admission
from signalling.call_sessions import CALL_FEATURES, CallSessions
from signalling.contacts import OnlineResource, choose_resource
from signalling.errors import CommandError
from signalling.file_sessions import FILE_FEATURES, FileSessions
from signalling.jingle import file_transfer as ft
from signalling.jingle import ibb, ice_udp, jmi, rtp, s5b
from signalling.jingle import namespaces as ns
from signalling.jingle.errors import ProtocolError, StanzaError, UsageError, bad_request
from signalling.jingle.manager import SessionCreated, SessionEvent, SessionManager, bare
from signalling.jingle.session import (
    ENDING,
    InfoReceived,
    ModifyReceived,
    PeerAccepted,
    SendError,
    SendResult,
    Session,
    StateChanged,
    Timeouts,
    TransportInfoReceived,
)
from signalling.jingle.stanzas import Formats
from signalling.jingle.states import Reason, Role, SessionState
from signalling.proposals import Proposals
from signalling.records import SessionRecord
from signalling.xmpp.client import XmppClient

log = logging.getLogger(__name__)

FORMATS = Formats(
    descriptions={ns.RTP: rtp.parse_description, ns.FILE_TRANSFER: ft.parse_description},
    transports={ns.ICE_UDP: ice_udp.parse_transport, ns.S5B: s5b.parse_transport,
                ns.IBB: ibb.parse_transport},
    infos={ns.RTP_INFO: rtp.parse_info, ns.FILE_TRANSFER: ft.parse_info},
)
# What this agent can do, advertised with disco (XEP-0030) and caps (XEP-0115).
FEATURES = (ns.JINGLE, ns.RTP, ns.RTP_AUDIO, ns.ICE_UDP, ns.DTLS, ns.JMI, ns.FILE_TRANSFER,
            ns.S5B, ns.IBB, ibb.IBB_STANZAS, ns.RECEIPTS)


def features(config: AgentConfig) -> tuple[str, ...]:
    """FEATURES less the file transports switched off (``transfer.transports``), so a
    peer (Dino) does not offer one we would refuse."""
    off = set()
    if "s5b" not in config.transfer.transports:
        off.add(ns.S5B)
    if "ibb" not in config.transfer.transports:
        off |= {ns.IBB, ibb.IBB_STANZAS}
    return tuple(f for f in FEATURES if f not in off)
WORKER_TIMEOUT = 3.0
RESUME_GRACE = 60.0  # seconds sessions outlive a broken stream that may be resumed
KIND_WORKER = {m.SessionKind.CALL: m.Process.MEDIA, m.SessionKind.FILE: m.Process.TRANSFER}


class Signalling:
    def __init__(self, config: AgentConfig) -> None:
        self.config = config
        self.local_jid = f"{config.bare_jid}/{config.account.resource}"
        self.manager = SessionManager(
            local=self.local_jid, formats=FORMATS,
            timeouts=Timeouts(ring=config.jingle.ring_timeout, iq=config.jingle.iq_timeout),
            new_sid=lambda: secrets.token_hex(8),
        )
        self.info: dict[str, SessionRecord] = {}  # one record per session (records.py)
        self.records = self.info
        self.link: ProcessLink | None = None
        self.xmpp = XmppClient(config.account, features(config), self,
                               approve_all=config.contacts.approve == "all")
        self.admission = Admission()
        self._timer: asyncio.TimerHandle | None = None
        self._bg = TaskSet()
        self._waiting: dict[tuple[type[m.Message], str], asyncio.Future[m.Message]] = {}
        self._asked: dict[tuple[type[m.Message], str], str] = {}  # whom each waits on
        self.calls = CallSessions(self)
        self.files = FileSessions(self)
        self.proposals = Proposals(self)
        self._proxy: tuple[str, str, int] | None = None
        self._proxy_known = False
        self._grace: asyncio.TimerHandle | None = None
        self._last_failure: str | None = None

    # --- process lifecycle (bus.service.Service) -------------------------------------

    async def start(self, link: ProcessLink) -> None:
        self.link = link
        self.post(m.Process.SUPERVISOR, m.ConnectionStateEvent(
            time.time(), m.ConnectionState.CONNECTING, self.local_jid))
        self.xmpp.start()
        self._bg.spawn(self._watch_address())

    async def stop(self) -> None:
        self.proposals.close_all(Reason.GONE)
        for session in self.manager.live():
            self.end(session, Reason.GONE, "agent shutting down")
        self.flush()
        await asyncio.sleep(0.2)  # let the terminates reach the stream
        await self.xmpp.stop()

    async def handle(self, source: str, message: m.Message) -> None:
        """One bus message: dispatched by its type (:data:`BUS_HANDLERS`, then the
        per-session reports of :data:`SESSION_REPORTS`); what it produced is sent."""
        for kind in type(message).__mro__:
            handler = BUS_HANDLERS.get(kind)
            if handler is not None:
                handler(self, source, message)
                break
        else:
            log.debug("signalling ignores %s from %s", type(message).__name__, source)
        self.flush()

    def _on_command(self, _source: str, message: m.Command) -> None:
        self._bg.spawn(self._run_command(message))

    def _on_worker_state(self, _source: str, message: m.WorkerStateChanged) -> None:
        self._worker_changed(message)

    def _on_prepared(self, _source: str,
                     message: m.MediaPrepared | m.TransferPrepared) -> None:
        future = self._waiting.pop((type(message), message.sid), None)
        if future is not None and not future.done():
            future.set_result(message)

    def _on_local_candidates(self, _source: str, message: m.LocalCandidates) -> None:
        self.calls.send_candidates(message)

    def _on_ice_restarted(self, _source: str, message: m.IceRestarted) -> None:
        self.calls.restarted(message)

    def _on_session_report(self, source: str, message: m.Message) -> None:
        """What a worker says about one live session."""
        sid = getattr(message, "sid", "")
        if isinstance(message, m.WorkerFailed):
            # A command waiting on this session's worker (accept) gets the reason
            # now, not "unavailable" when its wait runs out.
            self._fail_waiting(sid, CommandError(
                cp.FAILED, message.detail or f"{source} worker: {message.reason}"))
        session = self.manager.get(sid)
        if session is not None:
            SESSION_REPORTS[type(message)](self, source, session, message)

    def _worker_failed(self, source: str, session: Session,
                       message: m.WorkerFailed) -> None:
        try:
            reason = Reason(message.reason)
        except ValueError:
            reason = Reason.FAILED_APPLICATION
        self.end(session, reason, message.detail or f"{source} worker: {message.reason}")

    def _media_flowing(self, _source: str, session: Session,
                       _message: m.MediaFlowing) -> None:
        session.media_flowing(time.monotonic())

    # --- stream listener (signalling.xmpp.client.StreamListener) ------------------------

    def on_connected(self, jid: str, encrypted: bool) -> None:
        self._proxy_known = False  # another server, perhaps another proxy
        self.spawn(self.calls.refresh_servers())
        self.local_jid = jid
        self.manager.local = jid
        self._last_failure = None
        log.info("connected as %s (%s)", jid, "TLS" if encrypted else "no TLS")
        self.post(m.Process.SUPERVISOR, m.ConnectionStateEvent(
            time.time(), m.ConnectionState.CONNECTED, jid, encrypted=encrypted))

    def on_login_failed(self, reason: str) -> None:
        """A login that cannot succeed as configured: one ERROR line naming the key to
        check (once per cause), and the reason for ``status.last_error``."""
        if reason != self._last_failure:
            log.error("%s", reason)
            self._last_failure = reason
        self.post(m.Process.SUPERVISOR, m.ConnectionStateEvent(
            time.time(), m.ConnectionState.DISCONNECTED, self.local_jid, reason, error=True))

    def on_disconnected(self, reason: str) -> None:
        self._cancel_grace()
        self.manager.connection_lost()
        self.flush()
        self.post(m.Process.SUPERVISOR, m.ConnectionStateEvent(
            time.time(), m.ConnectionState.DISCONNECTED, self.local_jid, reason))

    def on_interrupted(self, reason: str) -> None:
        """The stream broke but can be resumed (XEP-0198): sessions live on; calls keep
        their media (ICE restarts on its own) while the stream comes back, for at most
        RESUME_GRACE seconds."""
        log.info("stream interrupted (%s): resuming", reason)
        self._cancel_grace()
        self._grace = asyncio.get_running_loop().call_later(
            RESUME_GRACE, lambda: self.on_disconnected(f"not resumed within {RESUME_GRACE:.0f} s"))
        self.post(m.Process.SUPERVISOR, m.ConnectionStateEvent(
            time.time(), m.ConnectionState.DISCONNECTED, self.local_jid, reason))

    def on_resumed(self, jid: str) -> None:
        log.info("stream resumed as %s", jid)
        self._cancel_grace()
        self.post(m.Process.SUPERVISOR, m.ConnectionStateEvent(
            time.time(), m.ConnectionState.CONNECTED, jid))
        self.flush()

    def _cancel_grace(self) -> None:
        if self._grace is not None:
            self._grace.cancel()
            self._grace = None

    async def _watch_address(self) -> None:
        """A stream whose local address vanished (a network change) would only time
        out, minutes later: drop it at once so that it is resumed from the new one."""
        while True:
            await asyncio.sleep(1.0)
            address = self.xmpp.local_address()
            if address is None or address.startswith("127.") or address == "::1":
                continue
            if address not in host_addresses():
                log.info("our address %s is gone: reconnecting the stream", address)
                self.xmpp.drop_stream()

    def on_jingle_iq(self, element: ET.Element) -> None:
        now = time.monotonic()
        refusal = self._screen(element, now)
        if refusal is not None:
            self.send_result(element.get("id", ""), element.get("from", ""), refusal)
            return
        self.manager.receive_iq(element, now)
        self.flush()

    def _screen(self, iq: ET.Element, now: float) -> StanzaError | None:
        """Before the core sees a Jingle IQ: the sender's rate, and for a new session
        whether the user takes it from this peer (``policy.calls_from`` /
        ``files_from``) and has room for one more unanswered session."""
        peer = bare(iq.get("from", ""))
        if not self.admission.allow_iq(peer, now, self._is_contact(peer)):
            return StanzaError("wait", "resource-constraint", None, "too many requests")
        jingle = iq.find(f"{{{ns.JINGLE}}}jingle")
        if jingle is None or jingle.get("action") != "session-initiate":
            return None
        if self.proposals.get(jingle.get("sid", "")) is not None:
            return None  # the initiate of a call the user already took (XEP-0353)
        is_file = jingle.find(f".//{{{ns.FILE_TRANSFER}}}description") is not None
        policy = self.config.policy
        if not self._may_reach(peer, policy.files_from if is_file else policy.calls_from):
            log.info("%s from %s refused: not a contact", "file" if is_file else "call", peer)
            # As if the agent had no Jingle at all (RFC 6120 §8.3.3.19).
            return StanzaError("cancel", "service-unavailable")
        why = self.admission.why_not_ring(peer, self._unanswered(), _Contacts(self))
        if why is not None:
            log.warning("session from %s refused: %s", peer, why)
            return StanzaError("wait", "resource-constraint", None, why)
        return None

    def _is_contact(self, peer: str) -> bool:
        """A contact the user chose (or another device of this account)."""
        return peer == bare(self.local_jid) or self.xmpp.in_roster(peer)

    def _may_reach(self, peer: str, policy: str) -> bool:
        return self.config.policy.accepts_from(policy, self._is_contact(peer))

    def _unanswered(self) -> Counter[str]:
        """Incoming sessions and proposals that wait for the user, by bare JID."""
        waiting: Counter[str] = Counter()
        for session in self.manager.live():
            if session.role is Role.RESPONDER and session.state is (
                    SessionState.RECEIVEDINITIATE):
                waiting[bare(session.peer)] += 1
        for proposal in self.proposals.live.values():
            if proposal.role is Role.RESPONDER and proposal.state is jmi.JmiState.RINGING:
                waiting[bare(proposal.peer)] += 1
        return waiting

    def on_response(self, iq_id: str, error: StanzaError | None) -> None:
        self.manager.receive_response(iq_id, error, time.monotonic())
        self.flush()

    def on_ibb_iq(self, element: ET.Element) -> None:
        child = next(iter(element), None)
        sender, iq_id = element.get("from", ""), element.get("id", "")
        try:
            if child is None:
                raise bad_request("empty IQ")
            payload = ibb.parse(child)
        except ProtocolError as exc:
            self.send_result(iq_id, sender, exc.error)
            return
        self.files.ibb_stanza(sender, iq_id, payload)

    def on_message(self, element: ET.Element) -> None:
        self.proposals.on_message(element)

    def admit_proposal(self, peer: str, message: ET.Element) -> bool:
        """A new XEP-0353 propose from ``peer`` (full JID): may it ring? Refused
        unseen (as a client without XEP-0353 would) for a stranger when calls come
        from contacts only, or past the admission bounds; admitted, it gets its
        XEP-0184 receipt."""
        sender = bare(peer)
        if not self._may_reach(sender, self.config.policy.calls_from):
            log.info("call proposal from %s ignored: not a contact", sender)
            return False
        why = self.admission.why_not_ring(sender, self._unanswered(), _Contacts(self))
        if why is not None or not self.admission.allow_iq(sender, time.monotonic(),
                                                          self._is_contact(sender)):
            log.warning("call proposal from %s ignored: %s", sender, why or "too many")
            return False
        self._receipt(message)
        return True

    def _receipt(self, message: ET.Element) -> None:
        """XEP-0184 §5.1: a propose that asks for a receipt gets one from this device
        (Conversations shows its caller "ringing" only then)."""
        msg_id, sender = message.get("id"), message.get("from")
        if not msg_id or not sender or message.find(f"{{{ns.RECEIPTS}}}request") is None:
            return
        answer = ET.Element(f"{{{ns.CLIENT}}}message", {"to": sender, "id": secrets.token_hex(8)})
        ET.SubElement(answer, f"{{{ns.RECEIPTS}}}received", {"id": msg_id})
        self.xmpp.send_message_element(answer)

    # --- contacts (RFC 6121): the user's decision ----------------------------------------

    def on_contact_request(self, jid: str) -> None:
        self.post(m.Process.SUPERVISOR, m.ContactRequestEvent(time.time(), jid))

    def on_contact_state(self, jid: str, subscription: str) -> None:
        log.info("contact %s: subscription %s", jid, subscription)
        self.post(m.Process.SUPERVISOR, m.ContactStateEvent(time.time(), jid, subscription))

    def send_message(self, element: ET.Element) -> None:
        self.xmpp.send_message_element(element)

    def session(self, sid: str) -> Session | None:
        return self.manager.get(sid)

    def send_request(self, to: str, payload: ET.Element,
                     done: Callable[[StanzaError | None], None]) -> None:
        def finished(error: StanzaError | None) -> None:
            done(error)
            self.flush()

        self._send_queued()
        self.xmpp.send_request(to, payload, finished)

    def send_result(self, iq_id: str, to: str, error: StanzaError | None = None) -> None:
        self._send_queued()
        self.xmpp.send_stanza(SendResult(iq_id, to) if error is None
                              else SendError(iq_id, to, error))

    def on_unavailable(self, jid: str) -> None:
        self.manager.peer_unavailable(jid)
        self.flush()

    # --- the adapter loop ----------------------------------------------------------------

    def _send_queued(self) -> None:
        """Stanzas the helpers send directly (XEP-0047 opens, data, acks) leave after
        what the sessions already queued: on the wire in the order decided (a
        session-accept before the in-band open that follows it). Events wait for the
        input's own flush (no re-entry)."""
        for stanza in self.manager.stanzas_to_send():
            self.xmpp.send_stanza(stanza)

    def flush(self) -> None:
        while True:
            stanzas = self.manager.stanzas_to_send()
            event = self.manager.next_event()
            for stanza in stanzas:
                self.xmpp.send_stanza(stanza)
            if event is None and not stanzas:
                break
            if event is not None:
                self._on_event(event)
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        when = self.manager.get_timer()
        if when is not None:
            delay = max(0.0, when - time.monotonic())
            self._timer = asyncio.get_running_loop().call_later(delay, self._on_timer)

    def _on_timer(self) -> None:
        self._timer = None
        self.manager.handle_timer(time.monotonic())
        self.flush()

    def _on_event(self, event: SessionCreated | SessionEvent) -> None:
        if isinstance(event, SessionCreated):
            self._incoming(event)
            return
        inner = event.event
        session = self.manager.get(inner.sid)
        is_file = event.application == ns.FILE_TRANSFER
        if isinstance(inner, PeerAccepted):
            if is_file and session is not None:
                self.files.peer_accepted(session, inner.contents)
            elif session is not None:
                self.calls.start_media(session, inner.contents)
        elif isinstance(inner, TransportInfoReceived):
            if is_file and session is not None:
                self.files.transport_info(session, inner.contents)
            elif session is not None:
                self.calls.transport_info(session, inner.contents)
        elif isinstance(inner, ModifyReceived) and is_file:
            if session is not None:
                self.files.modify_received(session, inner.action, inner.contents)
        elif isinstance(inner, InfoReceived) and is_file:
            if session is not None:
                self.files.info(session, inner.info)
        elif isinstance(inner, InfoReceived) and isinstance(inner.info, rtp.RtpInfo):
            self.calls.peer_info(inner.sid, inner.info)
            self.post(m.Process.SUPERVISOR, m.SessionInfoEvent(
                time.time(), inner.sid, inner.info.kind.value, inner.info.name))
        elif isinstance(inner, StateChanged):
            kind = m.SessionKind.CALL if event.application == ns.RTP else m.SessionKind.FILE
            direction = (m.Direction.OUTGOING if event.role is Role.INITIATOR
                         else m.Direction.INCOMING)
            reason = inner.reason.condition.value if inner.reason else None
            offered = None
            if (session is not None and is_file and direction is m.Direction.INCOMING
                    and inner.state is SessionState.RECEIVEDINITIATE):
                offered = _file_summary(session)
            self.report_state(inner.sid, event.peer, kind, direction, inner.state.value, reason,
                              offered)

    def report_state(self, sid: str, peer: str, kind: m.SessionKind, direction: m.Direction,
                     state: str, reason: str | None = None,
                     file: m.FileSummary | None = None) -> None:
        """``session.state`` for the control socket, once per change: a proposed call
        (XEP-0353) reports its first states before its Jingle session exists."""
        info = self.info.get(sid)
        if info is None:
            if state == SessionState.DEINIT:
                return  # already reported over (a proposal retracted before its session)
            info = self.info[sid] = SessionRecord(sid, peer, kind, direction)
        info.peer = peer
        if info.state == state:
            return
        info.state = state
        placed = (_worker_of(info) if info.call is not None or info.file is not None
                  else None)
        self.post(m.Process.SUPERVISOR, m.SessionStateEvent(
            time.time(), sid, info.peer, info.kind, info.direction, state, reason, file,
            placed))
        ending = state == SessionState.DEINIT or state in ENDING
        if ending and not info.closed:
            # Hang-up stops media at once, before the terminate is acknowledged.
            info.closed = True
            self.post(_worker_of(info), m.CloseSession(sid, reason or "ended"))
        if state == SessionState.DEINIT:
            self.files.ended(sid, reason)
            self.proposals.session_ended(sid, reason)
            self.info.pop(sid, None)  # the record, and the call's or file's state with it

    def _incoming(self, created: SessionCreated) -> None:
        kind = (m.SessionKind.FILE if created.application == ns.FILE_TRANSFER
                else m.SessionKind.CALL)
        self.info.setdefault(created.sid, SessionRecord(created.sid, created.peer, kind,
                                                        m.Direction.INCOMING))
        if created.application == ns.FILE_TRANSFER:
            session = self.manager.get(created.sid)
            if session is not None:
                self.files.offered(session)
                policy = self.config.policy
                if policy.auto_accepts(policy.auto_accept_files,
                                       self.xmpp.in_roster(bare(created.peer))):
                    self.spawn(self._auto_accept_file(session))
            return
        if created.application != ns.RTP:
            return
        proposal = self.proposals.get(created.sid)
        accepted = (proposal is not None and proposal.role is Role.RESPONDER
                    and proposal.device == created.peer)
        if accepted:
            self.proposals.session_started(created.sid)  # the user said yes already
        self.spawn(self.calls.incoming(created.sid, created.peer, accepted=accepted))

    async def _auto_accept_file(self, session: Session) -> None:
        try:
            await self.files.accept(session, None)
        except CommandError as exc:
            log.warning("auto-accept of file %s failed: %s", session.sid, exc)

    # --- commands -------------------------------------------------------------------

    async def _run_command(self, command: m.Command) -> None:
        try:
            if isinstance(command, m.ListContacts | m.ChangeContact):
                reply: m.Message = await self._run_contacts(command)
            else:
                reply = m.CommandSucceeded(command.request_id, await self._execute(command))
        except CommandError as exc:
            reply = m.CommandFailed(command.request_id, exc.code, str(exc))
        except Exception as exc:
            log.exception("command %s failed", type(command).__name__)
            reply = m.CommandFailed(command.request_id, cp.INTERNAL_ERROR, str(exc))
        self.flush()  # what the command produced goes out before its answer
        self.post(m.Process.SUPERVISOR, reply)

    async def _run_contacts(self, command: m.ListContacts | m.ChangeContact) -> m.Message:
        if isinstance(command, m.ListContacts):
            return m.CommandSucceeded(command.request_id,
                                      contacts=tuple(self.xmpp.contacts()))
        jid = bare(_check_jid("jid", command.jid))
        if jid == bare(self.local_jid):
            raise CommandError(cp.BAD_REQUEST, "jid: that is this account")
        if not self.xmpp.is_connected():
            raise CommandError(cp.UNAVAILABLE, "not connected to the server")
        await self.xmpp.change_contact(command.action, jid)
        return m.CommandSucceeded(command.request_id)

    async def _execute(self, command: m.Command) -> str | None:
        if isinstance(command, m.Call | m.SendFile | m.RequestFile):
            _check_jid("to", command.to)
        if isinstance(command, m.Call):
            return await self._call(command.to)
        if isinstance(command, m.SendFile):
            return await self._send_file(command)
        if isinstance(command, m.RequestFile):
            return await self._request_file(command)
        session = self.manager.get(getattr(command, "sid", ""))
        proposal = self.proposals.get(getattr(command, "sid", ""))
        if session is None and proposal is not None:
            self._proposal_command(proposal, command)
            return None
        if session is None:
            raise CommandError(cp.UNKNOWN_SESSION, f"no session {getattr(command, 'sid', '')!r}")
        if isinstance(command, m.Accept):
            if session.role is not Role.RESPONDER or (
                session.state is not SessionState.RECEIVEDINITIATE
            ):
                raise CommandError(cp.NOT_ALLOWED, f"cannot accept a session in {session.state}")
            info = self.info.get(session.sid)
            if info is not None and info.kind is m.SessionKind.FILE:
                await self.files.accept(session, command.dir)
                return None
            await self.calls.accept(session.sid)
        elif isinstance(command, m.Reject):
            if session.role is not Role.RESPONDER or (
                session.state is not SessionState.RECEIVEDINITIATE
            ):
                raise CommandError(cp.NOT_ALLOWED, f"cannot reject a session in {session.state}")
            self._terminate(session, Reason(command.reason))
        elif isinstance(command, m.Hangup):
            reason = _hangup_reason(command)
            if reason is Reason.SUCCESS and session.state is SessionState.SENTINITIATE:
                reason = Reason.CANCEL  # hanging up before an answer cancels (XEP-0167 §6.6)
            if session.state is SessionState.INIT and proposal is not None:
                # Proceeded, session-initiate not out yet: retract (XEP-0353), drop it.
                self.proposals.hangup(proposal, reason)
                session.lost(Reason.CANCEL)
                return None
            self._terminate(session, reason)
        elif isinstance(command, m.Mute | m.Hold):
            info = self.info.get(session.sid)
            if info is None or info.kind is not m.SessionKind.CALL:
                raise CommandError(cp.NOT_ALLOWED, "only calls can be muted or held")
            if isinstance(command, m.Mute):
                self.calls.mute(session, command.muted)
            else:
                self.calls.hold(session, command.held)
        return None

    def _proposal_command(self, proposal: jmi.Proposal, command: m.Command) -> None:
        """accept / reject / hangup of a call still in its XEP-0353 phase."""
        if isinstance(command, m.Accept):
            if proposal.role is not Role.RESPONDER:
                raise CommandError(cp.NOT_ALLOWED, "only the callee accepts")
            self.proposals.accept(proposal)
        elif isinstance(command, m.Reject):
            if proposal.role is not Role.RESPONDER:
                raise CommandError(cp.NOT_ALLOWED, "only the callee rejects")
            self.proposals.reject(proposal, Reason(command.reason))
        elif isinstance(command, m.Hangup):
            self.proposals.hangup(proposal, _hangup_reason(command))
        else:
            raise CommandError(cp.NOT_ALLOWED, "the call is not connected yet")

    async def _resolve(self, to: str, features: tuple[str, ...], what: str,
                       online: list[OnlineResource] | None = None) -> str:
        """libjingle's MakeCallTo: a full JID must be online; a bare JID becomes the best
        online resource that supports ``features``. ``online``: the resources already
        looked up (disco) for this command. Never this agent itself; the errors say
        whether the peer is offline, lacks the feature, or is no contact at all."""
        if to == self.local_jid:
            raise CommandError(cp.BAD_REQUEST, "to: that is this agent itself")
        if online is None:
            online = await self.xmpp.online_resources(bare(to))
        online = [r for r in online if r.jid != self.local_jid]
        if "/" in to:
            if not any(r.jid == to for r in online):
                raise CommandError(cp.NOT_FOUND, f"{to} is not online")
            return to
        chosen = choose_resource(online, features)
        if chosen is not None:
            return chosen
        if bare(to) == bare(self.local_jid):
            raise CommandError(cp.NOT_FOUND, f"no other device of yours ({to}) with Jingle "
                               f"{what} is online")
        if online:
            raise CommandError(cp.NOT_FOUND, f"Could not find online friend {to} with "
                               f"Jingle {what} support (online, without it)")
        if self.xmpp.knows(bare(to)):
            raise CommandError(cp.NOT_FOUND, f"Could not find online friend {to} with "
                               f"Jingle {what} support (offline)")
        raise CommandError(cp.NOT_FOUND, f"{to} is not one of your contacts and not online "
                           "to you (add them: jingle add JID)")

    async def _call(self, to: str) -> str:
        """XEP-0353 when the callee's devices speak it (disco tells), else a plain
        XEP-0166 session-initiate to the best resource."""
        online = await self.xmpp.online_resources(bare(to))
        if self.config.jingle.message_initiation:
            target = self._proposal_target(to, online)
            if target is not None:
                return self.proposals.propose(*target)
        return await self._outgoing(to, m.SessionKind.CALL, self.calls.call, online)

    def _proposal_target(self, to: str, online: list[OnlineResource]) -> tuple[str, str] | None:
        """Whom to send <propose/>, and the device most likely to answer: the bare JID
        when some online device of it does JMI and voice (every device rings), a full
        JID when that device does; None when nobody does (the plain path resolves,
        or says not-found)."""
        capable = [r for r in online
                   if ns.JMI in r.features and set(CALL_FEATURES) <= r.features]
        if "/" in to:
            return (to, to) if any(r.jid == to for r in capable) else None
        likely = choose_resource(capable, CALL_FEATURES)
        return (to, likely) if likely else None

    def proceed_to(self, sid: str, device: str) -> None:
        """XEP-0353 §3.5: ``device`` said <proceed/>; the session-initiate goes there now."""
        session = self.manager.create_outgoing(device, ns.RTP, sid=sid)
        self.proposals.session_started(sid)

        async def initiate() -> None:
            try:
                await self.calls.call(session)
            except CommandError as exc:
                session.lost(Reason.FAILED_APPLICATION, str(exc))
            except UsageError:
                pass  # hung up while the media was being prepared

        self.spawn(initiate())

    def prepare_answer(self, sid: str) -> None:
        """Accepted in a proposal: ready the media worker before the initiate arrives."""
        async def prepare() -> None:
            try:
                await self.calls.prepare(sid, controlling=False)
            except CommandError as exc:
                log.warning("media for proposed call %s not prepared: %s", sid, exc)

        self.spawn(prepare())

    async def _send_file(self, command: m.SendFile) -> str:
        path = os.path.expanduser(command.path)
        if not os.path.isfile(path) or not os.access(path, os.R_OK):
            raise CommandError(cp.BAD_REQUEST, f"{command.path}: not a readable file")
        return await self._outgoing(command.to, m.SessionKind.FILE, lambda session: (
            self.files.offer(session, path, command.name, command.description)))

    async def _request_file(self, command: m.RequestFile) -> str:
        return await self._outgoing(command.to, m.SessionKind.FILE, lambda session: (
            self.files.request(session, command.name)))

    async def _outgoing(self, to: str, kind: m.SessionKind,
                        begin: Callable[[Session], Awaitable[None]],
                        online: list[OnlineResource] | None = None) -> str:
        """A session we initiate: find the peer, then ``begin`` it; if that fails (a
        worker down), the session ends at once with ``failed-application``."""
        if kind is m.SessionKind.CALL:
            peer = await self._resolve(to, CALL_FEATURES, "voice", online)
        else:
            peer = await self._resolve(to, FILE_FEATURES, "file transfer")
        application = ns.RTP if kind is m.SessionKind.CALL else ns.FILE_TRANSFER
        session = self.manager.create_outgoing(peer, application)
        self.info[session.sid] = SessionRecord(session.sid, peer, kind, m.Direction.OUTGOING)
        try:
            await begin(session)
        except CommandError as exc:
            session.lost(Reason.FAILED_APPLICATION, str(exc))
            raise
        return session.sid

    def _terminate(self, session: Session, reason: Reason, text: str | None = None) -> None:
        try:
            session.terminate(reason, time.monotonic(), text)
        except UsageError as exc:
            raise CommandError(cp.NOT_ALLOWED, str(exc)) from None

    def end(self, session: Session, reason: Reason, text: str) -> None:
        """End a session whatever its state: terminate if we still may, else drop it."""
        try:
            session.terminate(reason, time.monotonic(), text)
        except UsageError:
            session.lost(reason, text)

    # --- workers --------------------------------------------------------------------

    def _worker_changed(self, change: m.WorkerStateChanged) -> None:
        name = change.name or change.worker.value
        if change.worker is m.Process.MEDIA:
            self.calls.worker_changed(name, change.state)
        elif change.worker is m.Process.TRANSFER:
            self.files.worker_changed(name, change.state)
        if change.state is not m.WorkerState.EXITED:
            return
        # Only the sessions that worker held end (another media worker of the pool
        # keeps its calls), and only the requests addressed to it fail.
        for sid, info in list(self.info.items()):
            session = self.manager.get(sid)
            if session is not None and _worker_of(info) == name:
                self.end(session, Reason.FAILED_APPLICATION, f"{name} worker exited")
        for key, future in list(self._waiting.items()):
            if self._asked.get(key) != name:
                continue
            if not future.done():
                future.set_exception(CommandError(cp.UNAVAILABLE, f"{name} worker exited"))
            self._waiting.pop(key, None)
            self._asked.pop(key, None)

    def _fail_waiting(self, sid: str, error: CommandError) -> None:
        for key, future in list(self._waiting.items()):
            if key[1] == sid:
                self._waiting.pop(key, None)
                if not future.done():
                    future.set_exception(error)

    async def ask(self, worker: str, message: m.Message,
                   answer: type[m.Message], sid: str) -> m.Message:
        future: asyncio.Future[m.Message] = asyncio.get_running_loop().create_future()
        self._waiting[(answer, sid)] = future
        self._asked[(answer, sid)] = worker
        self.post(worker, message)
        try:
            return await asyncio.wait_for(future, WORKER_TIMEOUT)
        except TimeoutError:
            self._waiting.pop((answer, sid), None)
            raise CommandError(cp.UNAVAILABLE, f"the {worker} worker did not answer") from None
        finally:
            self._asked.pop((answer, sid), None)

    def spawn(self, coro: Coroutine[Any, Any, Any]) -> asyncio.Task[Any]:
        """A background task of the session helpers; what it produced is sent when
        it ends (each input's outputs are drained where the input ends)."""
        async def run() -> Any:
            try:
                return await coro
            finally:
                self.flush()

        return self._bg.spawn(run())

    def in_roster(self, bare_jid: str) -> bool:
        return self.xmpp.in_roster(bare_jid)

    async def external_services(self) -> ET.Element | None:
        return await self.xmpp.external_services()

    def call_later(self, delay: float, callback: Callable[[], None]) -> None:
        def run() -> None:
            callback()
            self.flush()

        asyncio.get_running_loop().call_later(delay, run)

    async def find_proxy(self) -> tuple[str, str, int] | None:
        """The server's XEP-0065 proxy, looked up once per connection."""
        if not self._proxy_known:
            self._proxy = await self.xmpp.find_proxy()
            self._proxy_known = True
        return self._proxy

    async def activate_proxy(self, proxy: str, sid: str, target: str) -> None:
        await self.xmpp.activate_proxy(proxy, sid, target)

    def post(self, process: str, message: m.Message) -> None:
        """Send on the bus, in order with everything else this process posts."""
        if self.link is not None:
            self.link.post(process, message)


class _Contacts:
    """``peer in contacts``, asked of the roster as it is now."""

    def __init__(self, service: Signalling) -> None:
        self._service = service

    def __contains__(self, peer: object) -> bool:
        return isinstance(peer, str) and self._service._is_contact(peer)


def _file_summary(session: Session) -> m.FileSummary | None:
    """The offered file as the control socket shows it (docs/control.md)."""
    content = session.remote_contents[0] if session.remote_contents else None
    if content is None or not isinstance(content.description, ft.FileDescription):
        return None
    file = content.description.file
    algo = next((h.algo for h in file.hashes), None)
    return m.FileSummary(file.name or "", file.size or 0, file.media_type, file.desc, algo)


def _check_jid(argument: str, value: str) -> str:
    """RFC 7622 validation (slixmpp's), as a bad request naming the argument."""
    try:
        jid = slixmpp.JID(value)
    except InvalidJID as exc:
        raise CommandError(cp.BAD_REQUEST, f"{argument}: {value[:100]!r} is not a valid JID "
                           f"({exc})") from None
    if not jid.user or not jid.domain:
        raise CommandError(cp.BAD_REQUEST,
                           f"{argument}: {value[:100]!r} is not a JID like user@example.com")
    return str(jid)


def _hangup_reason(command: m.Hangup) -> Reason:
    """The XEP-0166 reason a hang-up names; any other word is a bad request."""
    try:
        return Reason(command.reason)
    except ValueError:
        raise CommandError(cp.BAD_REQUEST, f"unknown reason {command.reason!r}") from None


def _worker_of(record: SessionRecord) -> str:
    """The worker (a pool member's bus identity) that holds a session's media or bytes."""
    if record.call is not None:
        return record.call.worker
    if record.file is not None:
        return record.file.worker
    return KIND_WORKER[record.kind].value


# Bus messages by type (the first class in a message's MRO found here handles it).
BUS_HANDLERS: dict[type, Callable[[Signalling, str, Any], None]] = {
    m.Command: Signalling._on_command,
    m.WorkerStateChanged: Signalling._on_worker_state,
    m.MediaPrepared: Signalling._on_prepared,
    m.TransferPrepared: Signalling._on_prepared,
    m.LocalCandidates: Signalling._on_local_candidates,
    m.IceRestarted: Signalling._on_ice_restarted,
}
# Workers' reports about one session, handled only while the session lives.
SESSION_REPORTS: dict[type, Callable[[Signalling, str, Session, Any], None]] = {
    m.WorkerFailed: Signalling._worker_failed,
    m.MediaFlowing: Signalling._media_flowing,
    m.IbbChunk: lambda s, _src, session, msg: s.files.ibb_chunk(session, msg),
    m.IbbAck: lambda s, _src, session, msg: s.files.ibb_written(session, msg),
    m.CandidateResult: lambda s, _src, session, msg: s.files.candidate_result(
        session, msg.cid, msg.own_proxy),
    m.TransferDone: lambda s, _src, session, msg: s.files.transfer_done(session, msg),
    m.FileCommitted: lambda s, _src, session, msg: s.files.committed(
        session, msg.path, msg.verified),
}
BUS_HANDLERS.update({kind: Signalling._on_session_report for kind in SESSION_REPORTS})
