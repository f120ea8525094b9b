"""In-band bytestreams: agent-to-agent XEP-0261 throughput against a bare slixmpp
XEP-0047 loop through the same Prosody, in one run. The bare loop sends 16 KiB blocks
with 16 in flight (what a plain client does); the agents use their own settings.

    .venv/bin/python -m bench.ibb [MB]        (default 20)
"""

from __future__ import annotations

import asyncio
import base64
import os
import sys
import time
import xml.etree.ElementTree as ET
from pathlib import Path

from bench.charts import bars
from bench.lab import lab, start
from scripts.agents import make_ready
from scripts.raw_xmpp import login, logout
from signalling.file_sessions import IBB_BLOCK_SIZE
from transfer_worker.transfer import ibb_window

IBB_WINDOW = ibb_window(IBB_BLOCK_SIZE)
NS = "http://jabber.org/protocol/ibb"
BARE_BLOCK = 16384
BARE_WINDOW = 16


async def bare_loop(server, data: bytes, block: int = BARE_BLOCK,
                    window_size: int = BARE_WINDOW) -> float:
    """Seconds for one slixmpp client to push ``data`` to another as IBB data IQs."""
    from slixmpp.xmlstream.handler import Callback
    from slixmpp.xmlstream.matcher import MatchXPath

    sender, receiver = await login(server, "carol"), await login(server, "dave")
    received = 0
    done = asyncio.Event()

    def on_data(iq):
        nonlocal received
        received += len(base64.b64decode(iq.xml.find(f"{{{NS}}}data").text))
        iq.reply().send()
        if received >= len(data):
            done.set()

    receiver.register_handler(Callback("ibb", MatchXPath(f"{{jabber:client}}iq/{{{NS}}}data"),
                                       on_data))
    window = asyncio.Semaphore(window_size)
    started = time.perf_counter()
    for seq, offset in enumerate(range(0, len(data), block)):
        await window.acquire()
        iq = sender.make_iq_set(ito=receiver.boundjid)
        el = ET.SubElement(iq.xml, f"{{{NS}}}data", {"seq": str(seq & 0xFFFF), "sid": "b"})
        el.text = base64.b64encode(data[offset:offset + block]).decode()
        iq.send(timeout=60).add_done_callback(lambda _f: window.release())
    await done.wait()
    elapsed = time.perf_counter() - started
    await logout(sender, receiver)
    return elapsed


def main() -> None:
    megabytes = int(sys.argv[1]) if len(sys.argv) > 1 else 20
    size = megabytes * 1024 * 1024
    with lab() as (server, folder):
        source = Path(folder) / "ibb.bin"
        payload = os.urandom(size)
        source.write_bytes(payload)
        bare = asyncio.run(bare_loop(server, payload))
        same = asyncio.run(bare_loop(server, payload, IBB_BLOCK_SIZE, IBB_WINDOW))
        ibb_only = '[transfer]\ntransports = ["ibb"]\n'
        alice = start(server, folder, "alice", ibb_only)
        bob = start(server, folder, "bob", ibb_only + f'download_dir = "{folder}/dl"\n')
        make_ready(alice, bob)
        sid = alice.client.send_file(bob.bare, str(source))
        bob.state(sid, "RECEIVEDINITIATE")
        started = time.perf_counter()
        bob.client.accept(sid)
        done = bob.watch.wait_for(600, event="transfer.complete", sid=sid)
        ours = time.perf_counter() - started
        assert done["verified"], done
        alice.stop()
        bob.stop()
    print(f"ibb: {megabytes} MB: bare slixmpp loop ({BARE_BLOCK}-byte blocks, window "
          f"{BARE_WINDOW}) {size / bare / 1e6:.1f} MB/s ({bare:.2f} s); agents ({IBB_BLOCK_SIZE}"
          f"-byte blocks, window {IBB_WINDOW}), accept -> "
          f"verified, {size / ours / 1e6:.1f} MB/s ({ours:.2f} s); ratio {bare / ours:.2f} "
          "(target >= 1.0)")
    print(f"ibb: the bare loop with the agents' block size and window {size / same / 1e6:.1f} "
          f"MB/s ({same:.2f} s); ratio {same / ours:.2f} (what the agents' own hops cost)")
    drawn = bars("ibb", f"In-band, {megabytes} MB through Prosody (higher is better)", "MB/s",
                 {"throughput": {
                     f"bare slixmpp loop, {BARE_BLOCK} B x {BARE_WINDOW}": size / bare / 1e6,
                     f"bare loop, {IBB_BLOCK_SIZE} B x {IBB_WINDOW}": size / same / 1e6,
                     "agents, accept -> verified": size / ours / 1e6}})
    if drawn:
        print(f"ibb: chart {drawn}")


if __name__ == "__main__":
    main()
