"""Who may reach the user, and how much work one peer can cause (pure: ``now`` is passed).

Anyone on the network can send the agent Jingle IQs and XEP-0353 messages. A
stranger's call or file is refused unseen when the user takes them only from
contacts (``policy.calls_from`` / ``files_from``). Whatever the policy, work is
bounded: each bare JID may hold only so many unanswered incoming sessions, all
strangers together a few more, and each peer gets a token bucket of IQs. A
contact — someone the user chose — gets far wider bounds than a stranger (a
gateway or a test rig may place dozens of calls a second), but bounds all the
same. What exceeds a bound is answered with an error (RFC 6120 §8.3.3:
``resource-constraint``, type ``wait``) and never reaches a worker or the user.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Container
from dataclasses import dataclass, field


@dataclass(frozen=True)
class Bounds:
    pending: int  # unanswered incoming sessions / proposals per bare JID
    rate: float  # Jingle IQs per second per bare JID, sustained
    burst: float  # and at once (a trickle of candidates, a restart, many calls)


STRANGER = Bounds(pending=3, rate=20.0, burst=60.0)
CONTACT = Bounds(pending=32, rate=500.0, burst=1000.0)
STRANGERS_PENDING = 20  # unanswered sessions from all strangers together
ALL_PENDING = 256  # from everyone together
_MAX_BUCKETS = 4096  # peers remembered; full buckets are forgotten first


@dataclass
class _Bucket:
    tokens: float
    at: float


@dataclass
class Admission:
    stranger: Bounds = STRANGER
    contact: Bounds = CONTACT
    strangers_pending: int = STRANGERS_PENDING
    all_pending: int = ALL_PENDING
    _buckets: dict[str, _Bucket] = field(default_factory=dict)

    def allow_iq(self, peer: str, now: float, trusted: bool = False) -> bool:
        """Take one token from ``peer``'s bucket (a bare JID); False when empty."""
        bounds = self.contact if trusted else self.stranger
        bucket = self._buckets.get(peer)
        if bucket is None:
            if len(self._buckets) >= _MAX_BUCKETS:
                self._forget_full(now)
            bucket = self._buckets[peer] = _Bucket(bounds.burst, now)
        bucket.tokens = min(bounds.burst, bucket.tokens + (now - bucket.at) * bounds.rate)
        bucket.at = now
        if bucket.tokens < 1.0:
            return False
        bucket.tokens -= 1.0
        return True

    def _forget_full(self, now: float) -> None:
        refill = self.stranger.burst / self.stranger.rate
        for peer in [p for p, b in self._buckets.items() if now - b.at >= refill]:
            del self._buckets[peer]
        if len(self._buckets) >= _MAX_BUCKETS:  # everyone busy: forget the oldest half
            for peer in sorted(self._buckets, key=lambda p: self._buckets[p].at)[
                    :_MAX_BUCKETS // 2]:
                del self._buckets[peer]

    def why_not_ring(self, peer: str, pending: Counter[str],
                     contacts: Container[str]) -> str | None:
        """Why a new incoming session or proposal from ``peer`` may not be presented,
        given the unanswered ones by bare JID and who the contacts are; None when it
        may."""
        trusted = peer in contacts
        bounds = self.contact if trusted else self.stranger
        if pending[peer] >= bounds.pending:
            return f"{peer} already has {pending[peer]} unanswered sessions"
        if not trusted and sum(n for p, n in pending.items()
                               if p not in contacts) >= self.strangers_pending:
            return f"{self.strangers_pending} unanswered sessions from strangers already"
        if sum(pending.values()) >= self.all_pending:
            return f"{self.all_pending} unanswered sessions already"
        return None
