"""File transfer: SOCKS5 direct throughput against a raw loopback TCP copy of the same
file in the same run — plain, and with the receiver hashing SHA-256 as it writes (the
honest baseline: a transfer must verify) — and the transfer worker's peak RSS.

    .venv/bin/python -m bench.transfer [MB ...]        (default 200 1024)
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

from bench.charts import bars
from bench.lab import lab, start
from scripts.agents import make_ready

CHUNK = 256 * 1024


async def raw_tcp_copy(source: Path, target: Path, hashing: bool = False) -> float:
    """Seconds to copy ``source`` to ``target`` over one loopback TCP connection; with
    ``hashing`` the receiver also feeds each chunk to SHA-256."""
    done = asyncio.Event()

    async def receive(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        digest = hashlib.sha256()
        with open(target, "wb") as fh:
            while chunk := await reader.read(CHUNK):
                fh.write(chunk)
                if hashing:
                    digest.update(chunk)
        writer.close()
        done.set()

    server = await asyncio.start_server(receive, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    started = time.perf_counter()
    _, writer = await asyncio.open_connection("127.0.0.1", port)
    with open(source, "rb") as fh:
        while chunk := fh.read(CHUNK):
            writer.write(chunk)
            await writer.drain()
    writer.close()
    await done.wait()
    elapsed = time.perf_counter() - started
    server.close()
    return elapsed


def rss_mb(pid: int) -> float:
    with open(f"/proc/{pid}/status") as fh:
        for line in fh:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


def peak_rss_mb(pid: int, stop: threading.Event, out: list[float]) -> None:
    peak = 0.0
    while not stop.is_set():
        try:
            peak = max(peak, rss_mb(pid))
        except OSError:
            break
        time.sleep(0.02)
    out.append(peak)


def s5b_transfers(server, folder: Path, source: Path, runs: int) -> tuple[list[float], float,
                                                                         float]:
    """Seconds from accept to verified completion for ``runs`` transfers (after one
    warm-up), and the receiving worker's RSS before and at its peak (MB)."""
    alice = start(server, folder, "alice")
    bob = start(server, folder, "bob", f'[transfer]\ndownload_dir = "{folder}/dl"\n')
    make_ready(alice, bob)
    worker = bob.client.status()["workers"]["transfer"]["pid"]
    before = rss_mb(worker)
    stop, peaks = threading.Event(), []
    watcher = threading.Thread(target=peak_rss_mb, args=(worker, stop, peaks))
    watcher.start()
    times = []
    for _ in range(runs + 1):
        sid = alice.client.send_file(bob.bare, str(source))
        bob.state(sid, "RECEIVEDINITIATE")
        started = time.perf_counter()
        bob.client.accept(sid)
        done = bob.watch.wait_for(600, event="transfer.complete", sid=sid)
        times.append(time.perf_counter() - started)
        assert done["verified"], done
        bob.state(sid, "DEINIT")
        os.unlink(done["path"])
    stop.set()
    watcher.join()
    alice.stop()
    bob.stop()
    return times[1:], before, peaks[0]


def measure(megabytes: int, runs: int = 3) -> dict[str, float]:
    with lab() as (server, folder):
        work = Path(tempfile.mkdtemp(prefix="pj-xfer-", dir=folder))
        source = work / "payload.bin"
        with open(source, "wb") as fh:
            for _ in range(megabytes):
                fh.write(os.urandom(1 << 20))
        raws: dict[bool, list[float]] = {False: [], True: []}
        for _ in range(runs + 1):  # the first is a warm-up, as for SOCKS5 below
            for hashing in (False, True):
                raws[hashing].append(asyncio.run(raw_tcp_copy(source, work / "raw.bin",
                                                              hashing)))
                os.unlink(work / "raw.bin")
        s5bs, rss_before, rss_peak = s5b_transfers(server, folder, source, runs)
    return {"raw": statistics.median(raws[False][1:]),
            "raw_hashed": statistics.median(raws[True][1:]),
            "s5b": statistics.median(s5bs), "rss_before": rss_before, "rss_peak": rss_peak}


def main() -> None:
    sizes = [int(a) for a in sys.argv[1:]] or [200, 1024]
    runs = 3
    chart: dict[str, dict[str, float]] = {}
    for megabytes in sizes:
        got = measure(megabytes, runs)
        size = megabytes * 1024 * 1024
        chart[f"{megabytes} MB"] = {
            "loopback TCP copy": size / got["raw"] / 1e6,
            "copy, receiver hashing SHA-256": size / got["raw_hashed"] / 1e6,
            "SOCKS5 transfer, verified": size / got["s5b"] / 1e6}
        raw, hashed, s5b = got["raw"], got["raw_hashed"], got["s5b"]
        print(f"transfer: {megabytes} MB, median of {runs}: loopback TCP copy "
              f"{size / raw / 1e6:.0f} MB/s ({raw:.2f} s), the same with the receiver "
              f"hashing SHA-256 {size / hashed / 1e6:.0f} MB/s ({hashed:.2f} s); SOCKS5 "
              f"direct, accept -> verified, {size / s5b / 1e6:.0f} MB/s ({s5b:.2f} s)")
        print(f"transfer: {megabytes} MB ratio against the hashing copy {hashed / s5b:.2f} "
              f"(target >= 0.9), against the plain copy {raw / s5b:.2f} (target >= 1.0)")
        print(f"transfer: {megabytes} MB receiving worker RSS {got['rss_before']:.0f} MB "
              f"before, peak {got['rss_peak']:.0f} MB over {runs + 1} transfers")
    drawn = bars("transfer", "File transfer on loopback, median of 3 (higher is better)",
                 "MB/s", chart)
    if drawn:
        print(f"transfer: chart {drawn}")


if __name__ == "__main__":
    main()
