"""How a file transfer ends (XEP-0234 §7): checksum, received, verification, timeouts.

A pure state machine per file session, from the moment the bytes move until the
transfer is complete or given up; time is passed in (``now``) and the one timer
it needs is read with :meth:`FileCompletion.get_timer`. The file-session adapter
executes the outputs (session-info, the worker's commit, events, the end).

- The sender, once every byte is out, announces its hash (§7.1, ``checksum``)
  and waits for the receiver: its ``received`` (§7.2) completes the transfer,
  verified; a ``success`` terminate without it (optional; Dino sends none)
  completes it unconfirmed; silence past :data:`CONFIRM_WAIT` (plus time to hash
  at 50 MB/s) ends the session ``timeout`` (Dino 0.4 acknowledges in-band blocks
  it has given up on and never answers).
- The receiver verifies against the peer's hash (from the offer, the accept of
  a request, or a checksum); with none by the end of the bytes it waits
  :data:`CHECKSUM_WAIT` for a late checksum, then keeps the file unverified.
  A file that matches is confirmed with ``received`` and the session ends
  ``success``; a mismatch ends it ``media-error``.
"""

from __future__ import annotations

import enum
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from signalling.jingle.states import Reason

CHECKSUM_WAIT = 3.0  # seconds a receiver waits for the sender's checksum
CONFIRM_WAIT = 30.0  # seconds a sender waits for the receiver to confirm or end
CONFIRM_HASH_RATE = 50e6  # bytes/s the receiver may need to hash on top of that


class Stage(enum.StrEnum):
    MOVING = "moving"  # the bytes are under way
    AWAIT_CONFIRM = "await-confirm"  # sender: all out, checksum sent
    AWAIT_CHECKSUM = "await-checksum"  # receiver: all in, no hash to verify against yet
    COMMITTING = "committing"  # receiver: the worker verifies and keeps the file
    DONE = "done"


# --- inputs --------------------------------------------------------------------------


@dataclass(frozen=True)
class BytesDone:
    """The worker moved every byte; ``sha256`` of the whole file, and the digest of
    the configured algorithm (``algo``, hex) when that is not SHA-256."""

    sha256: str
    algo: str = "sha-256"
    digest: str | None = None


@dataclass(frozen=True)
class PeerHash:
    """The peer's hash (XEP-0300 algorithm, hex), from a description or a checksum."""

    algo: str
    hex: str


@dataclass(frozen=True)
class PeerReceived:
    """session-info <received/> (§7.2)."""


@dataclass(frozen=True)
class Committed:
    """The worker's verdict: kept at ``path`` (None: refused, the hash did not match)."""

    path: str | None
    verified: bool


@dataclass(frozen=True)
class SessionEnded:
    reason: str | None


@dataclass(frozen=True)
class Tick:
    now: float


Input = BytesDone | PeerHash | PeerReceived | Committed | SessionEnded | Tick

# --- outputs -------------------------------------------------------------------------


@dataclass(frozen=True)
class SendChecksum:
    algo: str
    hex: str


@dataclass(frozen=True)
class Commit:
    """The worker verifies against (algo, hex), or keeps the file unverified (None)."""

    algo: str | None
    hex: str | None


@dataclass(frozen=True)
class Complete:
    """transfer.complete: ``verified`` says whether the hash was checked (receiver) or
    confirmed by the peer (sender)."""

    sha256: str
    verified: bool
    path: str | None = None


@dataclass(frozen=True)
class SendReceived:
    pass


@dataclass(frozen=True)
class End:
    reason: Reason
    text: str


Output = SendChecksum | Commit | Complete | SendReceived | End


class FileCompletion:
    def __init__(self, *, sending: bool, size: int, peer_hash: PeerHash | None = None) -> None:
        self.sending = sending
        self.size = size
        self.peer_hash = peer_hash
        self.stage = Stage.MOVING
        self.sha256: str | None = None
        self._deadline: float | None = None

    def get_timer(self) -> float | None:
        """When :class:`Tick` is due, if a wait is running."""
        return self._deadline

    def handle(self, event: Input, now: float) -> list[Output]:
        rule = TRANSITIONS.get((self.sending, self.stage, type(event)))
        if rule is None:
            return []
        return rule(self, event, now)

    # --- sender ------------------------------------------------------------------

    def _sent(self, event: BytesDone, now: float) -> list[Output]:
        self.sha256 = event.sha256
        self.stage = Stage.AWAIT_CONFIRM
        self._deadline = now + CONFIRM_WAIT + self.size / CONFIRM_HASH_RATE
        if event.digest:
            return [SendChecksum(event.algo, event.digest)]
        return [SendChecksum("sha-256", event.sha256)]

    def _confirmed(self, _event: PeerReceived, _now: float) -> list[Output]:
        self.stage, self._deadline = Stage.DONE, None
        return [Complete(self.sha256 or "", verified=True)]

    def _sender_ended(self, event: SessionEnded, _now: float) -> list[Output]:
        self.stage, self._deadline = Stage.DONE, None
        if event.reason == Reason.SUCCESS.value and self.sha256 is not None:
            return [Complete(self.sha256 or "", verified=False)]
        return []

    def _confirm_timer(self, event: Tick, _now: float) -> list[Output]:
        if self._deadline is None or event.now < self._deadline:
            return []
        self.stage, self._deadline = Stage.DONE, None
        return [End(Reason.TIMEOUT, "the receiver never confirmed the file")]

    # --- receiver ----------------------------------------------------------------

    def _learn_hash(self, event: PeerHash, _now: float) -> list[Output]:
        self.peer_hash = event
        if self.stage is Stage.AWAIT_CHECKSUM:
            return self._commit()
        return []

    def _received_all(self, event: BytesDone, now: float) -> list[Output]:
        self.sha256 = event.sha256
        if self.peer_hash is not None:
            return self._commit()
        self.stage = Stage.AWAIT_CHECKSUM
        self._deadline = now + CHECKSUM_WAIT
        return []

    def _checksum_timer(self, event: Tick, _now: float) -> list[Output]:
        if self._deadline is None or event.now < self._deadline:
            return []
        return self._commit()

    def _commit(self) -> list[Output]:
        self.stage, self._deadline = Stage.COMMITTING, None
        if self.peer_hash is None:
            return [Commit(None, None)]
        return [Commit(self.peer_hash.algo, self.peer_hash.hex)]

    def _committed(self, event: Committed, _now: float) -> list[Output]:
        self.stage = Stage.DONE
        done: list[Output] = [Complete(self.sha256 or "", event.verified, event.path)]
        if event.path is None:
            return [*done, End(Reason.MEDIA_ERROR, "hash mismatch")]
        return [*done, SendReceived(),
                End(Reason.SUCCESS, "received" if event.verified else "unverified")]

    def _receiver_ended(self, _event: SessionEnded, _now: float) -> list[Output]:
        self.stage, self._deadline = Stage.DONE, None
        return []


_S, _R = True, False
Rule = Callable[[FileCompletion, Any, float], list[Output]]
# (sending, stage, input type) -> rule; anything else is ignored (late or repeated).
TRANSITIONS: dict[tuple[bool, Stage, type], Rule] = {
    (_S, Stage.MOVING, BytesDone): FileCompletion._sent,
    (_S, Stage.MOVING, PeerReceived): FileCompletion._confirmed,
    (_S, Stage.AWAIT_CONFIRM, PeerReceived): FileCompletion._confirmed,
    (_S, Stage.MOVING, SessionEnded): FileCompletion._sender_ended,
    (_S, Stage.AWAIT_CONFIRM, SessionEnded): FileCompletion._sender_ended,
    (_S, Stage.AWAIT_CONFIRM, Tick): FileCompletion._confirm_timer,
    (_R, Stage.MOVING, PeerHash): FileCompletion._learn_hash,
    (_R, Stage.AWAIT_CHECKSUM, PeerHash): FileCompletion._learn_hash,
    (_R, Stage.MOVING, BytesDone): FileCompletion._received_all,
    (_R, Stage.AWAIT_CHECKSUM, Tick): FileCompletion._checksum_timer,
    (_R, Stage.COMMITTING, Committed): FileCompletion._committed,
    (_R, Stage.MOVING, SessionEnded): FileCompletion._receiver_ended,
    (_R, Stage.AWAIT_CHECKSUM, SessionEnded): FileCompletion._receiver_ended,
    (_R, Stage.COMMITTING, SessionEnded): FileCompletion._receiver_ended,
}
