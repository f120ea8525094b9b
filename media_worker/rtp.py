"""RTP and RTCP packets (RFC 3550), pure: bytes in, dataclasses out, and back.

RTP and RTCP share one ICE component (rtcp-mux, RFC 5761 §4): a packet whose
second byte is 192..223 is RTCP, anything else RTP.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field

RTP_VERSION = 2
RTCP_SR = 200
RTCP_RR = 201
RTCP_SDES = 202
RTCP_BYE = 203
NTP_EPOCH_OFFSET = 2208988800  # seconds from 1900 to 1970


class PacketError(ValueError):
    """Not a well-formed RTP/RTCP packet."""


def is_rtcp(data: bytes) -> bool:
    """RFC 5761 §4: demultiplex by the payload type field."""
    return len(data) >= 2 and 192 <= data[1] <= 223


@dataclass(frozen=True)
class RtpPacket:
    """RFC 3550 §5.1 fixed header plus payload (extensions kept opaque)."""

    payload_type: int
    sequence: int
    timestamp: int
    ssrc: int
    payload: bytes = b""
    marker: bool = False
    csrc: tuple[int, ...] = ()
    extension: tuple[int, bytes] | None = None  # (profile, data)

    def encode(self) -> bytes:
        first = (RTP_VERSION << 6) | (0x10 if self.extension else 0) | len(self.csrc)
        second = (0x80 if self.marker else 0) | (self.payload_type & 0x7F)
        out = bytearray(struct.pack("!BBHII", first, second, self.sequence & 0xFFFF,
                                    self.timestamp & 0xFFFFFFFF, self.ssrc))
        for c in self.csrc:
            out += struct.pack("!I", c)
        if self.extension is not None:
            profile, data = self.extension
            if len(data) % 4:
                raise PacketError("RTP header extension must be a multiple of 4 bytes")
            out += struct.pack("!HH", profile, len(data) // 4) + data
        return bytes(out + self.payload)

    @classmethod
    def decode(cls, data: bytes) -> RtpPacket:
        if len(data) < 12:
            raise PacketError("RTP packet shorter than its header")
        first, second, seq, ts, ssrc = struct.unpack_from("!BBHII", data)
        if first >> 6 != RTP_VERSION:
            raise PacketError(f"RTP version {first >> 6}")
        offset = 12
        cc = first & 0x0F
        if len(data) < offset + 4 * cc:
            raise PacketError("truncated CSRC list")
        csrc = struct.unpack_from(f"!{cc}I", data, offset)
        offset += 4 * cc
        extension = None
        if first & 0x10:
            if len(data) < offset + 4:
                raise PacketError("truncated header extension")
            profile, length = struct.unpack_from("!HH", data, offset)
            offset += 4
            if len(data) < offset + 4 * length:
                raise PacketError("truncated header extension")
            extension = (profile, bytes(data[offset:offset + 4 * length]))
            offset += 4 * length
        end = len(data)
        if first & 0x20:
            padding = data[-1]
            if padding == 0 or padding > end - offset:
                raise PacketError("bad padding")
            end -= padding
        return cls(second & 0x7F, seq, ts, ssrc, bytes(data[offset:end]), bool(second & 0x80),
                   tuple(csrc), extension)


@dataclass(frozen=True)
class ReportBlock:
    """RFC 3550 §6.4.1 reception report block."""

    ssrc: int
    fraction_lost: int  # 0..255, fixed point /256
    cumulative_lost: int  # signed 24 bits
    highest_sequence: int  # extended
    jitter: int  # in timestamp units
    last_sr: int  # middle 32 bits of the NTP timestamp of the last SR
    delay_since_last_sr: int  # 1/65536 s

    def encode(self) -> bytes:
        lost = self.cumulative_lost & 0xFFFFFF
        return struct.pack("!IBBHIIII", self.ssrc, self.fraction_lost, lost >> 16,
                           lost & 0xFFFF, self.highest_sequence & 0xFFFFFFFF,
                           self.jitter & 0xFFFFFFFF, self.last_sr & 0xFFFFFFFF,
                           self.delay_since_last_sr & 0xFFFFFFFF)

    @classmethod
    def decode(cls, data: bytes, offset: int) -> ReportBlock:
        ssrc, fraction, hi, lo, highest, jitter, lsr, dlsr = struct.unpack_from(
            "!IBBHIIII", data, offset)
        lost = (hi << 16) | lo
        if lost & 0x800000:
            lost -= 1 << 24
        return cls(ssrc, fraction, lost, highest, jitter, lsr, dlsr)


@dataclass(frozen=True)
class SenderReport:
    """RFC 3550 §6.4.1 SR."""

    ssrc: int
    ntp_timestamp: int  # 64-bit NTP
    rtp_timestamp: int
    packet_count: int
    octet_count: int
    reports: tuple[ReportBlock, ...] = ()


@dataclass(frozen=True)
class ReceiverReport:
    """RFC 3550 §6.4.2 RR."""

    ssrc: int
    reports: tuple[ReportBlock, ...] = ()


@dataclass(frozen=True)
class Bye:
    """RFC 3550 §6.6."""

    sources: tuple[int, ...] = field(default=())


RtcpPacket = SenderReport | ReceiverReport | Bye


def _header(count: int, packet_type: int, body_len: int) -> bytes:
    return struct.pack("!BBH", (RTP_VERSION << 6) | count, packet_type, body_len // 4)


def encode_rtcp(packet: RtcpPacket) -> bytes:
    if isinstance(packet, SenderReport):
        body = struct.pack("!IQIII", packet.ssrc, packet.ntp_timestamp,
                           packet.rtp_timestamp & 0xFFFFFFFF, packet.packet_count & 0xFFFFFFFF,
                           packet.octet_count & 0xFFFFFFFF)
        body += b"".join(r.encode() for r in packet.reports)
        return _header(len(packet.reports), RTCP_SR, len(body)) + body
    if isinstance(packet, ReceiverReport):
        body = struct.pack("!I", packet.ssrc) + b"".join(r.encode() for r in packet.reports)
        return _header(len(packet.reports), RTCP_RR, len(body)) + body
    body = b"".join(struct.pack("!I", s) for s in packet.sources)
    return _header(len(packet.sources), RTCP_BYE, len(body)) + body


def decode_rtcp(data: bytes) -> list[RtcpPacket]:
    """A compound RTCP packet (RFC 3550 §6.1); unknown types are skipped."""
    out: list[RtcpPacket] = []
    offset = 0
    while offset < len(data):
        if len(data) - offset < 4:
            raise PacketError("truncated RTCP header")
        first, packet_type, length = struct.unpack_from("!BBH", data, offset)
        if first >> 6 != RTP_VERSION:
            raise PacketError(f"RTCP version {first >> 6}")
        count = first & 0x1F
        end = offset + 4 + 4 * length
        if end > len(data):
            raise PacketError("truncated RTCP packet")
        body = offset + 4
        if packet_type == RTCP_SR:
            if end - body < 24 + 24 * count:
                raise PacketError("short SR")
            ssrc, ntp, rtp_ts, packets, octets = struct.unpack_from("!IQIII", data, body)
            reports = tuple(ReportBlock.decode(data, body + 24 + 24 * i) for i in range(count))
            out.append(SenderReport(ssrc, ntp, rtp_ts, packets, octets, reports))
        elif packet_type == RTCP_RR:
            if end - body < 4 + 24 * count:
                raise PacketError("short RR")
            (ssrc,) = struct.unpack_from("!I", data, body)
            reports = tuple(ReportBlock.decode(data, body + 4 + 24 * i) for i in range(count))
            out.append(ReceiverReport(ssrc, reports))
        elif packet_type == RTCP_BYE:
            if end - body < 4 * count:
                raise PacketError("short BYE")
            out.append(Bye(struct.unpack_from(f"!{count}I", data, body)))
        offset = end
    return out


def ntp_timestamp(unix_seconds: float) -> int:
    """64-bit NTP timestamp of a Unix time."""
    seconds = int(unix_seconds) + NTP_EPOCH_OFFSET
    fraction = int((unix_seconds % 1) * (1 << 32))
    return (seconds << 32) | fraction


def ntp_middle(ntp: int) -> int:
    """The middle 32 bits, as carried in LSR (RFC 3550 §6.4.1)."""
    return (ntp >> 16) & 0xFFFFFFFF
