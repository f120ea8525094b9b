"""signalling.admission: who may ring, and the IQ budget of one peer (pure, fed a clock)."""

from collections import Counter

from hypothesis import given
from hypothesis import strategies as st

from signalling.admission import Admission


def test_a_burst_is_allowed_then_the_rate():
    gate = Admission(rate=10.0, burst=5.0)
    assert [gate.allow_iq("eve@x", 0.0) for _ in range(7)] == [True] * 5 + [False] * 2
    assert gate.allow_iq("eve@x", 0.05) is False  # half a token
    assert gate.allow_iq("eve@x", 0.1) is True  # one token refilled
    assert gate.allow_iq("bob@x", 0.1) is True  # every peer has its own bucket


def test_a_bucket_never_holds_more_than_the_burst():
    gate = Admission(rate=10.0, burst=3.0)
    gate.allow_iq("eve@x", 0.0)
    assert sum(gate.allow_iq("eve@x", 1000.0) for _ in range(10)) == 3


@given(st.lists(st.floats(min_value=0, max_value=0.5), min_size=1, max_size=300))
def test_what_passes_never_exceeds_burst_plus_rate_times_time(gaps):
    gate = Admission(rate=20.0, burst=10.0)
    now, passed = 0.0, 0
    for gap in gaps:
        now += gap
        passed += gate.allow_iq("eve@x", now)
    assert passed <= 10 + 20.0 * now + 1e-9


def test_many_peers_are_forgotten_rather_than_remembered_forever():
    gate = Admission(rate=10.0, burst=5.0)
    for i in range(10_000):
        gate.allow_iq(f"p{i}@x", float(i) * 0.001)
    assert len(gate._buckets) <= 4096


def test_pending_sessions_are_capped_per_peer_and_in_total():
    gate = Admission(per_peer_pending=2, total_pending=5)
    assert gate.why_not_ring("eve@x", Counter()) is None
    assert gate.why_not_ring("eve@x", Counter({"eve@x": 1})) is None
    assert "eve@x" in gate.why_not_ring("eve@x", Counter({"eve@x": 2}))
    full = Counter({"a@x": 2, "b@x": 2, "c@x": 1})
    assert gate.why_not_ring("d@x", full) is not None
    assert gate.why_not_ring("d@x", Counter({"a@x": 2, "b@x": 2})) is None
