"""All Jingle sessions of one account, like libjingle's SessionManager.

Routes each incoming Jingle IQ to its session, or answers it itself:
malformed -> bad-request; unknown sid, or a sid that belongs to another peer
(a third party must not touch a session) -> item-not-found + unknown-session
(XEP-0166 §8); a session-initiate reusing a live sid -> out-of-order; two
session-initiates crossing between the same two parties for the same kind of
application -> the one with the lower sid wins, the other is answered
conflict + tie-break (both sides compute the same answer).
Pure, like :mod:`signalling.jingle.session`.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from signalling.jingle import namespaces as ns
from signalling.jingle.errors import (
    ProtocolError,
    StanzaError,
    bad_request,
    out_of_order,
    tie_break,
    unknown_session,
)
from signalling.jingle.session import (
    Event,
    SendError,
    Session,
    Stanza,
    StateChanged,
    Timeouts,
)
from signalling.jingle.stanzas import (
    Formats,
    JingleIq,
    UnknownPayload,
    parse_iq,
)
from signalling.jingle.states import Action, Reason, Role, SessionState


@dataclass(frozen=True)
class SessionCreated:
    """A session-initiate from ``peer`` was acknowledged: the user may accept it."""

    sid: str
    peer: str
    application: str  # the description namespace of its first content


@dataclass(frozen=True)
class SessionEvent:
    """An event of one session, lifted to the manager's queue with who it is with."""

    event: Event
    peer: str
    role: Role
    application: str


ManagerEvent = SessionCreated | SessionEvent


def bare(jid: str) -> str:
    return jid.split("/", 1)[0]


class SessionManager:
    """Owns the sessions of the account whose full JID is ``local``."""

    def __init__(self, *, local: str, formats: Formats, timeouts: Timeouts,
                 new_sid: Callable[[], str]) -> None:
        self.local = local
        self.formats = formats
        self.timeouts = timeouts
        self._new_sid = new_sid
        self.sessions: dict[str, Session] = {}
        self.applications: dict[str, str] = {}
        self._events: deque[ManagerEvent] = deque()
        self._stanzas: list[Stanza] = []

    # --- outputs ------------------------------------------------------------------

    def next_event(self) -> ManagerEvent | None:
        self._collect()
        return self._events.popleft() if self._events else None

    def stanzas_to_send(self) -> list[Stanza]:
        self._collect()
        out, self._stanzas = self._stanzas, []
        return out

    def get_timer(self) -> float | None:
        timers = [t for s in self.sessions.values() if (t := s.get_timer()) is not None]
        return min(timers) if timers else None

    def handle_timer(self, now: float) -> None:
        for session in list(self.sessions.values()):
            timer = session.get_timer()
            if timer is not None and timer <= now:
                session.handle_timer(now)

    def live(self) -> Iterator[Session]:
        return iter(list(self.sessions.values()))

    # --- commands -------------------------------------------------------------------

    def create_outgoing(self, peer: str, application: str, sid: str | None = None) -> Session:
        """A new session that we initiate; the caller then calls ``initiate``.

        ``sid``: a given id, as XEP-0353 §3 reuses the proposal's for the session.
        """
        if sid is None or sid in self.sessions:
            sid = self._new_sid()
        while sid in self.sessions:
            sid = self._new_sid()
        session = Session(sid=sid, local=self.local, peer=peer, role=Role.INITIATOR,
                          timeouts=self.timeouts)
        self.sessions[sid] = session
        self.applications[sid] = application
        return session

    def get(self, sid: str) -> Session | None:
        return self.sessions.get(sid)

    # --- network ------------------------------------------------------------------

    def receive_iq(self, element: ET.Element, now: float) -> None:
        """An IQ-set with a <jingle/> child, as the stream delivered it."""
        sender = element.get("from", "")
        iq_id = element.get("id", "")
        try:
            iq = parse_iq(element, self.formats)
            self._route(iq, now)
        except ProtocolError as exc:
            self._stanzas.append(_error(iq_id, sender, exc.error))

    def receive_response(self, iq_id: str, error: StanzaError | None, now: float) -> None:
        sid = iq_id.rsplit("-", 1)[0]
        session = self.sessions.get(sid)
        if session is not None:
            session.receive_response(iq_id, error, now)

    def peer_unavailable(self, jid: str) -> None:
        """XEP-0166 §6.7: unavailable presence from the peer may end its sessions."""
        for session in self.live():
            if session.peer == jid or (jid == bare(jid) and bare(session.peer) == jid):
                session.lost(Reason.GONE, "peer went offline")

    def connection_lost(self) -> None:
        for session in self.live():
            session.lost(Reason.CONNECTIVITY_ERROR, "XMPP stream lost")

    # --- internals ----------------------------------------------------------------

    def _route(self, iq: JingleIq, now: float) -> None:
        j = iq.jingle
        session = self.sessions.get(j.sid)
        if j.action is Action.SESSION_INITIATE:
            if session is not None:
                if session.peer != iq.sender:
                    raise unknown_session("sid in use by another party")
                raise out_of_order("this session was initiated already")
            self._initiate(iq, now)
            return
        if session is None or session.peer != iq.sender:
            # A third party, or a session we never had or already forgot.
            raise unknown_session()
        session.receive_request(iq, now)

    def _initiate(self, iq: JingleIq, now: float) -> None:
        j = iq.jingle
        if not j.contents:
            raise bad_request("session-initiate without content")
        for content in j.contents:
            if content.description is None or content.transport is None:
                raise bad_request(f"content {content.name!r} lacks description or transport")
        if j.initiator and bare(j.initiator) != bare(iq.sender):
            # XEP-0166 §7.1 lets 'initiator' differ from 'from' only for gateways;
            # we take no sessions on behalf of someone else.
            raise bad_request("initiator does not match the sender")
        application = _namespace(j.contents[0].description)
        self._check_glare(iq, application)
        session = Session(sid=j.sid, local=self.local, peer=iq.sender, role=Role.RESPONDER,
                          timeouts=self.timeouts)
        self.sessions[j.sid] = session
        self.applications[j.sid] = application
        session.receive_request(iq, now)
        self._collect()
        known_apps = [c for c in j.contents if not isinstance(c.description, UnknownPayload)]
        known_transports = [c for c in known_apps if not isinstance(c.transport, UnknownPayload)]
        # XEP-0166 §6.3.2 (1.1): acknowledge, then terminate with the reason.
        if not known_apps:
            session.terminate(Reason.UNSUPPORTED_APPLICATIONS, now)
        elif not known_transports:
            session.terminate(Reason.UNSUPPORTED_TRANSPORTS, now)
        else:
            self._events.append(SessionCreated(j.sid, iq.sender, application))

    def _check_glare(self, iq: JingleIq, application: str) -> None:
        for other in self.sessions.values():
            crossing = (
                other.role is Role.INITIATOR
                and other.state is SessionState.SENTINITIATE
                and bare(other.peer) == bare(iq.sender)
                and self.applications.get(other.sid) == application
            )
            if crossing and other.sid < iq.jingle.sid:
                raise tie_break(f"our session {other.sid} to you crossed yours")

    def _collect(self) -> None:
        for sid, session in list(self.sessions.items()):
            self._stanzas.extend(session.stanzas_to_send())
            while (event := session.next_event()) is not None:
                app = self.applications.get(sid, "")
                self._events.append(SessionEvent(event, session.peer, session.role, app))
                if isinstance(event, StateChanged) and event.state is SessionState.DEINIT:
                    self.sessions.pop(sid, None)
                    self.applications.pop(sid, None)


def _namespace(payload: object) -> str:
    return str(getattr(payload, "namespace", "")) or ns.JINGLE


def _error(iq_id: str, to: str, error: StanzaError) -> Stanza:
    return SendError(iq_id, to, error)
