"""The jitter buffer fed synthetic streams: reordering, loss, jitter."""

import itertools
import random

from hypothesis import given, settings
from hypothesis import strategies as st

from media_worker.jitter import Concealed, JitterBuffer, Played


def drain(buffer, now=0.0):
    """Pop while packets remain (without provoking an underrun)."""
    out = []
    while buffer.size:
        item = buffer.pop(now)
        if item is not None:
            out.append(item)
    return out


def test_reorders():
    jb = JitterBuffer(min_depth=3)
    for seq in (1, 3, 2, 5, 4):
        jb.push(seq, f"p{seq}".encode(), seq * 0.02)
    out = drain(jb)
    assert [p.sequence for p in out] == [1, 2, 3, 4, 5]
    assert all(isinstance(p, Played) for p in out)


def test_conceals_a_gap_with_fec_hint():
    jb = JitterBuffer(min_depth=2)
    for seq in (1, 2, 4, 5):
        jb.push(seq, f"p{seq}".encode(), seq * 0.02)
    out = drain(jb)
    assert [type(p).__name__ for p in out] == ["Played", "Played", "Concealed", "Played",
                                               "Played"]
    assert out[2] == Concealed(3, b"p4")  # the next packet is there: FEC can recover
    assert jb.stats.concealed == 1


def test_late_and_duplicate_packets_are_dropped():
    jb = JitterBuffer(min_depth=1)
    jb.push(1, b"a", 0.02)
    assert jb.pop(0.02) == Played(1, b"a")
    assert jb.push(1, b"a", 0.03) is False  # already played
    jb.push(3, b"c", 0.06)
    assert jb.push(3, b"c", 0.06) is False
    assert jb.stats.late == 1 and jb.stats.duplicates == 1


def test_depth_grows_with_jitter_and_shrinks_when_calm():
    rng = random.Random(7)
    jb = JitterBuffer()
    seq = 0
    for _ in range(300):  # 6 s with +-40 ms of jitter
        seq += 1
        jb.push(seq, b"x", seq * 0.02 + rng.uniform(0, 0.08))
        jb.pop(seq * 0.02)
    jittery_depth = jb.target
    assert jittery_depth >= 5
    for _ in range(1500):  # 30 s steady
        seq += 1
        jb.push(seq, b"x", seq * 0.02 + 0.08)
        jb.pop(seq * 0.02)
    assert jb.target < jittery_depth
    assert jb.target <= 3


def test_underrun_rebuffers_and_raises_target():
    jb = JitterBuffer(min_depth=1)
    jb.push(1, b"a", 0.0)
    assert jb.pop(0.0) == Played(1, b"a")
    assert jb.pop(0.02) == Concealed(2, None)  # nothing arrived in time: underrun
    assert jb.stats.underruns == 1 and jb.target == 2
    jb.push(2, b"b", 0.05)  # arrives late: already concealed
    assert jb.stats.late == 1
    jb.push(3, b"c", 0.06)
    assert jb.pop(0.06) is None  # rebuffering to the new depth of 2
    jb.push(4, b"d", 0.08)
    assert jb.pop(0.08) == Played(3, b"c")


def test_loss_stream_plays_in_order():
    rng = random.Random(1)
    jb = JitterBuffer()
    played = []
    for seq in range(1, 1001):
        if rng.random() > 0.2:  # 20 % loss
            jb.push(seq, str(seq).encode(), seq * 0.02 + rng.uniform(0, 0.03))
        item = jb.pop(seq * 0.02)
        if item is not None:
            played.append(item)
    seqs = [p.sequence for p in played]
    assert seqs == sorted(seqs) and len(set(seqs)) == len(seqs)
    concealed = sum(isinstance(p, Concealed) for p in played)
    assert 100 < concealed < 350


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(st.integers(1, 400), st.floats(0, 0.2)), max_size=300),
       st.integers(1, 6))
def test_playout_is_ordered_unique_and_truthful(arrivals, min_depth):
    """Any arrival order, delay, loss or duplication: frames come out in strictly
    increasing order, each at most once, and a played frame is one that arrived."""
    jb = JitterBuffer(min_depth=min_depth)
    events = sorted((seq * 0.02 + delay, seq) for seq, delay in arrivals)
    sent = {seq for seq, _ in arrivals}
    out = []
    t, i = 0.0, 0
    while t < 9.0:
        while i < len(events) and events[i][0] <= t:
            jb.push(events[i][1], str(events[i][1]).encode(), events[i][0])
            i += 1
        item = jb.pop(t)
        if item is not None:
            out.append(item)
        t += 0.02
    seqs = [p.sequence for p in out]
    assert all(a < b for a, b in itertools.pairwise(seqs))
    for p in out:
        if isinstance(p, Played):
            assert p.sequence in sent and p.payload == str(p.sequence).encode()
    assert jb.min_depth <= jb.target <= jb.max_depth
