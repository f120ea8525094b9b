"""This host's network addresses, as every process that owns sockets sees them."""

from __future__ import annotations

import aioice.ice


def host_addresses() -> set[str]:
    """The addresses ICE would gather host candidates from (loopback excluded): when
    one the agent uses disappears, the network changed under it."""
    return set(aioice.ice.get_host_addresses(use_ipv4=True, use_ipv6=True))
