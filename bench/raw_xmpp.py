"""Bare slixmpp clients for baselines: IQ round trips and stanza floods through Prosody."""

from __future__ import annotations

import asyncio
import time

from scripts.local_prosody import LocalProsody
from scripts.raw_xmpp import login, logout


async def iq_round_trips(server: LocalProsody, n: int = 50) -> list[float]:
    """Seconds per XEP-0199 ping from one bare client to another, through Prosody."""
    a = await login(server, "carol")
    b = await login(server, "dave")
    times = []
    for _ in range(n + 5):
        started = time.perf_counter()
        await a.plugin["xep_0199"].send_ping(b.boundjid, timeout=5)
        times.append(time.perf_counter() - started)
    await logout(a, b)
    return times[5:]


async def flood(server: LocalProsody, target: str, rate: float, seconds: float) -> int:
    """Send ``rate`` disco#info queries a second to ``target`` (each one is answered)."""
    client = await login(server, "dave", "flood")
    interval = 1.0 / rate
    sent = 0
    started = time.perf_counter()
    while (elapsed := time.perf_counter() - started) < seconds:
        due = int(elapsed / interval) + 1
        while sent < due:
            iq = client.make_iq_get(queryxmlns="http://jabber.org/protocol/disco#info",
                                    ito=target)
            iq.send(timeout=30)
            sent += 1
        await asyncio.sleep(0.005)
    await asyncio.sleep(0.5)
    await logout(client)
    return sent
