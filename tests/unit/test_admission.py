"""signalling.admission: who may ring, and the IQ budget of one peer (pure, fed a clock)."""

from collections import Counter

from hypothesis import given
from hypothesis import strategies as st

from signalling.admission import Admission, Bounds


def test_a_burst_is_allowed_then_the_rate():
    gate = Admission(stranger=Bounds(3, rate=10.0, burst=5.0))
    assert [gate.allow_iq("eve@x", 0.0) for _ in range(7)] == [True] * 5 + [False] * 2
    assert gate.allow_iq("eve@x", 0.05) is False  # half a token
    assert gate.allow_iq("eve@x", 0.1) is True  # one token refilled
    assert gate.allow_iq("bob@x", 0.1) is True  # every peer has its own bucket


def test_a_bucket_never_holds_more_than_the_burst():
    gate = Admission(stranger=Bounds(3, rate=10.0, burst=3.0))
    gate.allow_iq("eve@x", 0.0)
    assert sum(gate.allow_iq("eve@x", 1000.0) for _ in range(10)) == 3


@given(st.lists(st.floats(min_value=0, max_value=0.5), min_size=1, max_size=300))
def test_what_passes_never_exceeds_burst_plus_rate_times_time(gaps):
    gate = Admission(stranger=Bounds(3, rate=20.0, burst=10.0))
    now, passed = 0.0, 0
    for gap in gaps:
        now += gap
        passed += gate.allow_iq("eve@x", now)
    assert passed <= 10 + 20.0 * now + 1e-9


def test_many_peers_are_forgotten_rather_than_remembered_forever():
    gate = Admission(stranger=Bounds(3, rate=10.0, burst=5.0))
    for i in range(10_000):
        gate.allow_iq(f"p{i}@x", float(i) * 0.001)
    assert len(gate._buckets) <= 4096


def test_pending_sessions_are_capped_per_peer_and_in_total():
    gate = Admission(stranger=Bounds(2, 1, 1), contact=Bounds(4, 1, 1), strangers_pending=5,
                     all_pending=8)
    none: set[str] = set()
    assert gate.why_not_ring("eve@x", Counter(), none) is None
    assert gate.why_not_ring("eve@x", Counter({"eve@x": 1}), none) is None
    assert "eve@x" in gate.why_not_ring("eve@x", Counter({"eve@x": 2}), none)
    full = Counter({"a@x": 2, "b@x": 2, "c@x": 1})
    assert gate.why_not_ring("d@x", full, none) is not None
    assert gate.why_not_ring("d@x", Counter({"a@x": 2, "b@x": 2}), none) is None
    # A contact is not held back by strangers, and gets a wider cap of its own...
    assert gate.why_not_ring("bob@x", full, {"bob@x"}) is None
    assert gate.why_not_ring("bob@x", Counter({"bob@x": 3}), {"bob@x"}) is None
    assert gate.why_not_ring("bob@x", Counter({"bob@x": 4}), {"bob@x"}) is not None
    # ...but everyone together is bounded.
    assert gate.why_not_ring("bob@x", full + Counter({"x@x": 3}), {"bob@x"}) is not None


def test_contacts_get_a_wider_iq_budget():
    gate = Admission(stranger=Bounds(3, 10.0, 5.0), contact=Bounds(3, 100.0, 50.0))
    assert sum(gate.allow_iq("eve@x", 0.0) for _ in range(100)) == 5
    assert sum(gate.allow_iq("bob@x", 0.0, trusted=True) for _ in range(100)) == 50
