"""Codec settings by cost and by quality on speech: CPU per encode+decode of a 20 ms
frame of espeak-ng speech, and wideband PESQ through codec and jitter buffer at
0 % and 10 % random loss, for plain opuslib at its defaults and for the settings
a call can be in. Needs espeak-ng and ``pesq`` (``scripts/bench.sh``).

    .venv/bin/python -m bench.codec_settings

This is what chose complexity 5 and the expected-loss rule of
``media_worker/loss_protection.py``.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np
import opuslib
import opuslib.api.ctl
import opuslib.api.encoder

from bench.charts import bars
from bench.quality import score, speech
from media_worker.codecs import FRAME_SAMPLES, OPUS_COMPLEXITY, SILENCE
from media_worker.loss_protection import PROTECTED


@dataclass
class PlainOpus:
    """opuslib with some settings; ``None`` leaves libopus's default."""

    complexity: int | None = None
    expected_loss: int | None = None  # None: no in-band FEC
    application: str = opuslib.APPLICATION_VOIP

    def __post_init__(self) -> None:
        self._encoder = opuslib.Encoder(48000, 1, self.application)
        state = self._encoder.encoder_state
        if self.complexity is not None:
            opuslib.api.encoder.encoder_ctl(state, opuslib.api.ctl.set_complexity,
                                            self.complexity)
        if self.expected_loss is not None:
            opuslib.api.encoder.encoder_ctl(state, opuslib.api.ctl.set_inband_fec, 1)
            opuslib.api.encoder.encoder_ctl(state, opuslib.api.ctl.set_packet_loss_perc,
                                            self.expected_loss)
        self._decoder = opuslib.Decoder(48000, 1)

    def encode(self, pcm: bytes) -> bytes:
        return bytes(self._encoder.encode(pcm, FRAME_SAMPLES))

    def decode(self, payload: bytes) -> bytes:
        return bytes(self._decoder.decode(payload, FRAME_SAMPLES))

    def conceal(self, next_payload: bytes | None) -> bytes:
        if self.expected_loss is not None and next_payload:
            return bytes(self._decoder.decode(next_payload, FRAME_SAMPLES, decode_fec=True))
        return bytes(self._decoder.decode(b"", FRAME_SAMPLES))

    def expect_loss(self, percent: int) -> None:
        pass


def frames_of(pcm: np.ndarray) -> list[bytes]:
    return [pcm[i:i + FRAME_SAMPLES].tobytes().ljust(len(SILENCE), b"\0")
            for i in range(0, len(pcm), FRAME_SAMPLES)]


def cost_us(settings: PlainOpus, frames: list[bytes], rounds: int = 3) -> float:
    """CPU microseconds per frame encoded and decoded (one call-second is 50 of each)."""
    codec = PlainOpus(settings.complexity, settings.expected_loss, settings.application)
    started = time.process_time()
    for _ in range(rounds):
        for frame in frames:
            codec.decode(codec.encode(frame))
    return (time.process_time() - started) / (rounds * len(frames)) * 1e6


CANDIDATES = {
    "opuslib defaults": PlainOpus(),
    "defaults + FEC": PlainOpus(None, PROTECTED),
    f"complexity {OPUS_COMPLEXITY}, no FEC (clean path)": PlainOpus(OPUS_COMPLEXITY, 0),
    f"complexity {OPUS_COMPLEXITY}, FEC {PROTECTED} % (ours)": PlainOpus(OPUS_COMPLEXITY,
                                                                      PROTECTED),
    f"complexity {OPUS_COMPLEXITY}, FEC 10 %": PlainOpus(OPUS_COMPLEXITY, 10),
    "complexity 3, FEC 5 %": PlainOpus(3, 5),
    "complexity 1, FEC 5 %": PlainOpus(1, 5),
}


def main() -> None:
    reference = speech()
    reference = reference[:len(reference) // 3 * 3]
    frames = frames_of(reference)
    print(f"codec settings: {len(reference) / 48000:.1f} s of espeak-ng speech; CPU per "
          "20 ms encode+decode, wideband PESQ at 0 % and 10 % loss")
    chart: dict[str, dict[str, float]] = {}
    baseline = cost_us(CANDIDATES["opuslib defaults"], frames)
    for name, settings in CANDIDATES.items():
        cost = baseline if name == "opuslib defaults" else cost_us(settings, frames)

        def make(settings: PlainOpus = settings) -> PlainOpus:
            return PlainOpus(settings.complexity, settings.expected_loss,
                             settings.application)

        clean, lossy = score(reference, 0.0, codec=make), score(reference, 0.10, codec=make)
        print(f"codec settings: {name:34s} {cost:6.1f} us ({cost / baseline:.2f}x defaults)"
              f"  PESQ {clean:.2f} clean, {lossy:.2f} at 10 % loss")
        chart[name] = {"cost / defaults": cost / baseline, "PESQ clean / 4.5": clean / 4.5,
                       "PESQ 10 % loss / 4.5": lossy / 4.5}
    bars("codec_settings", "Opus settings on speech: cost against defaults, PESQ (scaled)",
         "ratio", chart)


if __name__ == "__main__":
    main()
