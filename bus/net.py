"""This host's network addresses, as every process that owns sockets sees them."""

from __future__ import annotations

import time

import aioice.ice

_recent: tuple[float, frozenset[str]] = (float("-inf"), frozenset())


def host_addresses(max_age: float = 0.0) -> set[str]:
    """The addresses ICE would gather host candidates from (loopback excluded): when
    one the agent uses disappears, the network changed under it.

    Enumerating interfaces costs a netlink dump (~0.1 ms); a media worker's calls each
    watch for a vanished address twice a second, so they share one enumeration no
    older than ``max_age`` seconds instead of each making its own."""
    global _recent
    now = time.monotonic()
    if max_age > 0 and now - _recent[0] <= max_age:
        return set(_recent[1])
    addresses = frozenset(aioice.ice.get_host_addresses(use_ipv4=True, use_ipv6=True))
    _recent = (now, addresses)
    return set(addresses)
