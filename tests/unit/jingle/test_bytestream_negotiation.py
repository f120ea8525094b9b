"""XEP-0260/0261 negotiation (signalling/jingle/bytestream_negotiation.py): two
in-memory peers wired together, fed the XEP-0260 example candidates, and
Hypothesis over (phase, input) pairs."""

from __future__ import annotations

import itertools

import pytest
from hypothesis import given
from hypothesis import strategies as st

from signalling.jingle import ibb, s5b
from signalling.jingle.bytestream_negotiation import (
    TRANSITIONS,
    AcceptReplace,
    ActivateProxy,
    BytestreamNegotiation,
    ConnectOwnProxy,
    Fail,
    OwnProxyActivated,
    OwnProxyReached,
    PeerAnswersReplace,
    PeerReplaces,
    PeerSaid,
    Phase,
    RejectReplace,
    Replace,
    Socks5Failed,
    Tell,
    UseInBand,
    UseSocks5,
    WeReached,
)
from signalling.jingle.states import Reason

ROMEO = "romeo@montague.lit/orchard"
JULIET = "juliet@capulet.lit/balcony"
PROXY = "streamer.shakespeare.lit"
# The candidates of XEP-0260's examples (§2.2), Romeo's and Juliet's.
ROMEO_CANDIDATES = {
    "hft54dqy": s5b.S5bCandidate("hft54dqy", "192.168.4.1", ROMEO, 5086, 8257636),
    "hutr46fe": s5b.S5bCandidate("hutr46fe", "24.24.24.1", ROMEO, 5087, 8258636),
}
JULIET_CANDIDATES = {
    "ht567dq": s5b.S5bCandidate("ht567dq", "192.169.1.10", JULIET, 6539, 8257636),
    "hr65dqyd": s5b.S5bCandidate("hr65dqyd", "134.102.201.180", JULIET, 16453, 7929856,
                                 "assisted"),
}
ROMEO_PROXY = s5b.S5bCandidate("px1", "10.9.9.9", PROXY, 7777, s5b.priority("proxy"), "proxy")
JULIET_PROXY = s5b.S5bCandidate("px2", "10.9.9.9", PROXY, 7777, s5b.priority("proxy"), "proxy")

_ids = itertools.count()


def new_in_band() -> ibb.IbbTransport:
    return ibb.IbbTransport(f"ibb{next(_ids)}", 12288)


def cap(t: ibb.IbbTransport) -> ibb.IbbTransport:
    return ibb.IbbTransport(t.sid, min(t.block_size, 12288))


def negotiation(initiator: bool, ours: dict, theirs: dict, *, sending: bool = True,
                in_band: bool = True) -> BytestreamNegotiation:
    return BytestreamNegotiation(initiator=initiator, sending=sending, ours=ours,
                                 theirs=tuple(theirs.values()), in_band=in_band,
                                 new_in_band=new_in_band, cap=cap)


class Wire:
    """Romeo (initiator, sending) and Juliet, what each tells the other delivered."""

    def __init__(self, romeo_ours=None, juliet_ours=None, *, romeo_ibb=True,
                 juliet_ibb=True) -> None:
        r = romeo_ours if romeo_ours is not None else ROMEO_CANDIDATES
        j = juliet_ours if juliet_ours is not None else JULIET_CANDIDATES
        self.romeo = negotiation(True, r, j, in_band=romeo_ibb)
        self.juliet = negotiation(False, j, r, sending=False, in_band=juliet_ibb)
        self.done: dict[str, list] = {"romeo": [], "juliet": []}  # outputs for workers

    def feed(self, who: str, event) -> None:
        me = self.romeo if who == "romeo" else self.juliet
        other = "juliet" if who == "romeo" else "romeo"
        for out in me.handle(event):
            if isinstance(out, Tell):
                self.feed(other, PeerSaid(out.info, out.cid))
            elif isinstance(out, Replace):
                self.feed(other, PeerReplaces(out.in_band))
            elif isinstance(out, AcceptReplace):
                self.feed(other, PeerAnswersReplace(True, out.in_band))
            elif isinstance(out, RejectReplace):
                self.feed(other, PeerAnswersReplace(False))
            else:
                self.done[who].append(out)


def test_both_reach_a_direct_candidate_the_higher_priority_wins():
    """Romeo reaches Juliet's ht567dq (8257636), Juliet reaches Romeo's hutr46fe
    (8258636): Romeo's candidate has the higher priority, so both use it (§2.4)."""
    wire = Wire()
    wire.feed("romeo", WeReached("ht567dq"))
    wire.feed("juliet", WeReached("hutr46fe"))
    assert wire.done["romeo"] == [UseSocks5(ours=True, via_own_proxy=False, kind="direct")]
    assert wire.done["juliet"] == [UseSocks5(ours=False, via_own_proxy=False, kind="direct")]
    assert wire.romeo.phase is wire.juliet.phase is Phase.STREAMING


def test_equal_priorities_go_the_initiators_way():
    """Romeo reaches ht567dq (8257636), Juliet reaches hft54dqy (8257636): a tie,
    so the candidate the initiator reached (Juliet's ht567dq) carries the bytes."""
    wire = Wire()
    wire.feed("juliet", WeReached("hft54dqy"))
    wire.feed("romeo", WeReached("ht567dq"))
    assert wire.done["romeo"] == [UseSocks5(ours=False, via_own_proxy=False, kind="direct")]
    assert wire.done["juliet"] == [UseSocks5(ours=True, via_own_proxy=False, kind="direct")]


def test_nothing_is_nominated_before_both_reports():
    wire = Wire()
    wire.feed("romeo", WeReached("ht567dq"))
    assert wire.done == {"romeo": [], "juliet": []}
    assert wire.romeo.phase is Phase.CANDIDATES


def test_one_side_reaching_is_enough():
    wire = Wire()
    wire.feed("romeo", WeReached(None))
    wire.feed("juliet", WeReached("hft54dqy"))
    assert wire.done["romeo"] == [UseSocks5(ours=True, via_own_proxy=False, kind="direct")]
    assert wire.done["juliet"] == [UseSocks5(ours=False, via_own_proxy=False, kind="direct")]


def test_the_initiators_proxy_is_activated_by_the_initiator():
    """§2.5: Juliet reaches only Romeo's proxy candidate: Romeo connects to it too,
    activates it, says activated; only then do both use it."""
    wire = Wire(romeo_ours={"px1": ROMEO_PROXY})
    wire.feed("romeo", WeReached(None))
    wire.feed("juliet", WeReached("px1"))
    assert wire.done["romeo"] == [ConnectOwnProxy(ROMEO_PROXY)]
    assert wire.juliet.phase is Phase.PEER_PROXY and wire.done["juliet"] == []
    wire.feed("romeo", OwnProxyReached())
    assert wire.done["romeo"][-1] == ActivateProxy(ROMEO_PROXY)
    wire.feed("romeo", OwnProxyActivated(True))
    assert wire.done["romeo"][-1] == UseSocks5(ours=True, via_own_proxy=True, kind="proxy")
    assert wire.done["juliet"] == [UseSocks5(ours=False, via_own_proxy=False, kind="proxy")]


def test_a_proxy_that_will_not_activate_fails_both_sides():
    wire = Wire(juliet_ours={"px2": JULIET_PROXY})
    wire.feed("juliet", WeReached(None))
    wire.feed("romeo", WeReached("px2"))
    assert wire.done["juliet"] == [ConnectOwnProxy(JULIET_PROXY)]
    wire.feed("juliet", OwnProxyReached())
    wire.feed("juliet", OwnProxyActivated(False))
    assert wire.done["juliet"][-1] == Fail(Reason.FAILED_TRANSPORT,
                                           "could not activate our proxy")
    assert wire.done["romeo"] == [Fail(Reason.FAILED_TRANSPORT, "the peer's proxy failed")]


def test_nothing_reached_the_initiator_replaces_with_in_band():
    """§2.6 then XEP-0261: both report candidate-error, Romeo (initiator) replaces the
    transport, Juliet accepts, Romeo (the sender) opens the in-band stream."""
    wire = Wire()
    wire.feed("romeo", WeReached(None))
    wire.feed("juliet", WeReached(None))
    (agreed,) = [o for o in wire.done["romeo"] if isinstance(o, UseInBand)]
    assert agreed.we_open
    assert [o for o in wire.done["juliet"] if isinstance(o, UseInBand)] == [
        UseInBand(agreed.in_band, we_open=False)]
    assert Socks5Failed() in wire.done["romeo"] and Socks5Failed() in wire.done["juliet"]
    assert wire.romeo.phase is wire.juliet.phase is Phase.STREAMING


def test_a_responder_without_in_band_rejects_the_replace():
    wire = Wire(juliet_ibb=False)
    wire.feed("romeo", WeReached(None))
    wire.feed("juliet", WeReached(None))
    assert wire.done["juliet"][-1] == Fail(Reason.FAILED_TRANSPORT,
                                           "no SOCKS5 candidate worked")
    assert wire.juliet.phase is Phase.FAILED


def test_a_peer_that_refuses_in_band_ends_it():
    romeo = negotiation(True, ROMEO_CANDIDATES, JULIET_CANDIDATES)
    romeo.handle(WeReached(None))
    outs = romeo.handle(PeerSaid(s5b.S5bInfo.CANDIDATE_ERROR))
    assert isinstance(outs[-1], Replace) and romeo.phase is Phase.REPLACING
    assert romeo.handle(PeerAnswersReplace(False)) == [
        Fail(Reason.FAILED_TRANSPORT, "the peer refused in-band")]


def test_dino_as_initiator_replaces_after_our_candidate_error():
    """Dino offers SOCKS5 while only in-band is on here: we accepted without
    candidates and said candidate-error; it reached nothing of ours either, and
    replaces the transport; we accept and wait for its open (it sends)."""
    we = negotiation(False, {}, ROMEO_CANDIDATES, sending=False)
    assert we.handle(WeReached(None)) == [Tell(s5b.S5bInfo.CANDIDATE_ERROR, None)]
    assert we.handle(PeerSaid(s5b.S5bInfo.CANDIDATE_ERROR)) == [Socks5Failed()]
    assert we.phase is Phase.AWAIT_REPLACE
    offered = ibb.IbbTransport("dinoibb", 65535)
    assert we.handle(PeerReplaces(offered)) == [
        AcceptReplace(ibb.IbbTransport("dinoibb", 12288)),
        UseInBand(ibb.IbbTransport("dinoibb", 12288), we_open=False)]


def test_a_replace_to_something_else_is_rejected():
    we = negotiation(False, JULIET_CANDIDATES, ROMEO_CANDIDATES)
    assert we.handle(PeerReplaces(None)) == [
        RejectReplace(), Fail(Reason.FAILED_TRANSPORT, "no common transport")]


def test_a_late_or_repeated_notice_changes_nothing():
    wire = Wire()
    wire.feed("romeo", WeReached("ht567dq"))
    wire.feed("juliet", WeReached("hutr46fe"))
    before = (wire.romeo.phase, list(wire.done["romeo"]))
    assert wire.romeo.handle(PeerSaid(s5b.S5bInfo.CANDIDATE_USED, "hutr46fe")) == []
    assert wire.romeo.handle(WeReached("ht567dq")) == []
    assert (wire.romeo.phase, wire.done["romeo"]) == before


def test_an_unknown_cid_counts_as_nothing_reached():
    """A candidate-used naming a cid we never offered cannot nominate it."""
    we = negotiation(True, ROMEO_CANDIDATES, JULIET_CANDIDATES)
    we.handle(PeerSaid(s5b.S5bInfo.CANDIDATE_USED, "forged"))
    outs = we.handle(WeReached(None))
    assert Socks5Failed() in outs


INPUTS = st.one_of(
    st.builds(WeReached, st.sampled_from([None, "ht567dq", "hr65dqyd", "px2", "nope"])),
    st.builds(PeerSaid, st.sampled_from(list(s5b.S5bInfo)),
              st.sampled_from([None, "hft54dqy", "hutr46fe", "px1", "nope"])),
    st.just(OwnProxyReached()),
    st.builds(OwnProxyActivated, st.booleans()),
    st.builds(PeerReplaces, st.sampled_from([None, ibb.IbbTransport("x", 4096)])),
    st.builds(PeerAnswersReplace, st.booleans(),
              st.sampled_from([None, ibb.IbbTransport("y", 99999)])),
)


@pytest.mark.parametrize("initiator", [True, False])
@given(inputs=st.lists(INPUTS, max_size=10), in_band=st.booleans())
def test_only_the_table_moves_the_phase(initiator, inputs, in_band):
    ours = dict(ROMEO_CANDIDATES) | {"px1": ROMEO_PROXY}
    theirs = dict(JULIET_CANDIDATES) | {"px2": JULIET_PROXY}
    neg = negotiation(initiator, ours, theirs, in_band=in_band)
    for event in inputs:
        before = neg.phase
        outs = neg.handle(event)
        if (before, type(event)) not in TRANSITIONS:
            assert outs == [] and neg.phase is before
        if any(isinstance(o, Fail) for o in outs):
            assert neg.phase is Phase.FAILED
        if neg.phase is Phase.FAILED:
            assert before is Phase.FAILED or any(isinstance(o, Fail) for o in outs)
        # Nothing streams twice, nothing leaves a final phase.
        if before in (Phase.STREAMING, Phase.FAILED):
            assert neg.phase is before and outs == []
        uses = [o for o in outs if isinstance(o, UseSocks5 | UseInBand)]
        assert len(uses) <= 1
        if uses:
            assert neg.phase is Phase.STREAMING
        if isinstance(uses[0] if uses else None, UseInBand):
            assert in_band
