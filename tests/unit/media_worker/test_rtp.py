"""RTP/RTCP packets (RFC 3550) and receiver statistics."""

import pytest
from hypothesis import given
from hypothesis import strategies as st

from media_worker.reception import ReceptionStats
from media_worker.rtp import (
    Bye,
    PacketError,
    ReceiverReport,
    ReportBlock,
    RtpPacket,
    SenderReport,
    decode_rtcp,
    encode_rtcp,
    is_rtcp,
    ntp_middle,
    ntp_timestamp,
)

# RFC 3550 §5.1 header: V=2, M=1, PT=111, seq 0x1234, ts 0xdeadbeef, ssrc 0x01020304.
KNOWN = bytes.fromhex("80ef1234deadbeef01020304") + b"opus"


def test_known_header_bytes():
    pkt = RtpPacket.decode(KNOWN)
    assert (pkt.payload_type, pkt.marker, pkt.sequence, pkt.timestamp, pkt.ssrc) == (
        111, True, 0x1234, 0xDEADBEEF, 0x01020304)
    assert pkt.payload == b"opus"
    assert pkt.encode() == KNOWN
    assert not is_rtcp(KNOWN)


@given(st.integers(0, 127), st.integers(0, 0xFFFF), st.integers(0, 0xFFFFFFFF),
       st.integers(0, 0xFFFFFFFF), st.binary(max_size=200), st.booleans(),
       st.lists(st.integers(0, 0xFFFFFFFF), max_size=15),
       st.one_of(st.none(), st.tuples(st.integers(0, 0xFFFF),
                                      st.binary(max_size=8).map(lambda b: b.ljust(8, b"\0")))))
def test_rtp_round_trip(pt, seq, ts, ssrc, payload, marker, csrc, ext):
    pkt = RtpPacket(pt, seq, ts, ssrc, payload, marker, tuple(csrc), ext)
    assert RtpPacket.decode(pkt.encode()) == pkt


def test_padding_is_stripped():
    padded = bytearray(KNOWN + b"\0\0\3")
    padded[0] |= 0x20
    assert RtpPacket.decode(bytes(padded)).payload == b"opus"


@pytest.mark.parametrize("data", [b"", b"\x80\x00", bytes.fromhex("40ef1234deadbeef01020304"),
                                  bytes.fromhex("8fef1234deadbeef01020304")])
def test_bad_rtp(data):
    with pytest.raises(PacketError):
        RtpPacket.decode(data)


def test_rtcp_compound_round_trip():
    block = ReportBlock(0xAABBCCDD, 25, -3, 70000, 120, 0x11223344, 65536)
    sr = SenderReport(1, ntp_timestamp(1_700_000_000.5), 48000, 50, 4000, (block,))
    rr = ReceiverReport(2, (block, block))
    data = encode_rtcp(sr) + encode_rtcp(rr) + encode_rtcp(Bye((1,)))
    assert is_rtcp(data)
    assert decode_rtcp(data) == [sr, rr, Bye((1,))]
    assert len(encode_rtcp(sr)) == 28 + 24  # RFC 3550 §6.4.1 sizes


def test_ntp_middle_bits():
    ntp = ntp_timestamp(1.5)
    assert ntp >> 32 == 2208988801 and ntp_middle(ntp) == ((2208988801 & 0xFFFF) << 16) | 0x8000


def test_truncated_rtcp():
    data = encode_rtcp(ReceiverReport(2, (ReportBlock(1, 0, 0, 0, 0, 0, 0),)))
    with pytest.raises(PacketError):
        decode_rtcp(data[:-4])


def test_reception_loss_wrap_and_jitter():
    stats = ReceptionStats(clock_rate=48000)
    t = 0.0
    seqs = [65533, 65534, 65535, 0, 2, 3]  # wraps, and 1 is lost
    for i, seq in enumerate(seqs):
        stats.update(seq, i * 960, t + i * 0.02)
    assert stats.expected == 7 and stats.received == 6 and stats.lost == 1
    assert stats.extended_max == 65536 + 3
    assert stats.jitter_ms() == 0  # arrivals exactly on the timestamps' clock
    assert stats.interval_fraction_lost() == (1 << 8) // 7
    assert stats.interval_fraction_lost() == 0


def test_reception_reordered_packet_is_not_lost():
    stats = ReceptionStats(clock_rate=48000)
    for seq in (10, 12, 11, 13):
        stats.update(seq, seq * 960, seq * 0.02)
    assert stats.lost == 0 and stats.expected == 4


def test_reception_jitter_follows_arrival_spread():
    stats = ReceptionStats(clock_rate=48000)
    for i in range(200):
        stats.update(i, i * 960, i * 0.02 + (0.01 if i % 2 else 0.0))
    assert 5.0 < stats.jitter_ms() < 11.0  # converges towards the 10 ms alternation
