"""FEC follows the loss the peer reports (media_worker/loss_protection.py)."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from media_worker.codecs import OpusCodec, PcmuCodec
from media_worker.loss_protection import CLEAN_SPAN, PROTECTED, UNPROTECTED, LossProtection


def test_protected_until_reports_show_a_clean_path_for_the_whole_span():
    policy = LossProtection()
    assert policy.percent == PROTECTED
    assert policy.on_report(0, 100.0) is None
    assert policy.on_report(0, 100.0 + CLEAN_SPAN - 1) is None
    assert policy.on_report(0, 100.0 + CLEAN_SPAN) == UNPROTECTED
    assert policy.on_report(0, 200.0) is None  # told once


def test_any_reported_loss_protects_again_and_restarts_the_clean_span():
    policy = LossProtection()
    policy.on_report(0, 0.0)
    policy.on_report(0, CLEAN_SPAN)
    assert policy.on_report(3, CLEAN_SPAN + 1) == PROTECTED  # 3/256 is about 1 %
    assert policy.on_report(0, CLEAN_SPAN + 2) is None
    assert policy.on_report(0, CLEAN_SPAN + 2 + CLEAN_SPAN - 0.5) is None
    assert policy.on_report(0, CLEAN_SPAN + 2 + CLEAN_SPAN) == UNPROTECTED


@given(st.lists(st.tuples(st.integers(0, 255), st.floats(0, 5)), max_size=60))
def test_unprotected_only_after_a_clean_span(reports):
    """Whatever the reports, FEC is off only when the last CLEAN_SPAN seconds of
    reports were all loss-free, and a change is reported exactly when it happens."""
    policy, now, clean_since = LossProtection(), 0.0, None
    for fraction, step in reports:
        now += step
        before = policy.percent
        change = policy.on_report(fraction, now)
        clean_since = None if fraction else (now if clean_since is None else clean_since)
        assert (change is not None) == (policy.percent != before)
        if policy.percent == UNPROTECTED:
            assert clean_since is not None and now - clean_since >= CLEAN_SPAN


def _recovered_error(expected_loss: int) -> float:
    """A 300 Hz tone turns 700 Hz at frame 40, which is lost; the receiver conceals it
    from frame 41's packet. Concealment alone can only go on with 300 Hz; the FEC copy
    knows 700 Hz. The error is the spectrum's distance from decoding frame 40 itself."""
    import numpy as np

    from media_worker.audio import ToneSource
    low, high = ToneSource(300), ToneSource(700)
    frames = [low.read() for _ in range(40)] + [high.read() for _ in range(2)]
    sender, receiver, reference = OpusCodec(), OpusCodec(), OpusCodec()
    sender.expect_loss(expected_loss)
    packets = [sender.encode(frame) for frame in frames]
    for packet in packets[:40]:
        receiver.decode(packet)
        reference.decode(packet)

    def spectrum(pcm: bytes) -> np.ndarray:
        return np.abs(np.fft.rfft(np.frombuffer(pcm, dtype=np.int16).astype(float)))

    wanted = spectrum(reference.decode(packets[40]))
    return float(np.abs(spectrum(receiver.conceal(packets[41])) - wanted).sum() / wanted.sum())


def test_fec_is_in_the_packets_only_while_loss_is_expected():
    """The next packet carries a copy of the lost frame only when protected."""
    assert _recovered_error(PROTECTED) < _recovered_error(UNPROTECTED) / 2
    PcmuCodec().expect_loss(PROTECTED)  # no FEC in G.711: nothing to change, no error
