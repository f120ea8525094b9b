"""Call setup: ``call`` -> INPROGRESS on both sides (median of 20), for a plain
XEP-0166 call with plain RTP and for the default secure call (XEP-0353 propose/
proceed, then DTLS-SRTP), against a bare slixmpp IQ round trip through the same
Prosody, all measured in the same run.

    .venv/bin/python -m bench.call_setup
"""

from __future__ import annotations

import asyncio

from bench.charts import bars
from bench.lab import lab, median, start, timed_calls
from bench.raw_xmpp import iq_round_trips
from scripts.agents import make_ready

RUNS = 20
QUIET = '[audio]\ninput = "silence"\noutput = "null"\n'
PLAIN = '[jingle]\nmessage_initiation = false\n[media]\nencryption = "off"\n'


def setups(server, folder, extra: str) -> list[float]:
    alice = start(server, folder, "alice", QUIET + extra)
    bob = start(server, folder, "bob", QUIET + extra + '[policy]\nauto_accept_calls = "all"\n')
    make_ready(alice, bob)
    took, _ = timed_calls(alice, bob, RUNS, warmup=2)
    alice.stop()
    bob.stop()
    return took


def main() -> None:
    with lab() as (server, folder):
        rtt = median(asyncio.run(iq_round_trips(server)))
        plain = setups(server, folder, PLAIN)
        secure = setups(server, folder, "")
    for name, values in (("plain XEP-0166, RTP", plain), ("JMI + DTLS-SRTP", secure)):
        setup = median(values)
        print(f"call_setup ({name}): median {setup * 1000:.1f} ms over {RUNS} calls "
              f"(min {min(values) * 1000:.1f}, max {max(values) * 1000:.1f}); "
              f"{setup / rtt:.1f}x a bare IQ round trip ({rtt * 1000:.2f} ms)")
    print(f"call_setup: JMI + DTLS-SRTP / plain = {median(secure) / median(plain):.2f}x "
          f"(target <= 10x an IQ round trip and < 250 ms for the plain call)")
    bars("call_setup", "Call setup, call -> INPROGRESS both sides, median (lower is better)",
         "ms", {"setup": {"bare IQ round trip": rtt * 1000,
                          "plain XEP-0166 + RTP": median(plain) * 1000,
                          "XEP-0353 + DTLS-SRTP": median(secure) * 1000}})


if __name__ == "__main__":
    main()
