"""XEP-0353 Jingle Message Initiation: a call proposed in messages before any IQ.

Why: a <propose/> to the callee's bare JID rings every device at once, and the
Jingle session-initiate (with its transport) goes only to the device that
said <proceed/>, so no address reaches anyone before someone accepts.

Two generations are deployed and both are spoken here:
- the older action set (XEP-0353 0.2/0.3, Conversations and Dino for years):
  propose, retract, accept, proceed, reject; a device that answers tells its
  siblings with <accept/> or <reject/> to its own bare JID;
- the current one (0.6-0.8): every message is type='chat' with a <store/> hint,
  responses go to the initiator's full JID (Message Carbons, XEP-0280, copy
  them to the responder's other devices), plus <ringing/> and, after the
  session, <finish/>.
We send the union (current shape, plus <accept/> to our own bare JID), and
take either shape in. ``urn:xmpp:jingle-message:1`` (0.4/0.5) is read too.

:class:`Proposal` is one call's proposal as a pure state machine in the style
of :class:`signalling.jingle.session.Session`: commands, received messages and
the clock in; messages to send and events out; every move one row of
:data:`TRANSITIONS`.
"""

from __future__ import annotations

import enum
import xml.etree.ElementTree as ET
from collections import deque
from dataclasses import dataclass

from signalling.jingle import namespaces as ns
from signalling.jingle.errors import UsageError
from signalling.jingle.states import Reason, Role, SessionState


class JmiAction(enum.StrEnum):
    PROPOSE = "propose"
    RINGING = "ringing"
    PROCEED = "proceed"
    ACCEPT = "accept"  # older generation: "answered", to one's own bare JID
    REJECT = "reject"
    RETRACT = "retract"
    FINISH = "finish"


class Origin(enum.Enum):
    """Who a message is from, as far as one proposal is concerned."""

    US = "us"  # we send it
    PEER = "peer"  # the other party (any of its devices)
    SIBLING = "sibling"  # another device of our own account (or a carbon of what it sent)


class JmiState(enum.StrEnum):
    INIT = "init"
    PROPOSED = "proposed"  # initiator: waiting for an answer
    RINGING = "ringing"  # responder: presented to the user
    PROCEEDING = "proceeding"  # accepted: the Jingle session with this id follows
    REJECTED = "rejected"
    RETRACTED = "retracted"
    ELSEWHERE = "elsewhere"  # another device of ours answered (or rejected)
    EXPIRED = "expired"  # nobody answered in time, or no session-initiate came
    FINISHED = "finished"  # the Jingle session that followed is over


TERMINAL = frozenset({JmiState.REJECTED, JmiState.RETRACTED, JmiState.ELSEWHERE,
                      JmiState.EXPIRED, JmiState.FINISHED})
STAY = None

Key = tuple[Origin, JmiAction]
INI, RES = Role.INITIATOR, Role.RESPONDER
US, PEER, SIB = Origin.US, Origin.PEER, Origin.SIBLING

# (our role, state) -> (origin, action) -> next state (None: stay). A received
# message missing from its row is ignored (messages, unlike IQs, get no error);
# a command missing from it raises UsageError.
TRANSITIONS: dict[tuple[Role, JmiState], dict[Key, JmiState | None]] = {
    (INI, JmiState.INIT): {(US, JmiAction.PROPOSE): JmiState.PROPOSED},
    (INI, JmiState.PROPOSED): {
        (PEER, JmiAction.RINGING): STAY,
        (PEER, JmiAction.PROCEED): JmiState.PROCEEDING,
        (PEER, JmiAction.ACCEPT): STAY,  # the callee's devices talking among themselves
        (PEER, JmiAction.REJECT): JmiState.REJECTED,
        (US, JmiAction.RETRACT): JmiState.RETRACTED,
        (SIB, JmiAction.RETRACT): JmiState.RETRACTED,
    },
    (INI, JmiState.PROCEEDING): {
        (PEER, JmiAction.RINGING): STAY,
        (PEER, JmiAction.PROCEED): STAY,  # a second device too late: its session never comes
        (PEER, JmiAction.ACCEPT): STAY,
        (US, JmiAction.RETRACT): JmiState.RETRACTED,
        (US, JmiAction.FINISH): JmiState.FINISHED,
        (PEER, JmiAction.FINISH): JmiState.FINISHED,
    },
    (RES, JmiState.INIT): {(PEER, JmiAction.PROPOSE): JmiState.RINGING},
    (RES, JmiState.RINGING): {
        (US, JmiAction.RINGING): STAY,
        (US, JmiAction.PROCEED): JmiState.PROCEEDING,
        (US, JmiAction.REJECT): JmiState.REJECTED,
        (PEER, JmiAction.PROPOSE): STAY,  # the same proposal again (carbon, MAM)
        (PEER, JmiAction.RETRACT): JmiState.RETRACTED,
        (SIB, JmiAction.PROCEED): JmiState.ELSEWHERE,
        (SIB, JmiAction.ACCEPT): JmiState.ELSEWHERE,
        (SIB, JmiAction.REJECT): JmiState.ELSEWHERE,
    },
    (RES, JmiState.PROCEEDING): {
        (PEER, JmiAction.PROPOSE): STAY,
        (PEER, JmiAction.RETRACT): JmiState.RETRACTED,  # gave up before initiating
        (SIB, JmiAction.ACCEPT): STAY,  # our own <accept/> reflected to our bare JID
        (US, JmiAction.FINISH): JmiState.FINISHED,
        (PEER, JmiAction.FINISH): JmiState.FINISHED,
    },
}


@dataclass(frozen=True)
class JmiMessage:
    """One XEP-0353 element in a message, with the addresses that matter."""

    action: JmiAction
    id: str
    sender: str = ""  # full JID (received) or "" (to send)
    to: str = ""
    media: tuple[str, ...] = ()  # propose: the <description media=''/> list
    reason: Reason | None = None
    text: str | None = None
    carbon: bool = False  # received as a sent carbon (XEP-0280 §6): one of ours sent it


def bare(jid: str) -> str:
    return jid.split("/", 1)[0]


def build_message(msg: JmiMessage, message_id: str) -> ET.Element:
    """The <message type='chat'> of XEP-0353 §3 (current generation): the element,
    a <store/> hint (XEP-0334) so archives and offline devices learn of the call."""
    el = ET.Element(f"{{{ns.CLIENT}}}message", {"to": msg.to, "type": "chat",
                                               "id": message_id})
    child = ET.SubElement(el, f"{{{ns.JMI}}}{msg.action.value}", {"id": msg.id})
    for media in msg.media:
        ET.SubElement(child, f"{{{ns.RTP}}}description", {"media": media})
    if msg.reason is not None:
        reason = ET.SubElement(child, f"{{{ns.JINGLE}}}reason")
        ET.SubElement(reason, f"{{{ns.JINGLE}}}{msg.reason.value}")
        if msg.text:
            ET.SubElement(reason, f"{{{ns.JINGLE}}}text").text = msg.text
    ET.SubElement(el, f"{{{ns.HINTS}}}store")
    return el


def parse_message(el: ET.Element, own_bare: str) -> JmiMessage | None:
    """The JMI element of a received message, unwrapping a sent carbon; None when the
    message carries none (or a carbon that does not come from our own account)."""
    carbon = False
    if el.find(f"{{{ns.CARBONS}}}received") is not None:
        # A copy of what a peer sent another device of ours: that device's business
        # (a propose to its full JID must ring there alone).
        return None
    sent = el.find(f"{{{ns.CARBONS}}}sent")
    if sent is not None:
        # XEP-0280 §11: only our own account may hand us carbons.
        if bare(el.get("from", own_bare)) != own_bare:
            return None
        inner = sent.find(f"{{{ns.FORWARD}}}forwarded/{{{ns.CLIENT}}}message")
        if inner is None:
            return None
        el, carbon = inner, True
    for child in el:
        namespace, _, name = child.tag[1:].partition("}")
        if namespace not in (ns.JMI, ns.JMI_1):
            continue
        try:
            action = JmiAction(name)
        except ValueError:
            return None
        proposal_id = child.get("id")
        if not proposal_id:
            return None
        media = tuple(d.get("media", "") for d in child
                      if d.tag == f"{{{ns.RTP}}}description")
        reason, text = None, None
        reason_el = child.find(f"{{{ns.JINGLE}}}reason")
        if reason_el is not None:
            for r in reason_el:
                local = r.tag.rpartition("}")[2]
                if local == "text":
                    text = r.text
                elif reason is None:
                    try:
                        reason = Reason(local)
                    except ValueError:
                        reason = Reason.GENERAL_ERROR
        return JmiMessage(action, proposal_id, el.get("from", ""), el.get("to", ""), media,
                          reason, text, carbon)
    return None


# --- the proposal ------------------------------------------------------------------


@dataclass(frozen=True)
class StateChanged:
    id: str
    state: JmiState
    previous: JmiState
    reason: str | None = None


@dataclass(frozen=True)
class Ringing:
    """The callee's device is ringing (current generation only)."""

    id: str
    device: str


@dataclass(frozen=True)
class Proceed:
    """Initiator: ``device`` accepted; send it session-initiate with this id now."""

    id: str
    device: str


Event = StateChanged | Ringing | Proceed


class Proposal:
    """One proposed call, from either side. ``local``: our full JID; ``peer``: the
    callee's bare (or full) JID we proposed to, or the full JID that proposed."""

    def __init__(self, *, id: str, local: str, peer: str, role: Role,
                 ring_timeout: float = 60.0, initiate_timeout: float = 30.0) -> None:
        self.id = id
        self.local = local
        self.peer = peer
        self.role = role
        self.state = JmiState.INIT
        self.device: str | None = peer if role is Role.RESPONDER else None
        self.reason: str | None = None
        self.ring_timeout = ring_timeout
        self.initiate_timeout = initiate_timeout
        self._deadline: float | None = None
        self._out: list[JmiMessage] = []
        self._events: deque[Event] = deque()

    @property
    def ended(self) -> bool:
        return self.state in TERMINAL

    # --- outputs ----------------------------------------------------------------

    def messages_to_send(self) -> list[JmiMessage]:
        out, self._out = self._out, []
        return out

    def next_event(self) -> Event | None:
        return self._events.popleft() if self._events else None

    def get_timer(self) -> float | None:
        return self._deadline

    # --- commands ---------------------------------------------------------------

    def propose(self, media: tuple[str, ...], now: float) -> None:
        self._send(JmiMessage(JmiAction.PROPOSE, self.id, to=self.peer, media=media))
        self._deadline = now + self.ring_timeout

    def ring(self) -> None:
        """Responder: tell the caller's device we are ringing (0.6+)."""
        assert self.device is not None
        self._send(JmiMessage(JmiAction.RINGING, self.id, to=self.device))

    def proceed(self, now: float) -> None:
        """Responder: the user accepted. <proceed/> to the caller's device (carbons copy
        it to our siblings), <accept/> to our own bare JID for older siblings."""
        assert self.device is not None
        self._send(JmiMessage(JmiAction.PROCEED, self.id, to=self.device))
        self._out.append(JmiMessage(JmiAction.ACCEPT, self.id, to=bare(self.local)))
        self._deadline = now + self.initiate_timeout

    def reject(self, reason: Reason = Reason.DECLINE) -> None:
        assert self.device is not None
        self._send(JmiMessage(JmiAction.REJECT, self.id, to=self.device, reason=reason),
                   reason.value)
        self._out.append(JmiMessage(JmiAction.REJECT, self.id, to=bare(self.local),
                                    reason=reason))

    def retract(self, reason: Reason = Reason.CANCEL) -> None:
        self._send(JmiMessage(JmiAction.RETRACT, self.id, to=bare(self.peer), reason=reason),
                   reason.value)

    def finish(self, reason: Reason) -> None:
        """After the Jingle session: <finish/> (0.6+), so every device logs the end."""
        allowed = (US, JmiAction.FINISH) in TRANSITIONS.get((self.role, self.state), {})
        if allowed and self.device is not None:
            self._send(JmiMessage(JmiAction.FINISH, self.id, to=self.device, reason=reason),
                       reason.value)

    def session_started(self) -> None:
        """The Jingle session with this id exists: no more waiting for it."""
        self._deadline = None

    # --- input ------------------------------------------------------------------------

    def origin_of(self, msg: JmiMessage) -> Origin | None:
        """Who sent ``msg``, relative to this proposal; None: nobody we listen to."""
        own = bare(self.local)
        if msg.carbon:
            return Origin.SIBLING if msg.to and bare(msg.to) == bare(self.peer) else None
        if msg.sender == self.local:
            return None  # our own message reflected (accept to our bare JID)
        if bare(msg.sender) == own:
            return Origin.SIBLING
        if bare(msg.sender) == bare(self.peer):
            return Origin.PEER
        return None

    def receive(self, msg: JmiMessage, now: float) -> None:
        origin = self.origin_of(msg)
        row = TRANSITIONS.get((self.role, self.state), {})
        if origin is None or msg.id != self.id or (origin, msg.action) not in row:
            return
        target = row[(origin, msg.action)]
        if msg.action is JmiAction.RINGING:
            self._events.append(Ringing(self.id, msg.sender))
        reason = msg.reason.value if msg.reason else None
        if msg.action is JmiAction.PROCEED and origin is Origin.PEER and target is not STAY:
            self.device = msg.sender
            self._deadline = None
            self._events.append(Proceed(self.id, msg.sender))
        if target is JmiState.ELSEWHERE:
            reason = ("rejected-elsewhere" if msg.action is JmiAction.REJECT
                      else "answered-elsewhere")
        elif target is JmiState.RETRACTED:
            reason = reason or Reason.CANCEL.value
        elif target is JmiState.REJECTED:
            reason = reason or Reason.DECLINE.value
        if msg.action is JmiAction.PROPOSE and target is JmiState.RINGING:
            # A retract can be lost (or the caller's device die): ring no longer
            # than a session may stay unanswered.
            self._deadline = now + self.ring_timeout
        if target is not STAY:
            self._move(target, reason)

    def handle_timer(self, now: float) -> None:
        if self._deadline is None or self._deadline > now:
            return
        self._deadline = None
        if self.role is Role.INITIATOR and self.state is JmiState.PROPOSED:
            self.retract(Reason.TIMEOUT)
        elif not self.ended:
            self._move(JmiState.EXPIRED, Reason.TIMEOUT.value)

    # --- internals ----------------------------------------------------------------------

    def _send(self, msg: JmiMessage, reason: str | None = None) -> None:
        row = TRANSITIONS.get((self.role, self.state), {})
        key = (US, msg.action)
        if key not in row:
            raise UsageError(f"cannot send {msg.action} in {self.state} as {self.role}")
        self._out.append(msg)
        target = row[key]
        if target is not STAY:
            self._move(target, reason)

    def _move(self, state: JmiState, reason: str | None) -> None:
        previous, self.state = self.state, state
        if state in TERMINAL:
            self._deadline = None
            self.reason = reason
        self._events.append(StateChanged(self.id, state, previous, reason))


def session_state(role: Role, state: JmiState) -> SessionState | None:
    """libjingle's name for a proposal's state, as the control socket reports it
    (docs/control.md): a proposal is the session's first phase. None: the Jingle
    session's own states take over."""
    if role is Role.INITIATOR:
        return {JmiState.PROPOSED: SessionState.SENTINITIATE,
                JmiState.REJECTED: SessionState.RECEIVEDREJECT,
                JmiState.RETRACTED: SessionState.SENTTERMINATE,
                JmiState.EXPIRED: SessionState.SENTTERMINATE}.get(state)
    return {JmiState.RINGING: SessionState.RECEIVEDINITIATE,
            JmiState.REJECTED: SessionState.SENTREJECT,
            JmiState.RETRACTED: SessionState.RECEIVEDTERMINATE,
            JmiState.ELSEWHERE: SessionState.RECEIVEDTERMINATE,
            JmiState.EXPIRED: SessionState.RECEIVEDTERMINATE}.get(state)
