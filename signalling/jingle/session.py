"""One Jingle session (XEP-0166) as a pure state machine.

Theory of operation
-------------------
A :class:`Session` has three inputs, as aioquic's connection does: commands
from the user (``initiate``, ``accept``, ``terminate``, ...), requests and
responses from the peer (``receive_request``, ``receive_response``), and the
clock (``handle_timer(now)``; ``get_timer()`` says when to call it). It never
reads a clock and never does I/O: what it wants sent is drained with
``stanzas_to_send()``, what happened with ``next_event()``.

Every legal move is one row of :data:`TRANSITIONS`, keyed by the session
state and either ``(Direction, Action)`` — a Jingle action we send or receive —
or a :class:`Local` happening. A received action missing from the table is
answered ``out-of-order`` (XEP-0166 §8) and changes nothing; a command missing
from it raises :class:`UsageError` and sends nothing (like wsproto's ``send``).

The states are libjingle's. XEP-0166 §5.1's PENDING is SENTINITIATE /
RECEIVEDINITIATE; ACTIVE is SENTACCEPT / RECEIVEDACCEPT, INPROGRESS once media
flows, and SENTMODIFY / RECEIVEDMODIFY while a content-add or
transport-replace awaits its answer in an active session; ENDED is the
terminate/reject states, then DEINIT.
"""

from __future__ import annotations

import enum
from collections import deque
from dataclasses import dataclass

from signalling.jingle.errors import (
    ProtocolError,
    StanzaError,
    UsageError,
    out_of_order,
    tie_break,
    unknown_session,
    unsupported_info,
)
from signalling.jingle.stanzas import Content, Jingle, JingleIq, Payload, ReasonInfo, UnknownPayload
from signalling.jingle.states import Action, Direction, Reason, Role, SessionState


class Local(enum.StrEnum):
    """Happenings that are not Jingle actions."""

    MEDIA_FLOWING = "media-flowing"  # transport connected and first media received
    CLOSED = "closed"  # the terminate was acknowledged, or needs no acknowledgement
    LOST = "lost"  # the peer or our stream went away: nothing can be sent any more
    WITHDRAWN = "withdrawn"  # our modification was refused, or lost a glare: it is void


class _Stay(enum.Enum):
    STAY = "stay"  # keep the current state
    RESUME = "resume"  # back to the state before the modification


STAY = _Stay.STAY
RESUME = _Stay.RESUME
Target = SessionState | _Stay
Key = tuple[Direction, Action] | Local

S, R = Direction.SENT, Direction.RECEIVED
St = SessionState

# Actions that never change the state: informational (XEP-0166 §7.2.6, .8, .9,
# .13) and one-way content changes (content-remove and content-modify carry
# no answer, §7.2.4, §7.2.5).
_INFO: dict[Key, Target] = {
    (d, a): STAY
    for d in (S, R)
    for a in (Action.SESSION_INFO, Action.TRANSPORT_INFO, Action.DESCRIPTION_INFO,
              Action.SECURITY_INFO, Action.CONTENT_REMOVE, Action.CONTENT_MODIFY)
}
# Ending is possible from every live state (§6.7).
_END: dict[Key, Target] = {
    (S, Action.SESSION_TERMINATE): St.SENTTERMINATE,
    (R, Action.SESSION_TERMINATE): St.RECEIVEDTERMINATE,
    Local.LOST: St.DEINIT,
}
# While PENDING a transport may be replaced (XEP-0260 §2.4 falls back to IBB
# this way) but contents may not be added (§7.2.2).
_PENDING_MODIFY: dict[Key, Target] = {
    (d, a): STAY
    for d in (S, R)
    for a in (Action.TRANSPORT_REPLACE, Action.TRANSPORT_ACCEPT, Action.TRANSPORT_REJECT)
}
# In an ACTIVE session a content-add or transport-replace opens a negotiation.
_ACTIVE_MODIFY: dict[Key, Target] = {
    (S, Action.CONTENT_ADD): St.SENTMODIFY,
    (S, Action.TRANSPORT_REPLACE): St.SENTMODIFY,
    (R, Action.CONTENT_ADD): St.RECEIVEDMODIFY,
    (R, Action.TRANSPORT_REPLACE): St.RECEIVEDMODIFY,
}


def _answers(direction: Direction) -> dict[Key, Target]:
    return {
        (direction, a): RESUME
        for a in (Action.CONTENT_ACCEPT, Action.CONTENT_REJECT,
                  Action.TRANSPORT_ACCEPT, Action.TRANSPORT_REJECT)
    }


_ACTIVE: dict[Key, Target] = {**_INFO, **_END, **_ACTIVE_MODIFY}

TRANSITIONS: dict[SessionState, dict[Key, Target]] = {
    St.INIT: {
        (S, Action.SESSION_INITIATE): St.SENTINITIATE,
        (R, Action.SESSION_INITIATE): St.RECEIVEDINITIATE,
        Local.LOST: St.DEINIT,
    },
    St.SENTINITIATE: {
        (R, Action.SESSION_ACCEPT): St.RECEIVEDACCEPT,
        **_INFO, **_END, **_PENDING_MODIFY,
        # A terminate before accept is the callee's answer (decline, busy, ...).
        (R, Action.SESSION_TERMINATE): St.RECEIVEDREJECT,
    },
    St.RECEIVEDINITIATE: {
        (S, Action.SESSION_ACCEPT): St.SENTACCEPT,
        **_INFO, **_END, **_PENDING_MODIFY,
        (S, Action.SESSION_TERMINATE): St.SENTREJECT,
    },
    St.SENTACCEPT: {**_ACTIVE, Local.MEDIA_FLOWING: St.INPROGRESS},
    St.RECEIVEDACCEPT: {**_ACTIVE, Local.MEDIA_FLOWING: St.INPROGRESS},
    St.INPROGRESS: {**_ACTIVE, Local.MEDIA_FLOWING: STAY},
    St.SENTMODIFY: {**_INFO, **_END, **_answers(R), Local.MEDIA_FLOWING: STAY,
                    Local.WITHDRAWN: RESUME},
    St.RECEIVEDMODIFY: {**_INFO, **_END, **_answers(S), Local.MEDIA_FLOWING: STAY},
    St.SENTREJECT: {Local.CLOSED: St.DEINIT, Local.LOST: St.DEINIT},
    St.RECEIVEDREJECT: {Local.CLOSED: St.DEINIT, Local.LOST: St.DEINIT},
    St.SENTTERMINATE: {Local.CLOSED: St.DEINIT, Local.LOST: St.DEINIT},
    St.RECEIVEDTERMINATE: {Local.CLOSED: St.DEINIT, Local.LOST: St.DEINIT},
    St.SENTPRACCEPT: {},
    St.RECEIVEDPRACCEPT: {},
    St.SENTREDIRECT: {},
    St.DEINIT: {},
}

# ENDED (§5.1) before DEINIT: the terminate is sent or received, not yet done with.
ENDING = frozenset({St.SENTREJECT, St.RECEIVEDREJECT, St.SENTTERMINATE, St.RECEIVEDTERMINATE})
# The modifications whose collision XEP-0166 §8 resolves with tie-break.
_NEGOTIATIONS = frozenset({Action.CONTENT_ADD, Action.TRANSPORT_REPLACE})


# --- outputs -------------------------------------------------------------------


@dataclass(frozen=True)
class SendRequest:
    """An IQ-set to send; its response must be fed to ``receive_response``."""

    iq_id: str
    to: str
    jingle: Jingle


@dataclass(frozen=True)
class SendResult:
    """An empty IQ result acknowledging request ``iq_id``."""

    iq_id: str
    to: str


@dataclass(frozen=True)
class SendError:
    """An IQ error answering request ``iq_id``."""

    iq_id: str
    to: str
    error: StanzaError


Stanza = SendRequest | SendResult | SendError


@dataclass(frozen=True)
class StateChanged:
    """The session moved to ``state``; ``reason`` is set on the way out."""

    sid: str
    state: SessionState
    previous: SessionState
    reason: ReasonInfo | None = None


@dataclass(frozen=True)
class PeerAccepted:
    """The responder accepted; ``contents`` carry its answer (descriptions, transports)."""

    sid: str
    contents: tuple[Content, ...]


@dataclass(frozen=True)
class InfoReceived:
    """A session-info payload (e.g. XEP-0167 ringing, mute)."""

    sid: str
    info: Payload


@dataclass(frozen=True)
class TransportInfoReceived:
    """transport-info: candidates or other transport data for some contents."""

    sid: str
    contents: tuple[Content, ...]


@dataclass(frozen=True)
class ModifyReceived:
    """The peer asks for a negotiated change (content-add, transport-replace, ...)."""

    sid: str
    action: Action
    contents: tuple[Content, ...]


@dataclass(frozen=True)
class RequestFailed:
    """The peer answered one of our non-fatal requests with an error."""

    sid: str
    action: Action
    error: StanzaError


Event = (
    StateChanged | PeerAccepted | InfoReceived | TransportInfoReceived | ModifyReceived
    | RequestFailed
)


@dataclass(frozen=True)
class Timeouts:
    """Seconds. ``ring``: how long a session may stay PENDING (XEP-0166 leaves it to
    the client; libjingle used a session timeout too). ``iq``: how long to wait for
    the response to a request. ``terminate``: how long to wait for the ack of our
    session-terminate before forgetting the session anyway."""

    ring: float = 60.0
    iq: float = 30.0
    terminate: float = 5.0


@dataclass
class _Pending:
    action: Action
    deadline: float


class Session:
    """One Jingle session between ``local`` and ``peer`` (full JIDs)."""

    def __init__(self, *, sid: str, local: str, peer: str, role: Role,
                 timeouts: Timeouts = Timeouts()) -> None:
        self.sid = sid
        self.local = local
        self.peer = peer
        self.role = role
        self.timeouts = timeouts
        self.state = St.INIT
        self.end_reason: ReasonInfo | None = None
        self.local_contents: tuple[Content, ...] = ()
        self.remote_contents: tuple[Content, ...] = ()
        self._resume_state = St.INIT
        self._negotiating: Action | None = None
        self._pending: dict[str, _Pending] = {}
        self._ring_deadline: float | None = None
        self._close_deadline: float | None = None
        self._next_iq = 0
        self._events: deque[Event] = deque()
        self._stanzas: list[Stanza] = []

    @property
    def initiator(self) -> str:
        return self.local if self.role is Role.INITIATOR else self.peer

    @property
    def responder(self) -> str:
        return self.peer if self.role is Role.INITIATOR else self.local

    @property
    def ended(self) -> bool:
        return self.state is St.DEINIT

    # --- outputs --------------------------------------------------------------

    def next_event(self) -> Event | None:
        return self._events.popleft() if self._events else None

    def stanzas_to_send(self) -> list[Stanza]:
        out, self._stanzas = self._stanzas, []
        return out

    def get_timer(self) -> float | None:
        deadlines = [p.deadline for p in self._pending.values()]
        if self._ring_deadline is not None:
            deadlines.append(self._ring_deadline)
        if self._close_deadline is not None:
            deadlines.append(self._close_deadline)
        return min(deadlines) if deadlines else None

    # --- commands ---------------------------------------------------------------

    def initiate(self, contents: tuple[Content, ...], now: float) -> None:
        """Send session-initiate (XEP-0166 §6.2)."""
        if self.role is not Role.INITIATOR or not contents:
            raise UsageError("only the initiator initiates, with at least one content")
        self._send(Action.SESSION_INITIATE, now, contents=contents, initiator=self.initiator)
        self.local_contents = contents
        self._ring_deadline = now + self.timeouts.ring

    def accept(self, contents: tuple[Content, ...], now: float) -> None:
        """Send session-accept (§6.5) with our answer to the offer."""
        if not contents:
            raise UsageError("session-accept needs at least one content")
        self._send(Action.SESSION_ACCEPT, now, contents=contents,
                   initiator=self.initiator, responder=self.responder)
        self.local_contents = contents
        self._ring_deadline = None

    def terminate(self, reason: Reason, now: float, text: str | None = None) -> None:
        """Send session-terminate (§6.7); before accept this is the reject/cancel."""
        info = ReasonInfo(reason, text)
        self._send(Action.SESSION_TERMINATE, now, reason=info)
        self._ring_deadline = None
        self._close_deadline = now + self.timeouts.terminate

    def send_info(self, info: Payload | None, now: float) -> None:
        """session-info (§7.2.11); ``None`` sends the empty ping."""
        self._send(Action.SESSION_INFO, now, info=info)

    def send_transport_info(self, contents: tuple[Content, ...], now: float) -> None:
        self._send(Action.TRANSPORT_INFO, now, contents=contents)

    def modify(self, action: Action, contents: tuple[Content, ...], now: float) -> None:
        """content-add/-accept/-reject/-remove/-modify, transport-replace/-accept/-reject."""
        if action in (Action.SESSION_INITIATE, Action.SESSION_ACCEPT, Action.SESSION_TERMINATE,
                      Action.SESSION_INFO, Action.TRANSPORT_INFO):
            raise UsageError(f"{action} has its own command")
        self._send(action, now, contents=contents)

    def media_flowing(self, now: float) -> bool:
        """The transport is connected and the first media arrived: INPROGRESS.

        Returns False (and changes nothing) before the session is accepted.
        """
        if Local.MEDIA_FLOWING not in TRANSITIONS[self.state]:
            return False
        if self.state in (St.SENTMODIFY, St.RECEIVEDMODIFY):
            # Media started while a modification is open: report INPROGRESS
            # once the negotiation ends (the table's RESUME).
            if self._resume_state in (St.SENTACCEPT, St.RECEIVEDACCEPT):
                self._resume_state = St.INPROGRESS
            return True
        self._apply(Local.MEDIA_FLOWING, None)
        return True

    def lost(self, reason: Reason, text: str | None = None) -> None:
        """The peer or our stream is gone; end without sending anything."""
        if self.state is not St.DEINIT:
            self._apply(Local.LOST, ReasonInfo(reason, text))

    # --- network ----------------------------------------------------------------

    def receive_request(self, iq: JingleIq, now: float) -> None:
        """A Jingle IQ-set from the network, already routed to this session."""
        try:
            self._receive(iq, now)
        except ProtocolError as exc:
            self._stanzas.append(SendError(iq.id, iq.sender, exc.error))

    def receive_response(self, iq_id: str, error: StanzaError | None, now: float) -> bool:
        """The result (``error is None``) or error answering our request ``iq_id``.

        Returns False when the id is not one of this session's pending requests.
        """
        pending = self._pending.pop(iq_id, None)
        if pending is None:
            return False
        if error is None:
            if pending.action is Action.SESSION_TERMINATE:
                self._apply(Local.CLOSED, self.end_reason)
            return True
        self._request_failed(pending.action, error, now)
        return True

    def handle_timer(self, now: float) -> None:
        for iq_id, pending in list(self._pending.items()):
            if pending.deadline <= now:
                self.receive_response(
                    iq_id, StanzaError("wait", "remote-server-timeout", None, "no response"), now
                )
        if self._ring_deadline is not None and self._ring_deadline <= now:
            self._ring_deadline = None
            if self.state in (St.SENTINITIATE, St.RECEIVEDINITIATE):
                self.terminate(Reason.TIMEOUT, now, "not answered in time")
        if self._close_deadline is not None and self._close_deadline <= now:
            self._close_deadline = None
            if self.state in ENDING:
                self._apply(Local.CLOSED, self.end_reason)

    # --- internals ----------------------------------------------------------------

    def _receive(self, iq: JingleIq, now: float) -> None:
        j = iq.jingle
        if iq.sender != self.peer or j.sid != self.sid:
            raise unknown_session("not a party to this session")
        if self.state in ENDING or self.state is St.DEINIT:
            # §6.7: after sending session-terminate the session is over for us.
            raise unknown_session("session already ended")
        key: Key = (R, j.action)
        if j.action in _NEGOTIATIONS and self._negotiating in _NEGOTIATIONS:
            self._resolve_glare(iq, j)
        target = TRANSITIONS[self.state].get(key)
        if target is None:
            raise out_of_order(f"{j.action} not allowed in {self.state}")
        if j.action is Action.SESSION_INFO and j.info is not None and isinstance(
            j.info, UnknownPayload
        ):
            raise unsupported_info(f"no support for <{j.info.namespace}>")
        self._stanzas.append(SendResult(iq.id, iq.sender))
        if j.action is Action.SESSION_INITIATE:
            self.remote_contents = j.contents
            self._ring_deadline = now + self.timeouts.ring
        elif j.action is Action.SESSION_ACCEPT:
            self.remote_contents = j.contents
            self._ring_deadline = None
            self._events.append(PeerAccepted(self.sid, j.contents))
        elif j.action is Action.SESSION_INFO and j.info is not None:
            self._events.append(InfoReceived(self.sid, j.info))
        elif j.action is Action.TRANSPORT_INFO:
            self._events.append(TransportInfoReceived(self.sid, j.contents))
        elif j.action not in (Action.SESSION_TERMINATE, Action.SESSION_INFO):
            self._events.append(ModifyReceived(self.sid, j.action, j.contents))
        self._negotiation_step(key)
        reason = None
        if j.action is Action.SESSION_TERMINATE:
            reason = j.reason or ReasonInfo(Reason.SUCCESS)
        self._apply(key, reason)
        if self.state in (St.RECEIVEDTERMINATE, St.RECEIVEDREJECT):
            self._apply(Local.CLOSED, self.end_reason)

    def _resolve_glare(self, iq: JingleIq, j: Jingle) -> None:
        """Both sides opened a negotiation at once: the initiator's wins (XEP-0166 §6.6)."""
        if self.role is Role.INITIATOR:
            raise tie_break(f"{j.action} crossed our own {self._negotiating}")
        # We are the responder: ours loses (the peer answers it with tie-break);
        # drop it and take the initiator's request as if ours never happened.
        self._negotiating = None
        if self.state is St.SENTMODIFY:
            self._apply(Local.WITHDRAWN, None)

    def _negotiation_step(self, key: Key) -> None:
        if not isinstance(key, tuple):
            return
        action = key[1]
        if action in _NEGOTIATIONS:
            self._negotiating = action
        elif action in (Action.CONTENT_ACCEPT, Action.CONTENT_REJECT,
                        Action.TRANSPORT_ACCEPT, Action.TRANSPORT_REJECT):
            self._negotiating = None

    def _send(self, action: Action, now: float, *, contents: tuple[Content, ...] = (),
              initiator: str | None = None, responder: str | None = None,
              reason: ReasonInfo | None = None, info: Payload | None = None) -> None:
        key: Key = (S, action)
        if key not in TRANSITIONS[self.state]:
            raise UsageError(f"cannot send {action} in state {self.state}")
        self._next_iq += 1
        side = "i" if self.role is Role.INITIATOR else "r"
        iq_id = f"{self.sid}-{side}{self._next_iq}"
        jingle = Jingle(action, self.sid, initiator, responder, contents, reason, info)
        self._stanzas.append(SendRequest(iq_id, self.peer, jingle))
        self._pending[iq_id] = _Pending(action, now + self.timeouts.iq)
        self._negotiation_step(key)
        self._apply(key, reason)

    def _apply(self, key: Key, reason: ReasonInfo | None) -> None:
        target = TRANSITIONS[self.state].get(key)
        if target is None:
            raise UsageError(f"{key} not allowed in state {self.state}")
        if target is STAY:
            return
        if target is RESUME:
            new_state = self._resume_state
        else:
            assert isinstance(target, SessionState)
            new_state = target
        if new_state in (St.SENTMODIFY, St.RECEIVEDMODIFY):
            self._resume_state = self.state
        if reason is not None and self.end_reason is None:
            self.end_reason = reason
        previous, self.state = self.state, new_state
        if new_state is St.DEINIT:
            self._pending.clear()
            self._ring_deadline = self._close_deadline = None
        event_reason = self.end_reason if new_state in ENDING or new_state is St.DEINIT else None
        self._events.append(StateChanged(self.sid, new_state, previous, event_reason))

    def _request_failed(self, action: Action, error: StanzaError, now: float) -> None:
        """The peer refused one of our requests (or never answered)."""
        if action is Action.SESSION_TERMINATE:
            self._apply(Local.CLOSED, self.end_reason)
            return
        fatal = action in (Action.SESSION_INITIATE, Action.SESSION_ACCEPT) or (
            error.jingle_condition == "unknown-session"
        )
        if not fatal:
            if action in _NEGOTIATIONS and error.jingle_condition == "tie-break":
                # We lost a glare as responder; the initiator's request stands.
                self._events.append(RequestFailed(self.sid, action, error))
                return
            if action in _NEGOTIATIONS and self.state is St.SENTMODIFY:
                self._negotiating = None
                self._apply(Local.WITHDRAWN, None)  # back, through the table, with an event
            self._events.append(RequestFailed(self.sid, action, error))
            return
        if self.state is St.DEINIT or self.state in ENDING:
            return
        self._events.append(RequestFailed(self.sid, action, error))
        self.lost(reason_for_error(error), error.text or error.condition)


def reason_for_error(error: StanzaError) -> Reason:
    """The session-ending reason that best describes an IQ error on a fatal request."""
    if error.jingle_condition == "tie-break":
        return Reason.ALTERNATIVE_SESSION
    if error.jingle_condition == "unsupported-transports":
        return Reason.UNSUPPORTED_TRANSPORTS
    if error.jingle_condition == "unsupported-content" or error.condition in (
        "feature-not-implemented", "service-unavailable"
    ):
        return Reason.UNSUPPORTED_APPLICATIONS
    if error.condition == "remote-server-timeout":
        return Reason.TIMEOUT
    if error.condition in ("item-not-found", "recipient-unavailable", "remote-server-not-found"):
        return Reason.CONNECTIVITY_ERROR
    return Reason.GENERAL_ERROR
