"""Receiver statistics of one RTP source (RFC 3550 Appendix A.1, A.3, A.8), pure."""

from __future__ import annotations

from dataclasses import dataclass

SEQ_MOD = 1 << 16
MAX_DROPOUT = 3000
MAX_MISORDER = 100


@dataclass
class ReceptionStats:
    """Feed every received packet to :meth:`update`; read loss and jitter."""

    clock_rate: int
    base_seq: int = -1
    max_seq: int = 0
    cycles: int = 0
    received: int = 0
    jitter: float = 0.0  # RFC 3550 A.8, in timestamp units
    _last_transit: int | None = None
    _expected_prior: int = 0
    _received_prior: int = 0

    def update(self, sequence: int, timestamp: int, arrival: float) -> int | None:
        """Account one packet; its extended sequence number, or None if it is a stray
        (a jump beyond MAX_DROPOUT, RFC 3550 A.1, is treated as a restart)."""
        if self.base_seq < 0:
            self.base_seq = self.max_seq = sequence
        delta = (sequence - self.max_seq) % SEQ_MOD
        if delta < MAX_DROPOUT:
            if sequence < self.max_seq:
                self.cycles += SEQ_MOD
            self.max_seq = sequence
            extended = self.cycles + sequence
        elif delta <= SEQ_MOD - MAX_MISORDER:
            # A big jump: the sender restarted. Start over from this packet.
            self.base_seq = self.max_seq = sequence
            self.cycles = 0
            self._expected_prior = self._received_prior = self.received = 0
            extended = sequence
        else:
            # A late packet from before max_seq (misordered or duplicate).
            extended = self.cycles + sequence - (SEQ_MOD if sequence > self.max_seq else 0)
        self.received += 1
        transit = int(arrival * self.clock_rate) - timestamp
        if self._last_transit is not None:
            d = abs(transit - self._last_transit)
            self.jitter += (d - self.jitter) / 16.0
        self._last_transit = transit
        return extended

    @property
    def extended_max(self) -> int:
        return self.cycles + self.max_seq

    @property
    def expected(self) -> int:
        return 0 if self.base_seq < 0 else self.extended_max - self.base_seq + 1

    @property
    def lost(self) -> int:
        """Cumulative packets lost (may be negative with duplicates, A.3)."""
        return self.expected - self.received

    def jitter_ms(self) -> float:
        return 1000.0 * self.jitter / self.clock_rate

    def interval_fraction_lost(self) -> int:
        """Fraction lost since the last call, 8-bit fixed point (A.3)."""
        expected_interval = self.expected - self._expected_prior
        received_interval = self.received - self._received_prior
        self._expected_prior = self.expected
        self._received_prior = self.received
        lost_interval = expected_interval - received_interval
        if expected_interval == 0 or lost_interval <= 0:
            return 0
        return min(255, (lost_interval << 8) // expected_interval)
