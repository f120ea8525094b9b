"""The pure liveness rules (media_worker/liveness.py): RFC 7675 consent timing fed a
clock, and the restart policy's table, with the ways real peers answer (or not)."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from media_worker.liveness import (
    CONSENT_INTERVAL,
    CONSENT_LOST_AFTER,
    TRANSITIONS,
    ConsentFreshness,
    Liveness,
    PathAction,
    PathInput,
    PathState,
)

# --- consent freshness (RFC 7675 §5.1) -----------------------------------------------


def test_checks_come_every_five_seconds_randomised():
    for r in (0.0, 0.5, 0.999):
        consent = ConsentFreshness(100.0, rand=lambda r=r: r)
        first = consent.next_check - 100.0
        assert 0.8 * CONSENT_INTERVAL <= first <= 1.2 * CONSENT_INTERVAL
        assert not consent.due(100.0 + first - 0.01)
        assert consent.due(100.0 + first)
        assert not consent.due(100.0 + first)  # one check per slot; the next is scheduled
        assert consent.next_check > 100.0 + first


def test_consent_lasts_thirty_seconds_after_the_last_answer():
    consent = ConsentFreshness(0.0, rand=lambda: 0.5)
    assert not consent.lost(29.9)
    assert consent.lost(30.0)
    consent.answered(25.0)
    assert not consent.lost(54.9)
    assert consent.lost(25.0 + CONSENT_LOST_AFTER)


def test_an_old_answer_never_moves_consent_back():
    consent = ConsentFreshness(0.0)
    consent.answered(20.0)
    consent.answered(10.0)  # a late response to an earlier check
    assert consent.last_answer == 20.0


def test_silence_alone_never_loses_consent():
    """A muted or held peer sends no media but answers checks: consent stays."""
    consent = ConsentFreshness(0.0, rand=lambda: 0.5)
    now = 0.0
    while now < 600.0:
        now = consent.wake(now)
        if consent.due(now):
            consent.answered(now + 0.05)
        assert not consent.lost(now)


def test_wake_is_the_next_check_or_the_expiry():
    consent = ConsentFreshness(0.0, rand=lambda: 0.5)
    assert consent.wake(0.0) == consent.next_check == CONSENT_INTERVAL
    consent.next_check = 1000.0
    assert consent.wake(0.0) == CONSENT_LOST_AFTER


# --- the restart policy ----------------------------------------------------------------


def run(*inputs: PathInput) -> tuple[Liveness, list[tuple[PathAction, ...]]]:
    path = Liveness()
    return path, [path.handle(i) for i in inputs]


def test_conversations_answers_our_restart():
    path, actions = run(PathInput.ADDRESS_GONE, PathInput.PEER_RESTART, PathInput.CONNECTED)
    assert actions == [(PathAction.OFFER_RESTART,), (PathAction.CHECK,), (PathAction.USE_NEW,)]
    assert path.state is PathState.UP


def test_dino_never_answers_but_the_old_pair_works():
    path, actions = run(PathInput.ADDRESS_GONE, PathInput.ANSWER_TIMEOUT, PathInput.OLD_ALIVE)
    assert actions[1:] == [(PathAction.PROBE_OLD,), (PathAction.USE_OLD,)]
    assert path.state is PathState.UP and path.why is None


def test_dino_never_answers_and_the_old_pair_is_gone():
    path, actions = run(PathInput.ADDRESS_GONE, PathInput.ANSWER_TIMEOUT, PathInput.OLD_DEAD)
    assert actions[-1] == (PathAction.END,)
    assert path.state is PathState.FAILED and "did not answer" in (path.why or "")


def test_the_peer_restarts_and_we_answer_with_candidates():
    path, actions = run(PathInput.PEER_RESTART, PathInput.CONNECT_FAILED)
    assert actions[0] == (PathAction.ANSWER_RESTART, PathAction.CHECK)
    assert path.state is PathState.FAILED and path.why


def test_a_late_answer_while_probing_is_taken():
    path, actions = run(PathInput.CONSENT_LOST, PathInput.ANSWER_TIMEOUT,
                        PathInput.PEER_RESTART, PathInput.CONNECTED)
    assert actions[2:] == [(PathAction.CHECK,), (PathAction.USE_NEW,)]
    assert path.state is PathState.UP


def test_a_second_loss_during_a_restart_changes_nothing():
    path, actions = run(PathInput.ADDRESS_GONE, PathInput.CONSENT_LOST, PathInput.ADDRESS_GONE)
    assert actions[1:] == [(), ()]
    assert path.state is PathState.OFFERED


@given(st.lists(st.sampled_from(list(PathInput)), max_size=12))
def test_only_the_table_moves_the_state(inputs):
    path = Liveness()
    for event in inputs:
        before = path.state
        actions = path.handle(event)
        step = TRANSITIONS.get((before, event))
        if step is None:
            assert actions == () and path.state is before
        else:
            assert path.state is step.to and actions == step.actions
        if PathAction.END in actions:
            assert path.state is PathState.FAILED and path.why
    # FAILED is final: nothing leads out of it.
    assert not [k for k in TRANSITIONS if k[0] is PathState.FAILED]


def test_every_state_but_failed_is_reachable_and_can_end():
    reachable = {PathState.UP} | {step.to for step in TRANSITIONS.values()}
    assert reachable == set(PathState)
    ending = {state for (state, _), step in TRANSITIONS.items() if PathAction.END in step.actions}
    assert ending == {PathState.CHECKING, PathState.PROBING}
