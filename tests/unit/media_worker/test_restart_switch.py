"""After an ICE restart the call reads from the new connection at once, whatever
the old one does on its way out: two real MediaCalls on this host's own address,
wired by their signalling messages, the restarting side's old generation unable
to close (as a TURN allocation that cannot be deleted from a vanished address)."""

from __future__ import annotations

import asyncio

from bus import messages as m
from bus.config import IceConfig
from media_worker.call import MediaCall
from media_worker.liveness import PathInput

ICE = IceConfig(connect_timeout=10.0, stun_server=None, turn_server=None, turn_username=None,
                turn_password=None, turn_transport="udp")
PCMU = m.CodecChoice(0, "PCMU", 8000, 1, False)


class Pair:
    """Alice (controlling) and Bob, each one's signalling messages delivered to the
    other as signalling would (candidates, restart offers and answers)."""

    def __init__(self) -> None:
        self.alice = MediaCall("s1", True, "tone:440", "null", self._from("alice"), ICE)
        self.bob = MediaCall("s1", False, "tone:660", "null", self._from("bob"), ICE)

    def _from(self, who: str):
        async def send(_to: m.Process, message: m.Message) -> None:
            other = self.bob if who == "alice" else self.alice
            if isinstance(message, m.LocalCandidates) and message.candidates:
                await other.add_remote(message.candidates)
            elif isinstance(message, m.IceRestarted):
                other.restart(m.RestartIce("s1", message.ufrag, message.pwd,
                                           message.candidates))
        return send

    async def connect(self) -> None:
        a, b = self.alice, self.bob
        await asyncio.gather(
            a.start(m.StartMedia("s1", b.ice.ufrag, b.ice.pwd, PCMU)),
            b.start(m.StartMedia("s1", a.ice.ufrag, a.ice.pwd, PCMU)))


async def received_more(call: MediaCall, than: int, within: float) -> bool:
    deadline = asyncio.get_running_loop().time() + within
    while asyncio.get_running_loop().time() < deadline:
        if call.received_octets > than:
            return True
        await asyncio.sleep(0.05)
    return False


def test_the_restarting_side_hears_the_new_connection_while_the_old_cannot_close():
    async def main() -> tuple[bool, bool, bool]:
        pair = Pair()
        await pair.connect()
        flowing = await received_more(pair.alice, 0, 10) and await received_more(
            pair.bob, 0, 10)
        old = pair.alice.ice

        async def never_closes() -> None:
            await asyncio.Event().wait()

        old.close = never_closes  # type: ignore[method-assign]
        pair.alice.restart(cause=PathInput.ADDRESS_GONE)
        assert pair.alice._restart is not None
        await asyncio.wait({pair.alice._restart}, timeout=15)
        switched = pair.alice.ice is not old
        before = pair.alice.received_octets
        hears = await received_more(pair.alice, before + 1000, 5)
        await pair.alice.close("test")
        await pair.bob.close("test")
        return flowing, switched, hears

    flowing, switched, hears = asyncio.run(main())
    assert flowing, "the call never carried audio"
    assert switched, "the restart did not bring a new generation up"
    assert hears, "the restarting side stayed deaf after the restart"


def test_mute_and_hold_stop_sending_and_a_quiet_peer_is_no_failure():
    """XEP-0167 §7: muted (or on hold) is "temporarily not sending media". The muted
    side sends nothing, the other keeps the call (no restart, no end), and sound
    comes back on unmute."""
    async def main() -> dict[str, bool]:
        pair = Pair()
        await pair.connect()
        a, b = pair.alice, pair.bob
        out = {"flowing": await received_more(b, 0, 10)}
        for attribute in ("muted", "held"):
            setattr(a, attribute, True)
            b.peer_muted = attribute == "muted"  # what session-info told Bob's worker
            b.peer_held = attribute == "held"
            await asyncio.sleep(0.2)  # frames already in flight arrive
            quiet_from = b.received_octets
            await asyncio.sleep(1.5)
            out[f"{attribute}: nothing sent"] = b.received_octets == quiet_from
            out[f"{attribute}: no restart"] = b._restart is None and not b._closed
            setattr(a, attribute, False)
            b.peer_muted = b.peer_held = False
            out[f"{attribute}: sound again"] = await received_more(b, quiet_from, 3)
        await a.close("test")
        await b.close("test")
        return out

    out = asyncio.run(main())
    assert all(out.values()), out
