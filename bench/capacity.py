"""Capacity: CPU seconds per call-second for N concurrent two-way calls of speech
(espeak-ng) in one media worker, against plain opuslib at its default settings
encoding and decoding the same speech, in the same run; beside it the wideband
PESQ our settings give that speech at 0 % and 10 % loss. Needs espeak-ng and
``pesq`` (``scripts/bench.sh``).

    .venv/bin/python -m bench.capacity [N ...]
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
import wave
from pathlib import Path

import numpy as np

from bench.charts import bars
from bench.codec_settings import PlainOpus, cost_us, frames_of
from bench.lab import lab, start
from bench.quality import score, speech
from media_worker.codecs import OPUS_COMPLEXITY
from media_worker.loss_protection import CLEAN_SPAN, PROTECTED, UNPROTECTED
from scripts.agents import make_ready

WINDOW = 10.0


def cpu_seconds(pid: int) -> float:
    with open(f"/proc/{pid}/stat") as fh:
        fields = fh.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def speech_wav(pcm: np.ndarray, path: Path) -> Path:
    """The speech as a WAV, for the agents' ``loop:`` audio input."""
    with wave.open(str(path), "wb") as wav:
        wav.setnchannels(1)
        wav.setsampwidth(2)
        wav.setframerate(48000)
        wav.writeframes(pcm.tobytes())
    return path


def plain_opus_per_call_second(pcm: np.ndarray) -> float:
    """CPU for what one call-second needs at the codec, plain opuslib at its defaults:
    50 encodes and 50 decodes of the speech."""
    return cost_us(PlainOpus(), frames_of(pcm)) * 50 / 1e6


def run(n: int, wav: Path, encryption: str = "required") -> tuple[float, float]:
    media = f'[media]\nencryption = "{encryption}"\n'
    audio = f'[audio]\ninput = "loop:{wav}"\noutput = "null"\n'
    with lab() as (server, folder):
        alice = start(server, folder, "alice", audio + media)
        bob = start(server, folder, "bob", audio + '[policy]\nauto_accept_calls = "all"\n'
                                           + media)
        make_ready(alice, bob)
        sids = []
        for _ in range(n):
            sid = alice.client.call(bob.bare)
            alice.state(sid, "INPROGRESS", timeout=30)
            sids.append(sid)
        time.sleep(2.0)
        pid = alice.client.status()["workers"]["media"]["pid"]
        before, t0 = cpu_seconds(pid), time.monotonic()
        time.sleep(WINDOW)
        used, elapsed = cpu_seconds(pid) - before, time.monotonic() - t0
        for sid in sids:
            alice.client.hangup(sid)
        alice.stop()
        bob.stop()
    return used / (n * elapsed), used / elapsed


def main() -> None:
    counts = [int(a) for a in sys.argv[1:]] or [10, 30]
    pcm = speech()
    pcm = pcm[:len(pcm) // 3 * 3]
    raw = plain_opus_per_call_second(pcm)
    clean = score(pcm, 0.0, codec=lambda: PlainOpus(OPUS_COMPLEXITY, UNPROTECTED))
    lossy = score(pcm, 0.10, codec=lambda: PlainOpus(OPUS_COMPLEXITY, PROTECTED))
    print(f"capacity: our settings on this speech: PESQ {clean:.2f} on a clean path (FEC "
          f"off after {CLEAN_SPAN:.0f} s of loss-free reports), {lossy:.2f} at 10 % loss "
          f"(FEC for {PROTECTED} %)")
    chart: dict[str, dict[str, float]] = {}
    with tempfile.TemporaryDirectory() as scratch:
        wav = speech_wav(pcm, Path(scratch) / "speech.wav")
        for n in counts:
            plain, _ = run(n, wav, "off")
            per_call, load = run(n, wav)
            chart[f"{n} calls"] = {"plain opuslib encode+decode (defaults)": raw * 1000,
                                   "worker, plain RTP": plain * 1000,
                                   "worker, DTLS-SRTP": per_call * 1000}
            print(f"capacity: {n} DTLS-SRTP calls of speech in one media worker: "
                  f"{per_call * 1000:.2f} ms CPU per call-second (worker at {load * 100:.0f}% "
                  f"of a core); plain opuslib encode+decode at its defaults "
                  f"{raw * 1000:.2f} ms; ratio {per_call / raw:.2f}x (target <= 1.3x); "
                  f"about {1 / per_call:.0f} calls per core")
            print(f"capacity: SRTP costs {(per_call - plain) * 1000:.2f} ms CPU per "
                  f"call-second: encrypted / plain RTP = {per_call / plain:.2f}x "
                  f"({plain * 1000:.2f} ms plain)")
    bars("capacity", "CPU per call-second in one media worker (lower is better)", "ms",
         chart)


if __name__ == "__main__":
    main()
