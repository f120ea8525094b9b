"""Calls proposed with XEP-0353 messages, in signalling: the adapter around
:class:`signalling.jingle.jmi.Proposal`.

A proposal is the first phase of a call session and shares its id (the
session's sid): the control socket sees one session whose first states come
from here and whose later ones come from the Jingle session that follows the
<proceed/>. Each proposal's messages are sent, events reported and timer armed
by :meth:`Proposals.flush`, as the service does for Jingle sessions.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import time
import xml.etree.ElementTree as ET
from typing import Protocol

from bus import messages as m
from bus.config import AgentConfig
from control import protocol as cp
from signalling.errors import CommandError
from signalling.jingle import jmi
from signalling.jingle.errors import UsageError
from signalling.jingle.manager import bare
from signalling.jingle.states import Reason, Role

log = logging.getLogger(__name__)


class Host(Protocol):
    config: AgentConfig
    local_jid: str

    def report_state(self, sid: str, peer: str, kind: m.SessionKind, direction: m.Direction,
                     state: str, reason: str | None = None) -> None: ...
    def post(self, process: str, message: m.Message) -> None: ...
    def send_message(self, element: ET.Element) -> None: ...
    def proceed_to(self, sid: str, device: str) -> None: ...
    def prepare_answer(self, sid: str) -> None: ...
    def in_roster(self, bare_jid: str) -> bool: ...
    def admit_proposal(self, peer: str, message: ET.Element) -> bool: ...


class Proposals:
    def __init__(self, host: Host) -> None:
        self.host = host
        self.live: dict[str, jmi.Proposal] = {}
        self._timers: dict[str, asyncio.TimerHandle] = {}
        # The full JID the control socket shows (docs/control.md) until a device answers.
        self._shown: dict[str, str] = {}

    def get(self, sid: str) -> jmi.Proposal | None:
        return self.live.get(sid)

    def _new(self, sid: str, peer: str, role: Role) -> jmi.Proposal:
        jingle = self.host.config.jingle
        proposal = jmi.Proposal(id=sid, local=self.host.local_jid, peer=peer, role=role,
                                ring_timeout=jingle.ring_timeout,
                                initiate_timeout=jingle.iq_timeout)
        self.live[sid] = proposal
        return proposal

    # --- commands ---------------------------------------------------------------------

    def propose(self, to: str, likely: str) -> str:
        """Ring every device of ``to`` (or the one full JID) with a <propose/>;
        ``likely``: the device reported as the peer until one answers."""
        sid = secrets.token_hex(8)
        while sid in self.live:
            sid = secrets.token_hex(8)
        proposal = self._new(sid, to, Role.INITIATOR)
        self._shown[sid] = likely
        proposal.propose(("audio",), time.monotonic())
        self.flush(proposal)
        return sid

    def accept(self, proposal: jmi.Proposal) -> None:
        """The user picked up: <proceed/>, then wait for the caller's session-initiate."""
        try:
            proposal.proceed(time.monotonic())
        except UsageError as exc:
            raise CommandError(cp.NOT_ALLOWED, str(exc)) from None
        self.host.prepare_answer(proposal.id)
        self.flush(proposal)

    def reject(self, proposal: jmi.Proposal, reason: Reason) -> None:
        try:
            proposal.reject(reason)
        except UsageError as exc:
            raise CommandError(cp.NOT_ALLOWED, str(exc)) from None
        self.flush(proposal)

    def hangup(self, proposal: jmi.Proposal, reason: Reason) -> None:
        """Before any Jingle session: the caller retracts, the callee rejects."""
        if proposal.role is Role.INITIATOR:
            try:
                proposal.retract(Reason.CANCEL if reason is Reason.SUCCESS else reason)
            except UsageError as exc:
                raise CommandError(cp.NOT_ALLOWED, str(exc)) from None
            self.flush(proposal)
        else:
            self.reject(proposal, Reason.DECLINE if reason is Reason.SUCCESS else reason)

    def session_ended(self, sid: str, reason: str | None) -> None:
        """The Jingle session that followed is over: <finish/> and forget the proposal."""
        proposal = self.live.get(sid)
        if proposal is None:
            return
        self._forget(sid)
        try:
            finish = Reason(reason) if reason else Reason.SUCCESS
        except ValueError:
            finish = Reason.GENERAL_ERROR
        proposal.finish(finish)
        for msg in proposal.messages_to_send():
            self._send(msg)

    def session_started(self, sid: str) -> None:
        proposal = self.live.get(sid)
        if proposal is not None:
            proposal.session_started()
            self._cancel_timer(sid)

    # --- network --------------------------------------------------------------------

    def on_message(self, element: ET.Element) -> None:
        msg = jmi.parse_message(element, bare(self.host.local_jid))
        if msg is None:
            return
        proposal = self.live.get(msg.id)
        if proposal is None:
            if msg.action is not jmi.JmiAction.PROPOSE or msg.carbon:
                return
            if bare(msg.sender) == bare(self.host.local_jid) or "audio" not in msg.media:
                return  # our own devices, or media we do not carry (video only)
            if not self.host.admit_proposal(msg.sender, element):
                return  # a stranger the user does not take calls from, or too many
            proposal = self._new(msg.id, msg.sender, Role.RESPONDER)
            proposal.receive(msg, time.monotonic())
            proposal.ring()
            self.flush(proposal)
            policy = self.host.config.policy
            if policy.auto_accepts(policy.auto_accept_calls, self.host.in_roster(
                    bare(msg.sender))) and proposal.state is jmi.JmiState.RINGING:
                self.accept(proposal)
            return
        proposal.receive(msg, time.monotonic())
        self.flush(proposal)

    # --- the adapter loop ------------------------------------------------------------

    def flush(self, proposal: jmi.Proposal) -> None:
        for msg in proposal.messages_to_send():
            self._send(msg)
        direction = (m.Direction.OUTGOING if proposal.role is Role.INITIATOR
                     else m.Direction.INCOMING)
        peer = proposal.device or self._shown.get(proposal.id, proposal.peer)
        while (event := proposal.next_event()) is not None:
            if isinstance(event, jmi.Ringing):
                self.host.post(m.Process.SUPERVISOR, m.SessionInfoEvent(
                    time.time(), event.id, "ringing", None))
            elif isinstance(event, jmi.Proceed):
                self.host.proceed_to(event.id, event.device)
            elif isinstance(event, jmi.StateChanged):
                state = jmi.session_state(proposal.role, event.state)
                if state is not None:
                    self.host.report_state(proposal.id, peer, m.SessionKind.CALL, direction,
                                           state.value, event.reason)
                if event.state in jmi.TERMINAL and event.state is not jmi.JmiState.FINISHED:
                    self.host.report_state(proposal.id, peer, m.SessionKind.CALL, direction,
                                           "DEINIT", event.reason)
        self._cancel_timer(proposal.id)
        if proposal.ended:
            self._forget(proposal.id)
            return
        when = proposal.get_timer()
        if when is not None:
            self._timers[proposal.id] = asyncio.get_running_loop().call_later(
                max(0.0, when - time.monotonic()), self._on_timer, proposal.id)

    def _on_timer(self, sid: str) -> None:
        self._timers.pop(sid, None)
        proposal = self.live.get(sid)
        if proposal is not None:
            proposal.handle_timer(time.monotonic())
            self.flush(proposal)

    def _forget(self, sid: str) -> None:
        self.live.pop(sid, None)
        self._shown.pop(sid, None)
        self._cancel_timer(sid)

    def _cancel_timer(self, sid: str) -> None:
        timer = self._timers.pop(sid, None)
        if timer is not None:
            timer.cancel()

    def _send(self, msg: jmi.JmiMessage) -> None:
        self.host.send_message(jmi.build_message(msg, secrets.token_hex(6)))

    def close_all(self, reason: Reason) -> None:
        for proposal in list(self.live.values()):
            if proposal.state in (jmi.JmiState.PROPOSED, jmi.JmiState.RINGING):
                self.hangup(proposal, reason)
