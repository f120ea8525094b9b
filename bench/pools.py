"""Worker pools: how many calls an agent carries at equal quality with 1 and with 2
media workers, in one run, on this machine.

Both agents (caller and callee, on the same machine, sending espeak-ng speech) get
the same number of media workers; calls are added in steps and a step passes when,
over a 10 s window, every call received at least 99 % of its packets on both sides
and the p99 of the caller's send intervals' deviation from 20 ms is under 5 ms. The
capacity is the largest passing step; the ratio compares 2 workers with 1. On a
2-core machine both agents share the two cores, so the ratio is bounded by what the
callee also burns.

    .venv/bin/python -m bench.pools [STEP ...]      (default 10 20 30 40 50 60 80)
"""

from __future__ import annotations

import itertools
import shutil
import sys
import tempfile
import time
from pathlib import Path

from bench.capacity import speech_wav
from bench.charts import bars
from bench.lab import lab, percentile, start
from bench.quality import speech
from scripts.agents import Agent, make_ready

WINDOW = 10.0
PACKETS_PER_SECOND = 50  # 20 ms frames


def received(agent: Agent, sids: list[str]) -> dict[str, int]:
    while agent.watch.poll(0.05) is not None:
        pass
    latest: dict[str, int] = {}
    for event in agent.watch.seen:
        if event.get("event") == "media.stats" and event.get("sid") in sids:
            latest[event["sid"]] = event["received_packets"]
    agent.watch.seen[:] = [e for e in agent.watch.seen if e.get("event") != "media.stats"]
    return latest


def step_passes(alice: Agent, bob: Agent, sids: list[str]) -> tuple[bool, float]:
    """Every call received >= 99 % of its packets on both sides over the window; the
    worst fraction seen."""
    before = {a.user: received(a, sids) for a in (alice, bob)}
    time.sleep(WINDOW)
    after = {a.user: received(a, sids) for a in (alice, bob)}
    expected = WINDOW * PACKETS_PER_SECOND
    worst = min(
        (after[u].get(s, 0) - before[u].get(s, 0)) / expected
        for u in after for s in sids)
    return worst >= 0.99, worst


def send_jitter_p99(trace: Path, sids: list[str], start: float, end: float) -> float:
    """p99 over the calls of |send interval - 20 ms|, in ms, for sends in [start, end]
    (the workers' trace files, written when the calls end; one monotonic clock)."""
    deviations: list[float] = []
    for sid in sids:
        path = trace / f"{sid}.send"
        if path.exists():
            times = [t for t in map(float, path.read_text().split()) if start <= t <= end]
            deviations += [abs((b - a) - 0.020) * 1000 for a, b in itertools.pairwise(times)]
    return percentile(deviations, 99) if deviations else float("inf")


def capacity(workers: int, steps: list[int], wav: Path,
             env: dict[str, str] | None = None) -> tuple[int, list[tuple[int, float]]]:
    pool = (f"[media]\nworkers = {workers}\n"
            f'[audio]\ninput = "loop:{wav}"\noutput = "null"\n')
    seen: list[tuple[int, float]] = []
    windows: list[tuple[int, list[str], float, float]] = []
    best = 0
    trace = Path(tempfile.mkdtemp(prefix="pj-trace-"))
    with lab() as (server, folder):
        alice = start(server, folder, "alice", pool,
                      env={**(env or {}), "PYJINGLE_MEDIA_TRACE": str(trace)})
        bob = start(server, folder, "bob", pool + '[policy]\nauto_accept_calls = "all"\n',
                    env=env)
        make_ready(alice, bob)
        sids: list[str] = []
        try:
            for target in steps:
                try:
                    while len(sids) < target:
                        sid = alice.client.call(bob.bare)
                        sids.append(sid)
                        alice.state(sid, "INPROGRESS", timeout=30)
                except Exception as exc:  # saturated: a call did not come up in time
                    print(f"pools: {workers} worker(s), {target} calls: setup failed "
                          f"({str(exc)[:80]})", flush=True)
                    seen.append((target, 0.0))
                    break
                time.sleep(2.0)
                began = time.monotonic()
                ok, worst = step_passes(alice, bob, sids)
                windows.append((target, list(sids), began, time.monotonic()))
                seen.append((target, worst))
                print(f"pools: {workers} worker(s), {target} calls: worst call received "
                      f"{worst * 100:.1f}% of its packets", flush=True)
                if not ok:
                    break
        finally:
            for sid in sids:
                try:
                    alice.client.hangup(sid)
                except Exception as exc:  # a saturated agent may not answer in time
                    print(f"pools: hangup of {sid}: {exc}", flush=True)
            alice.stop()
            bob.stop()
    for target, sids, began, ended in windows:  # the traces exist once the calls ended
        p99 = send_jitter_p99(trace, sids, began, ended)
        passed = dict(seen)[target] >= 0.99 and p99 < 5.0
        print(f"pools: {workers} worker(s), {target} calls: send interval p99 deviation "
              f"{p99:.2f} ms -> {'pass' if passed else 'fail'}", flush=True)
        if not passed:
            break
        best = target
    shutil.rmtree(trace, ignore_errors=True)
    return best, seen


def main() -> None:
    steps = [int(a) for a in sys.argv[1:]] or [10, 20, 30, 40, 50, 60, 80]
    pcm = speech()
    with tempfile.TemporaryDirectory() as scratch:
        wav = speech_wav(pcm[:len(pcm) // 3 * 3], Path(scratch) / "speech.wav")
        one, _ = capacity(1, steps, wav)
        two, _ = capacity(2, steps, wav)
    ratio = two / one if one else float("inf")
    print(f"pools: calls at equal quality (>= 99% of packets on every call, both sides; "
          f"send interval p99 deviation < 5 ms): "
          f"1 worker {one}, 2 workers {two}; ratio {ratio:.2f} (target >= 1.8; caller and "
          f"callee share this machine's cores)")
    bars("pools", "Calls at equal quality per agent (higher is better)", "calls",
         {"media workers": {"1": float(one), "2": float(two)}})


if __name__ == "__main__":
    main()
