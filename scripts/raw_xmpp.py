"""A bare slixmpp client on the test server: the baseline of benchmarks and the
"stranger" or raw Jingle peer of tests."""

from __future__ import annotations

import asyncio
import socket

import slixmpp

from scripts.agents import USERS
from scripts.local_prosody import LocalProsody


async def login(server: LocalProsody, user: str, resource: str = "raw") -> slixmpp.ClientXMPP:
    client = slixmpp.ClientXMPP(f"{user}@{server.domain}/{resource}", USERS[user])
    client.enable_direct_tls = False
    client.enable_starttls = False
    client.enable_plaintext = True
    client.plugin["feature_mechanisms"].unencrypted_scram = True
    client.register_plugin("xep_0199")
    ready = asyncio.Event()
    client.add_event_handler("session_start", lambda _e: ready.set())
    client.connect("127.0.0.1", server.c2s_port)
    await asyncio.wait_for(ready.wait(), 10)
    # As the agents do (signalling/xmpp/client.py): without TCP_NODELAY, Nagle and
    # the server's delayed ACK hold a stanza's last segment back ~40 ms.
    sock = client.transport.get_extra_info("socket") if client.transport else None
    if sock is not None:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return client


async def logout(*clients: slixmpp.ClientXMPP) -> None:
    """Disconnect, then end every task the clients left behind (IQ timeouts, the send
    queue), so that leaving the event loop prints no "Task was destroyed" per stanza."""
    for client in clients:
        client.disconnect()
    await asyncio.sleep(0.2)
    for client in clients:
        client.abort()  # no more stanzas in: nothing new to spawn tasks for
    current = asyncio.current_task()
    for _ in range(10):  # cancelled handlers may have spawned tasks of their own
        pending = [task for task in asyncio.all_tasks() if task is not current]
        if not pending:
            break
        for task in pending:
            task.cancel()
        await asyncio.gather(*pending, return_exceptions=True)
