"""Adaptive jitter buffer, pure (input: packets with arrival time; output: what to play).

Theory of operation: packets are keyed by extended sequence number, each one
20 ms frame. ``pop(now)`` is called once per frame by the playout clock and
returns the next frame in order, a :class:`Concealed` gap (the decoder runs
Opus PLC, or FEC from the following packet when it is already here), or None
while (re)buffering. The target depth follows the interarrival jitter estimate
(RFC 3550 A.8 applied to arrival times): about three times the jitter, in whole
frames, between ``min_depth`` and ``max_depth``. An underrun rebuffers and
raises the target; a buffer that stays deeper than needed drops a frame to
cut latency. Late packets (already played or concealed) are discarded.
"""

from __future__ import annotations

import math
from dataclasses import dataclass


@dataclass(frozen=True)
class Played:
    sequence: int
    payload: bytes


@dataclass(frozen=True)
class Concealed:
    """Frame ``sequence`` is missing; ``next_payload`` may carry its FEC (RFC 7587 §4.2)."""

    sequence: int
    next_payload: bytes | None


Playout = Played | Concealed


@dataclass
class JitterStats:
    played: int = 0
    concealed: int = 0
    late: int = 0
    duplicates: int = 0
    underruns: int = 0
    dropped: int = 0  # frames skipped to reduce latency


class JitterBuffer:
    def __init__(self, frame_ms: float = 20.0, min_depth: int = 2, max_depth: int = 12) -> None:
        self.frame_ms = frame_ms
        self.min_depth = min_depth
        self.max_depth = max_depth
        self.target = min_depth
        self.stats = JitterStats()
        self._packets: dict[int, bytes] = {}
        self._next: int | None = None  # next sequence to play
        self._buffering = True
        self._jitter_ms = 0.0
        self._last_transit: float | None = None
        self._deep_since = 0  # consecutive pops with more than needed
        self._calm = 0  # consecutive packets wanting a smaller depth

    @property
    def jitter_ms(self) -> float:
        return self._jitter_ms

    @property
    def size(self) -> int:
        return len(self._packets)

    def push(self, sequence: int, payload: bytes, arrival: float) -> bool:
        """Store a packet; False if it is late or a duplicate."""
        if self._next is not None and sequence < self._next:
            self.stats.late += 1
            return False
        if sequence in self._packets:
            self.stats.duplicates += 1
            return False
        if self._next is not None and sequence - self._next > 5 * self.max_depth:
            # The stream jumped far ahead (sender restart, long outage): resync.
            self._packets.clear()
            self._next = None
            self._buffering = True
        self._packets[sequence] = payload
        transit = arrival * 1000.0 - sequence * self.frame_ms
        if self._last_transit is not None:
            d = abs(transit - self._last_transit)
            self._jitter_ms += (d - self._jitter_ms) / 16.0
        self._last_transit = transit
        self._adapt()
        return True

    def _adapt(self) -> None:
        """Grow at once when jitter rises; shrink one frame per calm second."""
        wanted = 1 + math.ceil(3.0 * self._jitter_ms / self.frame_ms)
        wanted = max(self.min_depth, min(self.max_depth, wanted))
        if wanted > self.target:
            self.target = wanted
            self._calm = 0
        elif wanted < self.target:
            self._calm += 1
            if self._calm * self.frame_ms >= 1000.0:
                self.target -= 1
                self._calm = 0
        else:
            self._calm = 0

    def pop(self, now: float) -> Playout | None:
        """The frame to play now, a concealment, or None while buffering."""
        if self._buffering:
            if len(self._packets) < self.target:
                return None
            self._buffering = False
            if self._next is None or self._next not in self._packets:
                self._next = min(self._packets)
        assert self._next is not None
        if not self._packets:
            self.stats.underruns += 1
            self._buffering = True
            self.target = min(self.max_depth, self.target + 1)
            seq = self._next
            self._next += 1
            self.stats.concealed += 1
            return Concealed(seq, None)
        # Too deep for a while: skip one frame to bring latency down.
        if len(self._packets) > self.target + 2:
            self._deep_since += 1
            if self._deep_since >= 10 and self._next in self._packets:
                del self._packets[self._next]
                self._next += 1
                self.stats.dropped += 1
                self._deep_since = 0
        else:
            self._deep_since = 0
        seq = self._next
        self._next += 1
        payload = self._packets.pop(seq, None)
        if payload is not None:
            self.stats.played += 1
            return Played(seq, payload)
        self.stats.concealed += 1
        return Concealed(seq, self._packets.get(seq + 1))
