"""Capacity: CPU seconds per call-second for N concurrent two-way calls in one media
worker, against raw opuslib encode+decode of the same frames, in the same run.

    .venv/bin/python -m bench.capacity [N ...]
"""

from __future__ import annotations

import os
import sys
import time

from bench.charts import bars
from bench.lab import lab, start
from media_worker.audio import ToneSource
from media_worker.codecs import OpusCodec
from scripts.agents import make_ready

WINDOW = 10.0


def cpu_seconds(pid: int) -> float:
    with open(f"/proc/{pid}/stat") as fh:
        fields = fh.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def raw_opus_per_call_second(seconds: float = 10.0) -> float:
    """CPU for what one call-second needs at the codec: 50 encodes and 50 decodes."""
    tone = ToneSource(440)
    frames = [tone.read() for _ in range(int(seconds * 50))]
    codec = OpusCodec()
    started = time.process_time()
    for frame in frames:
        codec.decode(codec.encode(frame))
    return (time.process_time() - started) / seconds


def run(n: int, encryption: str = "required") -> tuple[float, float]:
    media = f'[media]\nencryption = "{encryption}"\n'
    with lab() as (server, folder):
        alice = start(server, folder, "alice",
                      '[audio]\ninput = "tone:440"\noutput = "null"\n' + media)
        bob = start(server, folder, "bob", '[audio]\ninput = "tone:660"\noutput = "null"\n'
                                           '[policy]\nauto_accept_calls = "all"\n' + media)
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
    raw = raw_opus_per_call_second()
    chart: dict[str, dict[str, float]] = {}
    for n in counts:
        plain, _ = run(n, "off")
        per_call, load = run(n)
        chart[f"{n} calls"] = {"raw opuslib encode+decode": raw * 1000,
                               "worker, plain RTP": plain * 1000,
                               "worker, DTLS-SRTP": per_call * 1000}
        print(f"capacity: {n} DTLS-SRTP calls in one media worker: {per_call * 1000:.2f} ms "
              f"CPU per call-second (worker at {load * 100:.0f}% of a core); raw opuslib "
              f"encode+decode {raw * 1000:.2f} ms; ratio {per_call / raw:.2f}x "
              f"(target <= 2x); about {1 / per_call:.0f} calls per core (target >= 100)")
        print(f"capacity: SRTP costs {(per_call - plain) * 1000:.2f} ms CPU per call-second: "
              f"encrypted / plain RTP = {per_call / plain:.2f}x ({plain * 1000:.2f} ms plain)")
    bars("capacity", "CPU per call-second in one media worker (lower is better)", "ms",
         chart)


if __name__ == "__main__":
    main()
