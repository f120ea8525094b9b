"""Quality: wideband PESQ of speech sent through our Opus codec and jitter buffer at
0/10/20 % random loss, with FEC+PLC against without (lost frames left silent),
in the same run. Needs espeak-ng (speech) and the ``pesq`` package.

    .venv/bin/python -m bench.quality
"""

from __future__ import annotations

import random
import subprocess
import tempfile
from collections.abc import Callable
from pathlib import Path

import numpy as np
from pesq import pesq

from bench.charts import bars
from media_worker.audio import WavSource
from media_worker.codecs import FRAME_SAMPLES, SILENCE, Codec, OpusCodec
from media_worker.jitter import Concealed, JitterBuffer, Played

TEXT = ("The quick brown fox jumps over the lazy dog. Peer to peer voice calls over "
        "Jingle should stay clear even when the network drops packets. Seven slender "
        "swans swam silently southward.")


def speech() -> np.ndarray:
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "speech.wav"
        subprocess.run(["espeak-ng", "-w", str(path), TEXT], check=True, capture_output=True)
        source = WavSource(str(path))
        frames = len(source._samples) // FRAME_SAMPLES + 1
        return np.frombuffer(b"".join(source.read() for _ in range(frames)), dtype=np.int16)


def transmit(pcm: np.ndarray, loss: float, conceal: bool, seed: int,
             codec: Callable[[], Codec] | None = None) -> np.ndarray:
    """``pcm`` through encoder, ``loss`` random loss, jitter buffer and decoder; lost
    frames concealed (FEC from the next packet, else PLC) or left silent."""
    rng = random.Random(seed)
    make = codec or (lambda: OpusCodec(fec=conceal))
    sender, receiver = make(), make()
    jitter = JitterBuffer()
    out = []
    frames = [pcm[i:i + FRAME_SAMPLES].tobytes() for i in range(0, len(pcm), FRAME_SAMPLES)]
    lead = jitter.target
    for seq, frame in enumerate(frames + [SILENCE] * (lead + 2), start=1):
        packet = sender.encode(frame.ljust(len(SILENCE), b"\0"))
        if seq <= 2 or rng.random() >= loss:
            jitter.push(seq, packet, seq * 0.02)
        item = jitter.pop(seq * 0.02)
        if isinstance(item, Played):
            out.append(receiver.decode(item.payload))
        elif isinstance(item, Concealed):
            out.append(receiver.conceal(item.next_payload) if conceal else SILENCE)
    played = np.frombuffer(b"".join(out), dtype=np.int16)
    return played[:len(pcm)]


def to_16k(pcm: np.ndarray) -> np.ndarray:
    return pcm.reshape(-1, 3).mean(axis=1).astype(np.float32) / 32768.0


def score(reference: np.ndarray, loss: float, conceal: bool = True,
          codec: Callable[[], Codec] | None = None) -> float:
    """Wideband PESQ of ``reference`` (48 kHz, a multiple of 3 samples long) after
    :func:`transmit`, the mean over three loss patterns."""
    runs = [pesq(16000, to_16k(reference),
                 to_16k(transmit(reference, loss, conceal, seed, codec)), "wb")
            for seed in (1, 2, 3)]
    return sum(runs) / len(runs)


def main() -> None:
    reference = speech()
    reference = reference[:len(reference) // 3 * 3]
    print(f"quality: {len(reference) / 48000:.1f} s of espeak-ng speech, wideband PESQ "
          "(1.0 bad .. 4.6 transparent), mean of 3 loss patterns")
    chart: dict[str, dict[str, float]] = {}
    for loss in (0.0, 0.10, 0.20):
        scores = {}
        for conceal in (True, False):
            scores[conceal] = score(reference, loss, conceal)
        print(f"quality: loss {loss * 100:4.0f}%: FEC+PLC {scores[True]:.2f}, without "
              f"{scores[False]:.2f}, ratio {scores[True] / scores[False]:.2f}x")
        chart[f"{loss * 100:.0f} % loss"] = {"FEC + PLC": scores[True],
                                            "without": scores[False]}
    bars("quality", "Wideband PESQ of speech through codec and jitter buffer (higher is "
         "better)", "PESQ", chart)


if __name__ == "__main__":
    main()
