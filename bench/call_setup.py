"""Call setup: ``call`` -> INPROGRESS on both sides (median of 20), against a bare
slixmpp IQ round trip through the same Prosody, measured in the same run.

    .venv/bin/python -m bench.call_setup
"""

from __future__ import annotations

import asyncio
import time

from bench.lab import lab, median, start
from bench.raw_xmpp import iq_round_trips
from scripts.agents import make_ready

RUNS = 20


def main() -> None:
    with lab() as (server, folder):
        rtt = median(asyncio.run(iq_round_trips(server)))
        alice = start(server, folder, "alice", '[audio]\ninput = "silence"\noutput = "null"\n')
        bob = start(server, folder, "bob", '[audio]\ninput = "silence"\noutput = "null"\n'
                                           '[policy]\nauto_accept_calls = "all"\n')
        make_ready(alice, bob)
        setups = []
        for _ in range(RUNS + 2):
            started = time.perf_counter()
            sid = alice.client.call(bob.bare)
            alice.state(sid, "INPROGRESS", timeout=30)
            bob.state(sid, "INPROGRESS", timeout=30)
            setups.append(time.perf_counter() - started)
            alice.client.hangup(sid)
            alice.state(sid, "DEINIT")
            bob.state(sid, "DEINIT")
        alice.stop()
        bob.stop()
    setup = median(setups[2:])
    print(f"call_setup: median {setup * 1000:.1f} ms over {RUNS} calls "
          f"(min {min(setups[2:]) * 1000:.1f}, max {max(setups[2:]) * 1000:.1f}); "
          f"bare IQ round trip {rtt * 1000:.2f} ms; ratio {setup / rtt:.1f}x "
          f"(target <= 10x and < 250 ms)")


if __name__ == "__main__":
    main()
