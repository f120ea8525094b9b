"""Isolation: RTP send-interval jitter of a call while the signalling process is
flooded with 2,000 stanzas/s, against the same call idle, in the same run.

    .venv/bin/python -m bench.isolation
"""

from __future__ import annotations

import asyncio
import itertools
import tempfile
import time
from pathlib import Path

from bench.charts import bars
from bench.lab import lab, percentile, start
from bench.raw_xmpp import flood
from scripts.agents import make_ready

SECONDS = 8.0
RATE = 2000.0


def deviations(path: Path) -> list[float]:
    times = [float(x) for x in path.read_text().split()]
    return [abs((b - a) - 0.020) * 1000 for a, b in itertools.pairwise(times)]


def one_call(alice, bob, trace: Path, server, load: bool) -> list[float]:
    sid = alice.client.call(bob.bare)
    alice.state(sid, "INPROGRESS", timeout=30)
    if load:
        sent = asyncio.run(flood(server, alice.full, RATE, SECONDS))
        print(f"isolation: flooded alice's signalling with {sent} disco#info queries "
              f"in {SECONDS:.0f} s")
    else:
        time.sleep(SECONDS)
    alice.client.hangup(sid)
    alice.state(sid, "DEINIT")
    time.sleep(0.5)
    return deviations(trace / f"{sid}.send")


def main() -> None:
    trace = Path(tempfile.mkdtemp(prefix="pj-trace-"))
    with lab() as (server, folder):
        env = {"PYJINGLE_MEDIA_TRACE": str(trace)}
        alice = start(server, folder, "alice", '[audio]\ninput = "tone:440"\noutput = "null"\n',
                      env=env)
        bob = start(server, folder, "bob", '[audio]\ninput = "tone:660"\noutput = "null"\n'
                                           '[policy]\nauto_accept_calls = "all"\n')
        make_ready(alice, bob)
        idle: list[float] = []
        loaded: list[float] = []
        for _ in range(2):  # alternate, to spread the machine's own noise over both
            idle += one_call(alice, bob, trace, server, load=False)
            loaded += one_call(alice, bob, trace, server, load=True)
        alice.stop()
        bob.stop()
    for name, dev in (("idle", idle), ("flooded", loaded)):
        print(f"isolation: {name}: {len(dev) + 1} packets, send-interval deviation "
              f"p50 {percentile(dev, 50):.3f} ms, p99 {percentile(dev, 99):.3f} ms")
    p50 = percentile(loaded, 50) / max(percentile(idle, 50), 1e-6)
    p99 = percentile(loaded, 99) / max(percentile(idle, 99), 1e-6)
    print(f"isolation: flooded/idle ratio p50 {p50:.2f}x, p99 {p99:.2f}x (target <= 1.2)")
    bars("isolation", "RTP send-interval deviation, signalling idle vs flooded (lower is "
         "better)", "ms", {q: {name: percentile(dev, p) for name, dev in (("idle", idle),
                                                                     ("flooded", loaded))}
                           for q, p in (("p50", 50), ("p99", 99))})


if __name__ == "__main__":
    main()
