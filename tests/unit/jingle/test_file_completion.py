"""How a transfer ends (signalling/jingle/file_completion.py), fed the XEP-0234 §7
flows and the ways real peers end (Dino: no hash, no <received/>, success; or
nothing at all), with a clock passed in; Hypothesis over (stage, input)."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from signalling.jingle.file_completion import (
    CHECKSUM_WAIT,
    CONFIRM_WAIT,
    TRANSITIONS,
    BytesDone,
    Commit,
    Committed,
    Complete,
    End,
    FileCompletion,
    PeerHash,
    PeerReceived,
    SendChecksum,
    SendReceived,
    SessionEnded,
    Stage,
    Tick,
)
from signalling.jingle.states import Reason

SHA = "a" * 64
XEP_HASH = PeerHash("sha-1", "552da749930852c69ae5d2141d3766b1")  # XEP-0234 §7.1's value


def test_the_sender_announces_its_hash_and_completes_on_received():
    done = FileCompletion(sending=True, size=1000)
    assert done.handle(BytesDone(SHA), 0.0) == [SendChecksum("sha-256", SHA)]
    assert done.stage is Stage.AWAIT_CONFIRM and done.get_timer() is not None
    assert done.handle(PeerReceived(), 1.0) == [Complete(SHA, verified=True)]
    assert done.get_timer() is None
    assert done.handle(SessionEnded("success"), 2.0) == []  # already complete


def test_the_sender_announces_the_configured_algorithm():
    done = FileCompletion(sending=True, size=10)
    assert done.handle(BytesDone(SHA, "sha3-256", "b" * 64), 0.0) == [
        SendChecksum("sha3-256", "b" * 64)]


def test_success_without_received_completes_unconfirmed():
    """Dino ends with success and never sends <received/>."""
    done = FileCompletion(sending=True, size=10)
    done.handle(BytesDone(SHA), 0.0)
    assert done.handle(SessionEnded("success"), 3.0) == [Complete(SHA, verified=False)]


def test_a_silent_receiver_ends_the_session_after_the_bound():
    """Dino 0.4 acknowledges in-band blocks it has given up on and never answers."""
    done = FileCompletion(sending=True, size=100_000_000)
    done.handle(BytesDone(SHA), 10.0)
    due = done.get_timer()
    assert due == 10.0 + CONFIRM_WAIT + 2.0  # 100 MB to hash at 50 MB/s
    assert done.handle(Tick(due - 0.1), due - 0.1) == []
    assert done.handle(Tick(due), due) == [
        End(Reason.TIMEOUT, "the receiver never confirmed the file")]
    assert done.stage is Stage.DONE


def test_a_session_that_ends_before_the_bytes_completes_nothing():
    done = FileCompletion(sending=True, size=10)
    assert done.handle(SessionEnded("success"), 0.0) == []


def test_the_receiver_verifies_against_the_offered_hash():
    done = FileCompletion(sending=False, size=10, peer_hash=XEP_HASH)
    assert done.handle(BytesDone(SHA), 0.0) == [Commit("sha-1", XEP_HASH.hex)]
    assert done.handle(Committed("/d/f", True), 0.1) == [
        Complete(SHA, True, "/d/f"), SendReceived(), End(Reason.SUCCESS, "received")]


def test_a_checksum_after_the_bytes_is_waited_for():
    """XEP-0234 §7.1: the sender's checksum may follow the last byte."""
    done = FileCompletion(sending=False, size=10)
    assert done.handle(BytesDone(SHA), 0.0) == []
    assert done.get_timer() == CHECKSUM_WAIT
    assert done.handle(XEP_HASH, 0.5) == [Commit("sha-1", XEP_HASH.hex)]
    assert done.get_timer() is None


def test_no_checksum_at_all_keeps_the_file_unverified():
    done = FileCompletion(sending=False, size=10)
    done.handle(BytesDone(SHA), 0.0)
    assert done.handle(Tick(CHECKSUM_WAIT), CHECKSUM_WAIT) == [Commit(None, None)]
    assert done.handle(Committed("/d/f", False), 4.0) == [
        Complete(SHA, False, "/d/f"), SendReceived(), End(Reason.SUCCESS, "unverified")]


def test_a_mismatch_ends_with_media_error_and_no_received():
    done = FileCompletion(sending=False, size=10, peer_hash=XEP_HASH)
    done.handle(BytesDone(SHA), 0.0)
    assert done.handle(Committed(None, False), 0.1) == [
        Complete(SHA, False, None), End(Reason.MEDIA_ERROR, "hash mismatch")]


def test_a_checksum_during_the_transfer_is_kept_for_the_end():
    done = FileCompletion(sending=False, size=10)
    assert done.handle(XEP_HASH, 0.0) == []
    assert done.handle(BytesDone(SHA), 1.0) == [Commit("sha-1", XEP_HASH.hex)]


INPUTS = st.one_of(
    st.builds(BytesDone, st.just(SHA)), st.just(XEP_HASH), st.just(PeerReceived()),
    st.builds(Committed, st.sampled_from([None, "/d/f"]), st.booleans()),
    st.builds(SessionEnded, st.sampled_from([None, "success", "timeout"])),
    st.builds(Tick, st.floats(0, 1000)))


@given(sending=st.booleans(), inputs=st.lists(INPUTS, max_size=10))
def test_only_the_table_moves_the_stage(sending, inputs):
    done = FileCompletion(sending=sending, size=10)
    completes = 0
    for now, event in enumerate(inputs):
        before = done.stage
        outs = done.handle(event, float(now))
        if (sending, before, type(event)) not in TRANSITIONS:
            assert outs == [] and done.stage is before
        completes += sum(isinstance(o, Complete) for o in outs)
        if before is Stage.DONE:
            assert outs == []
        if done.stage is Stage.DONE:
            assert done.get_timer() is None
        if any(isinstance(o, End) for o in outs):
            assert done.stage is Stage.DONE
    assert completes <= 1  # transfer.complete at most once
