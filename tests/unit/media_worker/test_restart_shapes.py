"""What an ICE restart (RFC 8445 §9) tells signalling, in order, with real aioice
gathering: our own restart offers the new credentials alone and trickles candidates
only after the peer's answer (Conversations reads credentials with candidates as an
answer); answering the peer's restart, credentials and candidates go together."""

from __future__ import annotations

import asyncio

from bus import messages as m
from bus.config import IceConfig
from media_worker.audio import SilenceSource
from media_worker.call import MediaCall

ICE = IceConfig(connect_timeout=1.0, stun_server=None, turn_server=None, turn_username=None,
                turn_password=None, turn_transport="udp")


async def _restart(peer_first: bool) -> list[m.Message]:
    sent: list[m.Message] = []

    async def send(_to: m.Process, message: m.Message) -> None:
        sent.append(message)

    call = MediaCall("s1", True, "silence", "null", send, ICE)
    call.source = SilenceSource()  # media is up: restarts are taken
    answer = m.RestartIce("s1", "peerufrag", "peerpasswordpeerpasswo", ())
    if peer_first:
        call.restart(answer)  # the peer restarted: we answer
    else:
        call.restart()  # ours (an address vanished, consent was lost)
        for _ in range(200):
            if sent and isinstance(sent[-1], m.IceRestarted):
                break
            await asyncio.sleep(0.01)
        assert not [x for x in sent if isinstance(x, m.LocalCandidates)]
        call.restart(answer)  # the peer's answer: new credentials (and candidates)
    assert call._restart is not None
    await asyncio.wait({call._restart}, timeout=10)
    await call.close("test")
    return [x for x in sent if isinstance(x, m.IceRestarted | m.LocalCandidates |
                                          m.WorkerFailed)]


def test_our_restart_offers_credentials_alone_then_trickles_after_the_answer():
    sent = asyncio.run(_restart(peer_first=False))
    offer = sent[0]
    assert isinstance(offer, m.IceRestarted) and offer.candidates == ()
    assert offer.ufrag and offer.pwd
    assert isinstance(sent[1], m.LocalCandidates)  # after the answer, not before
    assert isinstance(sent[-1], m.WorkerFailed)  # nobody really answers here: it ends


def test_answering_a_restart_sends_credentials_with_candidates_at_once():
    sent = asyncio.run(_restart(peer_first=True))
    answer = sent[0]
    assert isinstance(answer, m.IceRestarted)
    assert not [x for x in sent if isinstance(x, m.LocalCandidates)]
    assert isinstance(sent[-1], m.WorkerFailed) and sent[-1].reason == "failed-transport"


def test_probe_says_whether_the_selected_pair_still_works():
    """The check behind 'keep the old pair' (a peer that never answers our restart):
    two real aioice connections on this host's own address; the probe is answered
    while the peer is there and not once it is gone."""
    from media_worker.ice import IceTransport

    async def main() -> tuple[bool, bool]:
        a, b = IceTransport(True), IceTransport(False)
        a.set_remote_credentials(b.ufrag, b.pwd)
        b.set_remote_credentials(a.ufrag, a.pwd)
        ca, cb = await a.gather(), await b.gather()
        await a.add_remote(tuple(cb))
        await b.add_remote(tuple(ca))
        await a.end_of_candidates()
        await b.end_of_candidates()
        await asyncio.gather(a.connect(5), b.connect(5))
        alive = await a.probe(2.0)
        await b.close()
        gone = await a.probe(2.0)
        await a.close()
        return alive, gone

    alive, gone = asyncio.run(main())
    assert alive and not gone
