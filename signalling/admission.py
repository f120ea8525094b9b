"""Who may reach the user, and how much work one peer can cause (pure: ``now`` is passed).

Anyone on the network can send the agent Jingle IQs and XEP-0353 messages. A
stranger's call or file is refused unseen when the user takes them only from
contacts (``policy.calls_from`` / ``files_from``); whatever the policy, each
bare JID may hold only a few unanswered incoming sessions, all peers together
a bounded number, and each gets a token bucket of IQs. What exceeds a bound is
answered with an error (RFC 6120 §8.3.3: ``resource-constraint``, type
``wait``) and never reaches a worker or the user.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

PER_PEER_PENDING = 3  # ringing calls / unanswered offers from one bare JID
TOTAL_PENDING = 20  # from everyone together
IQ_RATE = 20.0  # Jingle IQs per second per bare JID, sustained
IQ_BURST = 60.0  # and in a burst (a trickle of candidates, a restart)
_MAX_BUCKETS = 4096  # peers remembered; full buckets are forgotten first


@dataclass
class _Bucket:
    tokens: float
    at: float


@dataclass
class Admission:
    per_peer_pending: int = PER_PEER_PENDING
    total_pending: int = TOTAL_PENDING
    rate: float = IQ_RATE
    burst: float = IQ_BURST
    _buckets: dict[str, _Bucket] = field(default_factory=dict)

    def allow_iq(self, peer: str, now: float) -> bool:
        """Take one token from ``peer``'s bucket (a bare JID); False when empty."""
        bucket = self._buckets.get(peer)
        if bucket is None:
            if len(self._buckets) >= _MAX_BUCKETS:
                self._forget_full(now)
            bucket = self._buckets[peer] = _Bucket(self.burst, now)
        bucket.tokens = min(self.burst, bucket.tokens + (now - bucket.at) * self.rate)
        bucket.at = now
        if bucket.tokens < 1.0:
            return False
        bucket.tokens -= 1.0
        return True

    def _forget_full(self, now: float) -> None:
        refill = self.burst / self.rate
        for peer in [p for p, b in self._buckets.items() if now - b.at >= refill]:
            del self._buckets[peer]
        if len(self._buckets) >= _MAX_BUCKETS:  # everyone busy: forget the oldest half
            for peer in sorted(self._buckets, key=lambda p: self._buckets[p].at)[
                    :_MAX_BUCKETS // 2]:
                del self._buckets[peer]

    def why_not_ring(self, peer: str, pending: Counter[str]) -> str | None:
        """Why a new incoming session or proposal from ``peer`` may not be presented,
        given the unanswered ones by bare JID; None when it may."""
        if pending[peer] >= self.per_peer_pending:
            return f"{peer} already has {pending[peer]} unanswered sessions"
        if sum(pending.values()) >= self.total_pending:
            return f"{self.total_pending} unanswered sessions already"
        return None
