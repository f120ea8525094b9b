"""Is the call's path alive, and what to do when it is not: pure decisions, time passed in.

Two objects, no I/O (the media worker and the aioice adapter execute what they say):

- :class:`ConsentFreshness` (RFC 7675): when to send the next consent check on the
  selected pair and when consent is lost. Checks go out about every 5 s,
  randomised (0.8 to 1.2 times, §5.1, so calls do not synchronise); consent is
  lost 30 s after the last answer (§5.1), whatever the peer sends or does not:
  silence (mute, hold, DTX: XEP-0167 §7) is never a reason by itself.
- :class:`Liveness`: the restart policy as one transition table. Restart ICE
  (RFC 8445 §9) only when an address the selected pair stands on vanishes or
  consent is lost. Our restart offer waits a bound for the peer's new credentials;
  a peer that never answers (Dino 0.4 returns an empty result and keeps the old
  ones) leaves us the old pair: it is probed, and kept if it still works. When
  nothing works the call ends ``failed-transport`` with words that say why.
"""

from __future__ import annotations

import enum
import random
from collections.abc import Callable
from dataclasses import dataclass

CONSENT_INTERVAL = 5.0  # RFC 7675 §5.1: "every 5 seconds" on average
CONSENT_LOST_AFTER = 30.0  # RFC 7675 §5.1: no answer for 30 seconds
ANSWER_WAIT = 6.0  # seconds our restart offer waits for the peer's new credentials


class ConsentFreshness:
    """RFC 7675 §5.1 for one selected pair. ``due(now)`` says whether a check is to
    be sent now; ``answered(now)`` records a response; ``lost(now)`` says consent
    expired. The caller sends, waits and calls back: nothing here sleeps."""

    def __init__(self, now: float, rand: Callable[[], float] = random.random) -> None:
        self._rand = rand
        self.last_answer = now
        self.next_check = now + self._interval()

    def _interval(self) -> float:
        return CONSENT_INTERVAL * (0.8 + 0.4 * self._rand())

    def due(self, now: float) -> bool:
        """A check is due: the caller sends one, and the next is scheduled."""
        if now < self.next_check:
            return False
        self.next_check = now + self._interval()
        return True

    def answered(self, now: float) -> None:
        self.last_answer = max(self.last_answer, now)

    def lost(self, now: float) -> bool:
        return now - self.last_answer >= CONSENT_LOST_AFTER

    def wake(self, now: float) -> float:
        """When the caller should look again (a check or the expiry, whichever is first)."""
        return max(now, min(self.next_check, self.last_answer + CONSENT_LOST_AFTER))


class PathState(enum.StrEnum):
    UP = "up"  # a pair carries the call
    OFFERED = "offered"  # our restart offer is out, waiting for the peer's credentials
    CHECKING = "checking"  # new credentials on both sides, checks under way
    PROBING = "probing"  # the peer never answered: is the old pair still alive?
    FAILED = "failed"  # the call ends failed-transport


class PathInput(enum.StrEnum):
    ADDRESS_GONE = "address-gone"  # a local address of the selected pair vanished
    CONSENT_LOST = "consent-lost"  # RFC 7675: no answer for 30 s on the selected pair
    PEER_RESTART = "peer-restart"  # the peer's new credentials (its restart or our answer)
    ANSWER_TIMEOUT = "answer-timeout"  # ANSWER_WAIT passed since our offer
    CONNECTED = "connected"  # the new generation has a pair
    CONNECT_FAILED = "connect-failed"  # the new generation found none in time
    OLD_ALIVE = "old-alive"  # the probe of the old pair was answered
    OLD_DEAD = "old-dead"  # it was not (or the old generation is gone)


class PathAction(enum.StrEnum):
    OFFER_RESTART = "offer-restart"  # new credentials to the peer, alone (Conversations)
    ANSWER_RESTART = "answer-restart"  # new credentials and candidates together
    CHECK = "check"  # set the peer's credentials and candidates, run the checks
    PROBE_OLD = "probe-old"  # one consent check on the old pair
    USE_OLD = "use-old"  # back to the old generation; the new one is closed
    USE_NEW = "use-new"  # the new generation carries the call; the old one is closed
    END = "end"  # transport.state failed (with the reason), session ends failed-transport


@dataclass(frozen=True)
class Step:
    to: PathState
    actions: tuple[PathAction, ...]
    why: str | None = None  # for END: the words the user reads


# (state, input) -> what happens. A pair missing from the table changes nothing
# (e.g. a second address loss while a restart is already under way).
TRANSITIONS: dict[tuple[PathState, PathInput], Step] = {
    (PathState.UP, PathInput.ADDRESS_GONE): Step(
        PathState.OFFERED, (PathAction.OFFER_RESTART,)),
    (PathState.UP, PathInput.CONSENT_LOST): Step(
        PathState.OFFERED, (PathAction.OFFER_RESTART,)),
    (PathState.UP, PathInput.PEER_RESTART): Step(
        PathState.CHECKING, (PathAction.ANSWER_RESTART, PathAction.CHECK)),
    (PathState.OFFERED, PathInput.PEER_RESTART): Step(
        PathState.CHECKING, (PathAction.CHECK,)),
    (PathState.OFFERED, PathInput.ANSWER_TIMEOUT): Step(
        PathState.PROBING, (PathAction.PROBE_OLD,)),
    (PathState.CHECKING, PathInput.CONNECTED): Step(
        PathState.UP, (PathAction.USE_NEW,)),
    (PathState.CHECKING, PathInput.CONNECT_FAILED): Step(
        PathState.FAILED, (PathAction.END,), "no candidate pair connected after the restart"),
    (PathState.PROBING, PathInput.OLD_ALIVE): Step(
        PathState.UP, (PathAction.USE_OLD,)),
    (PathState.PROBING, PathInput.OLD_DEAD): Step(
        PathState.FAILED, (PathAction.END,),
        "the peer did not answer the ICE restart and the old path is gone"),
    # The peer's credentials arriving late, while we probe: take them.
    (PathState.PROBING, PathInput.PEER_RESTART): Step(
        PathState.CHECKING, (PathAction.CHECK,)),
}


class Liveness:
    """The restart policy of one call: feed it inputs, execute the actions it returns."""

    def __init__(self) -> None:
        self.state = PathState.UP
        self.why: str | None = None

    def handle(self, event: PathInput) -> tuple[PathAction, ...]:
        step = TRANSITIONS.get((self.state, event))
        if step is None:
            return ()
        self.state = step.to
        if step.why is not None:
            self.why = step.why
        return step.actions
