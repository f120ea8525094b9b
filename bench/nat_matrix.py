"""Time to connect in each row of the NAT matrix: ``call`` -> INPROGRESS on both
sides (DTLS-SRTP, XEP-0353), median of 10 per row, against the open row of the
same run. Needs root (network namespaces), nftables and coturn.

    .venv/bin/python -m bench.nat_matrix [ROWS ...]
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

from bench.charts import bars
from bench.lab import median, timed_calls
from scripts.natlab import MODES, internet, start_pair

RUNS = 10


def connect_times(lab, server, folder: Path) -> tuple[list[float], str]:
    alice, bob = start_pair(lab, server, folder, log_level="warning")
    try:
        took, connected = timed_calls(alice, bob, RUNS, timeout=60)
    finally:
        alice.stop()
        bob.stop()
    return took, f"{connected['local']}->{connected['remote']}"


def main() -> None:
    rows = sys.argv[1:] or list(MODES)
    results: dict[str, tuple[float, str]] = {}
    with internet() as (lab, server):
        for mode in (["open"] if "open" not in rows else []) + rows:
            lab.set_mode(mode)
            with tempfile.TemporaryDirectory(prefix="pj-", dir="/tmp") as folder:
                took, pair = connect_times(lab, server, Path(folder))
            results[mode] = (median(took), pair)
    base = results["open"][0]
    bars("nat_matrix", "Time to connect a call per NAT row, median (lower is better)", "ms",
         {mode: {"call -> INPROGRESS": value * 1000} for mode, (value, _) in results.items()})
    for mode, (value, pair) in results.items():
        print(f"nat_matrix {mode:>20}: median {value * 1000:7.1f} ms over {RUNS} calls, "
              f"{value / base:5.1f}x the open row; chosen pair {pair}")


if __name__ == "__main__":
    main()
