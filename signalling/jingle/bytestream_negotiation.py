"""Which bytestream carries a file: XEP-0260 then XEP-0261, as a pure state machine.

One :class:`BytestreamNegotiation` per file session, from the moment both sides
know each other's SOCKS5 candidates (the accept) until a connection carries the
bytes or nothing can. Inputs are what the peer said (its transport-info notices,
its transport-replace and the answer to ours) and what our transfer worker found
(which of the peer's candidates it reached, our own proxy reached and activated);
outputs are what to send and what the worker is to do. No I/O, no clock: the
file-session adapter (signalling/file_sessions.py) executes the outputs.

The rules, one table (:data:`TRANSITIONS`):

- §2.3: each side tries the other's candidates and reports ``candidate-used``
  or ``candidate-error``; nothing is nominated before both reports are known.
- §2.4: the used candidate of higher priority wins; on a tie the initiator's.
- §2.5: a proxy is activated by the side that offered it, which then says
  ``activated`` (or ``proxy-error``); the other side waits for that word.
- §2.6 and XEP-0261: when neither side reached anything, the initiator replaces
  the transport with in-band bytestreams; the responder waits for that (or, if
  in-band is off for us, the session fails). A peer's transport-replace is
  accepted when in-band is on, rejected otherwise.
"""

from __future__ import annotations

import enum
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from signalling.jingle import ibb, s5b
from signalling.jingle.states import Reason


class Phase(enum.StrEnum):
    CANDIDATES = "candidates"  # §2.3: both sides try the other's candidates
    OWN_PROXY = "own-proxy"  # §2.5: our proxy won; we connect to it and activate it
    PEER_PROXY = "peer-proxy"  # §2.5: the peer's proxy won; waiting for "activated"
    REPLACING = "replacing"  # §2.6: our transport-replace to in-band is out
    AWAIT_REPLACE = "await-replace"  # §2.6: SOCKS5 failed; the initiator replaces it
    STREAMING = "streaming"  # a connection (s5b or ibb) carries the bytes
    FAILED = "failed"


# --- inputs --------------------------------------------------------------------------


@dataclass(frozen=True)
class WeReached:
    """Our worker tried the peer's candidates: the one it reached (cid) or None."""

    cid: str | None


@dataclass(frozen=True)
class PeerSaid:
    """The peer's transport-info notice (candidate-used/-error, activated, proxy-error)."""

    info: s5b.S5bInfo
    cid: str | None = None


@dataclass(frozen=True)
class OwnProxyReached:
    """Our worker reached our own (nominated) proxy: it may be activated now."""


@dataclass(frozen=True)
class OwnProxyActivated:
    """The server's answer to our activation request (XEP-0065 §6.3.4)."""

    ok: bool


@dataclass(frozen=True)
class PeerReplaces:
    """The peer's transport-replace (None: a transport other than in-band)."""

    in_band: ibb.IbbTransport | None


@dataclass(frozen=True)
class PeerAnswersReplace:
    """transport-accept (with its in-band transport) or transport-reject of ours."""

    accepted: bool
    in_band: ibb.IbbTransport | None = None


Input = WeReached | PeerSaid | OwnProxyReached | OwnProxyActivated | PeerReplaces | \
    PeerAnswersReplace


# --- outputs -------------------------------------------------------------------------


@dataclass(frozen=True)
class Tell:
    """Send a transport-info with this notice (§2.3-2.5)."""

    info: s5b.S5bInfo
    cid: str | None = None


@dataclass(frozen=True)
class ConnectOwnProxy:
    """The worker connects to our own proxy candidate too (§2.5)."""

    candidate: s5b.S5bCandidate


@dataclass(frozen=True)
class ActivateProxy:
    """Ask our proxy to activate the bytestream (XEP-0065 §6.3.4)."""

    candidate: s5b.S5bCandidate


@dataclass(frozen=True)
class UseSocks5:
    """The nominated connection carries the bytes. ``ours``: a candidate we offered
    (the peer connected to it); ``via_own_proxy``: our worker's own connection to our
    proxy; ``kind``: ``direct`` or ``proxy`` (for transport.state)."""

    ours: bool
    via_own_proxy: bool
    kind: str


@dataclass(frozen=True)
class Replace:
    """Send transport-replace with this in-band transport (XEP-0261 §2)."""

    in_band: ibb.IbbTransport


@dataclass(frozen=True)
class AcceptReplace:
    """Send transport-accept of the peer's in-band transport (block size capped)."""

    in_band: ibb.IbbTransport


@dataclass(frozen=True)
class RejectReplace:
    """Send transport-reject of the peer's transport-replace."""


@dataclass(frozen=True)
class UseInBand:
    """In-band is agreed: the sender opens the bytestream (XEP-0047 §2.1), the
    receiver waits for the open."""

    in_band: ibb.IbbTransport
    we_open: bool


@dataclass(frozen=True)
class Socks5Failed:
    """No SOCKS5 candidate worked on either side (transport.state failed)."""


@dataclass(frozen=True)
class Fail:
    """The session ends with this reason and text."""

    reason: Reason
    text: str


Output = Tell | ConnectOwnProxy | ActivateProxy | UseSocks5 | Replace | AcceptReplace | \
    RejectReplace | UseInBand | Socks5Failed | Fail

_UNKNOWN = object()


class BytestreamNegotiation:
    """XEP-0260/0261 for one file session. ``ours``: the candidates we offered, by cid;
    ``theirs``: the peer's. ``in_band``: whether XEP-0261 is switched on for us;
    ``new_in_band``: makes our in-band transport (fresh sid, our block size) when we
    replace; ``cap``: our block-size limit for the peer's."""

    def __init__(self, *, initiator: bool, sending: bool,
                 ours: dict[str, s5b.S5bCandidate], theirs: tuple[s5b.S5bCandidate, ...],
                 in_band: bool, new_in_band: Callable[[], ibb.IbbTransport],
                 cap: Callable[[ibb.IbbTransport], ibb.IbbTransport]) -> None:
        self.initiator = initiator
        self.sending = sending
        self.ours = ours
        self.theirs = theirs
        self.in_band_allowed = in_band
        self._new_in_band = new_in_band
        self._cap = cap
        self.phase = Phase.CANDIDATES
        self.we_used: object = _UNKNOWN  # the peer's candidate we reached, or None
        self.they_used: object = _UNKNOWN  # our candidate the peer reached, or None
        self.waiting_for: str | None = None  # cid of the proxy whose activation we await
        self.own_proxy: s5b.S5bCandidate | None = None
        self.in_band: ibb.IbbTransport | None = None  # once in-band is agreed or offered

    def handle(self, event: Input) -> list[Output]:
        """Feed one input; the outputs to execute, in order. Inputs the current phase
        does not expect change nothing (a late or repeated notice)."""
        rule = TRANSITIONS.get((self.phase, type(event)))
        if rule is None:
            return []
        return rule(self, event)

    # --- §2.3-2.4: candidates and nomination -------------------------------------------

    def _we_reached(self, event: WeReached) -> list[Output]:
        self.we_used = next((c for c in self.theirs if c.cid == event.cid), None)
        info = s5b.S5bInfo.CANDIDATE_USED if self.we_used else s5b.S5bInfo.CANDIDATE_ERROR
        return [Tell(info, event.cid if self.we_used else None), *self._nominate()]

    def _peer_reported(self, event: PeerSaid) -> list[Output]:
        if event.info is s5b.S5bInfo.CANDIDATE_USED:
            self.they_used = self.ours.get(event.cid or "")
        elif event.info is s5b.S5bInfo.CANDIDATE_ERROR:
            self.they_used = None
        else:
            return []  # activated/proxy-error mean nothing before a nomination
        return self._nominate()

    def _nominate(self) -> list[Output]:
        if self.we_used is _UNKNOWN or self.they_used is _UNKNOWN:
            return []
        we = self.we_used if isinstance(self.we_used, s5b.S5bCandidate) else None
        they = self.they_used if isinstance(self.they_used, s5b.S5bCandidate) else None
        choice = s5b.nominate(we, they, self.initiator)
        if choice is None:
            return [Socks5Failed(), *self._fall_back()]
        if choice.offered_by_us:
            chosen = self.ours.get(choice.cid)
            if chosen is not None and chosen.type == "proxy":
                self.phase, self.own_proxy = Phase.OWN_PROXY, chosen
                return [ConnectOwnProxy(chosen)]
            self.phase = Phase.STREAMING
            return [UseSocks5(ours=True, via_own_proxy=False, kind="direct")]
        theirs = next((c for c in self.theirs if c.cid == choice.cid), None)
        if theirs is not None and theirs.type == "proxy":
            self.phase, self.waiting_for = Phase.PEER_PROXY, theirs.cid
            return []
        self.phase = Phase.STREAMING
        return [UseSocks5(ours=False, via_own_proxy=False, kind="direct")]

    def _fall_back(self) -> list[Output]:
        """§2.6: nothing reached on either side."""
        if not self.in_band_allowed:
            self.phase = Phase.FAILED
            return [Fail(Reason.FAILED_TRANSPORT, "no SOCKS5 candidate worked")]
        if self.initiator:
            self.phase = Phase.REPLACING
            self.in_band = self._new_in_band()
            return [Replace(self.in_band)]
        self.phase = Phase.AWAIT_REPLACE  # the initiator replaces the transport
        return []

    # --- §2.5: proxies --------------------------------------------------------------

    def _own_proxy_reached(self, _event: OwnProxyReached) -> list[Output]:
        assert self.own_proxy is not None
        return [ActivateProxy(self.own_proxy)]

    def _own_proxy_activated(self, event: OwnProxyActivated) -> list[Output]:
        assert self.own_proxy is not None
        if event.ok:
            self.phase = Phase.STREAMING
            return [Tell(s5b.S5bInfo.ACTIVATED, self.own_proxy.cid),
                    UseSocks5(ours=True, via_own_proxy=True, kind="proxy")]
        self.phase = Phase.FAILED
        return [Tell(s5b.S5bInfo.PROXY_ERROR),
                Fail(Reason.FAILED_TRANSPORT, "could not activate our proxy")]

    def _peer_proxy_word(self, event: PeerSaid) -> list[Output]:
        if event.info is s5b.S5bInfo.ACTIVATED:
            self.phase, self.waiting_for = Phase.STREAMING, None
            return [UseSocks5(ours=False, via_own_proxy=False, kind="proxy")]
        if event.info is s5b.S5bInfo.PROXY_ERROR:
            self.phase = Phase.FAILED
            return [Fail(Reason.FAILED_TRANSPORT, "the peer's proxy failed")]
        return []

    # --- XEP-0261: in-band ----------------------------------------------------------

    def _peer_replaces(self, event: PeerReplaces) -> list[Output]:
        if event.in_band is None or not self.in_band_allowed:
            self.phase = Phase.FAILED
            return [RejectReplace(), Fail(Reason.FAILED_TRANSPORT, "no common transport")]
        self.phase = Phase.STREAMING
        self.in_band = self._cap(event.in_band)
        return [AcceptReplace(self.in_band), UseInBand(self.in_band, we_open=self.sending)]

    def _replace_answered(self, event: PeerAnswersReplace) -> list[Output]:
        if not event.accepted:
            self.phase = Phase.FAILED
            return [Fail(Reason.FAILED_TRANSPORT, "the peer refused in-band")]
        assert self.in_band is not None
        self.phase = Phase.STREAMING
        self.in_band = self._cap(event.in_band or self.in_band)
        return [UseInBand(self.in_band, we_open=self.sending)]


Rule = Callable[[BytestreamNegotiation, Any], list[Output]]

# (phase, input type) -> rule. Missing pairs are ignored inputs.
TRANSITIONS: dict[tuple[Phase, type], Rule] = {
    (Phase.CANDIDATES, WeReached): BytestreamNegotiation._we_reached,
    (Phase.CANDIDATES, PeerSaid): BytestreamNegotiation._peer_reported,
    (Phase.OWN_PROXY, OwnProxyReached): BytestreamNegotiation._own_proxy_reached,
    (Phase.OWN_PROXY, OwnProxyActivated): BytestreamNegotiation._own_proxy_activated,
    (Phase.PEER_PROXY, PeerSaid): BytestreamNegotiation._peer_proxy_word,
    # A peer may replace the transport before or after its own candidate-error.
    (Phase.CANDIDATES, PeerReplaces): BytestreamNegotiation._peer_replaces,
    (Phase.AWAIT_REPLACE, PeerReplaces): BytestreamNegotiation._peer_replaces,
    (Phase.REPLACING, PeerAnswersReplace): BytestreamNegotiation._replace_answered,
}
