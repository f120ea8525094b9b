"""Audio codecs of a call: Opus (RFC 7587) and PCMU (G.711 mu-law) as a fallback.

The pipeline's PCM is 48 kHz mono signed 16-bit, 20 ms (960 samples) a frame.
Each codec turns one such frame into one RTP payload and back, conceals a lost
frame, and says how far the RTP timestamp advances per frame.
"""

from __future__ import annotations

from typing import Protocol

import numpy as np
import opuslib
import opuslib.api.ctl
import opuslib.api.encoder

from media_worker.loss_protection import PROTECTED

SAMPLE_RATE = 48000
FRAME_SAMPLES = 960  # 20 ms
FRAME_BYTES = FRAME_SAMPLES * 2
SILENCE = bytes(FRAME_BYTES)
# Opus encoder complexity (0..10). With in-band FEC, 8..10 cost twice what 5 costs
# per frame for little audible gain in speech; 5 lets one core carry ~2x the calls
# (bench/capacity.py, bench/quality.py measure both sides of the trade).
OPUS_COMPLEXITY = 5


class Codec(Protocol):
    name: str
    payload_type: int
    clock_rate: int
    timestamp_step: int  # RTP timestamp units per 20 ms frame

    def encode(self, pcm: bytes) -> bytes: ...
    def decode(self, payload: bytes) -> bytes: ...
    def conceal(self, next_payload: bytes | None) -> bytes: ...
    def expect_loss(self, percent: int) -> None: ...


class OpusCodec:
    """RFC 7587: clock rate always 48000; we send mono (legal in a 'channels=2' stream)."""

    name = "opus"
    clock_rate = 48000
    timestamp_step = FRAME_SAMPLES

    def __init__(self, payload_type: int = 111, fec: bool = True,
                 expected_loss_percent: int = PROTECTED) -> None:
        self.payload_type = payload_type
        self.fec = fec
        self._encoder = opuslib.Encoder(SAMPLE_RATE, 1, opuslib.APPLICATION_VOIP)
        opuslib.api.encoder.encoder_ctl(self._encoder.encoder_state,
                                        opuslib.api.ctl.set_complexity, OPUS_COMPLEXITY)
        if fec:
            # opuslib's inband_fec property setter drops its value; use the ctl directly.
            opuslib.api.encoder.encoder_ctl(self._encoder.encoder_state,
                                            opuslib.api.ctl.set_inband_fec, 1)
            self.expect_loss(expected_loss_percent)
        self._decoder = opuslib.Decoder(SAMPLE_RATE, 1)

    def encode(self, pcm: bytes) -> bytes:
        return bytes(self._encoder.encode(pcm, FRAME_SAMPLES))

    def decode(self, payload: bytes) -> bytes:
        return bytes(self._decoder.decode(payload, FRAME_SAMPLES))

    def conceal(self, next_payload: bytes | None) -> bytes:
        """FEC from the following packet when negotiated and present, else PLC."""
        if self.fec and next_payload:
            try:
                return bytes(self._decoder.decode(next_payload, FRAME_SAMPLES, decode_fec=True))
            except opuslib.OpusError:
                pass
        return bytes(self._decoder.decode(b"", FRAME_SAMPLES))

    def expect_loss(self, percent: int) -> None:
        """How much FEC to spend (media_worker/loss_protection.py); none without FEC."""
        if self.fec:
            opuslib.api.encoder.encoder_ctl(self._encoder.encoder_state,
                                            opuslib.api.ctl.set_packet_loss_perc, percent)


def _mulaw_tables() -> tuple[np.ndarray, np.ndarray]:
    # G.711 mu-law: decode table for all 256 codes, encode by nearest code.
    codes = np.arange(256, dtype=np.int32)
    u = ~codes & 0xFF
    sign = u & 0x80
    exponent = (u >> 4) & 0x07
    mantissa = u & 0x0F
    magnitude = ((mantissa << 3) + 0x84) << exponent
    decoded = np.where(sign != 0, 0x84 - magnitude, magnitude - 0x84).astype(np.int16)
    return decoded, np.argsort(decoded)


_MULAW_DECODE, _MULAW_ORDER = _mulaw_tables()
_MULAW_SORTED = _MULAW_DECODE[_MULAW_ORDER]


class PcmuCodec:
    """G.711 mu-law at 8 kHz (RFC 3551 §4.5.14), static payload type 0."""

    name = "PCMU"
    payload_type = 0
    clock_rate = 8000
    timestamp_step = 160

    def encode(self, pcm: bytes) -> bytes:
        samples = np.frombuffer(pcm, dtype=np.int16).astype(np.int32)
        narrow = samples.reshape(-1, 6).mean(axis=1)  # 48 kHz -> 8 kHz, boxcar low-pass
        index = np.searchsorted(_MULAW_SORTED, narrow).clip(1, 255)
        left, right = _MULAW_SORTED[index - 1], _MULAW_SORTED[index]
        nearest = np.where(narrow - left < right - narrow, index - 1, index)
        return bytes(_MULAW_ORDER[nearest].astype(np.uint8).tobytes())

    def decode(self, payload: bytes) -> bytes:
        narrow = _MULAW_DECODE[np.frombuffer(payload, dtype=np.uint8)]
        return bytes(np.repeat(narrow, 6).astype(np.int16).tobytes())

    def conceal(self, next_payload: bytes | None) -> bytes:
        return SILENCE

    def expect_loss(self, percent: int) -> None:
        pass  # G.711 has no FEC


def make_codec(name: str, payload_type: int, fec: bool) -> Codec:
    if name.lower() == "opus":
        return OpusCodec(payload_type, fec)
    if name.upper() == "PCMU":
        return PcmuCodec()
    raise ValueError(f"no codec {name!r}")
