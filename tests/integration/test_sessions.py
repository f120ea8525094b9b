"""Jingle sessions between two real agents through a real Prosody, driven by the control
contract."""


import pytest

from control.client import ControlFailed
from tests.integration.conftest import make_ready

pytestmark = pytest.mark.prosody


def test_bare_jid_call_reaches_callee_accept_then_hangup(pair):
    alice, bob = pair
    sid = alice.client.call(bob.bare)
    out = alice.state(sid, "SENTINITIATE")
    assert (out["kind"], out["direction"], out["peer"]) == ("call", "outgoing", bob.full)
    incoming = bob.state(sid, "RECEIVEDINITIATE")
    assert (incoming["kind"], incoming["direction"], incoming["peer"]) == (
        "call", "incoming", alice.full)
    assert [s["sid"] for s in bob.client.sessions()] == [sid]

    bob.client.accept(sid)
    bob.state(sid, "SENTACCEPT")
    alice.state(sid, "RECEIVEDACCEPT")

    alice.client.hangup(sid)
    assert alice.state(sid, "SENTTERMINATE")["reason"] == "success"
    assert alice.state(sid, "DEINIT")["reason"] == "success"
    assert bob.state(sid, "RECEIVEDTERMINATE")["reason"] == "success"
    assert bob.state(sid, "DEINIT")["reason"] == "success"
    assert alice.client.sessions() == [] and bob.client.sessions() == []


def test_reject(pair):
    alice, bob = pair
    sid = alice.client.call(bob.bare)
    bob.state(sid, "RECEIVEDINITIATE")
    bob.client.reject(sid, "busy")
    bob.state(sid, "SENTREJECT")
    assert bob.state(sid, "DEINIT")["reason"] == "busy"
    assert alice.state(sid, "RECEIVEDREJECT")["reason"] == "busy"
    assert alice.state(sid, "DEINIT")["reason"] == "busy"


def test_caller_cancels_before_answer(pair):
    alice, bob = pair
    sid = alice.client.call(bob.bare)
    bob.state(sid, "RECEIVEDINITIATE")
    alice.client.hangup(sid)
    assert bob.state(sid, "RECEIVEDTERMINATE")["reason"] == "cancel"
    bob.state(sid, "DEINIT")


def test_call_offline_contact_is_not_found(pair):
    alice, _bob = pair
    with pytest.raises(ControlFailed) as info:
        alice.client.call("carol@localhost")  # registered, shares the roster, offline
    assert info.value.code == "not-found"
    with pytest.raises(ControlFailed) as info:
        alice.client.call("bob@localhost/no-such-resource")
    assert info.value.code == "not-found"
    assert alice.client.sessions() == []


def test_commands_on_wrong_sessions(start_agent):
    """Plain XEP-0166 calls (no XEP-0353 phase): a ringing session can carry mute."""
    plain = "[jingle]\nmessage_initiation = false\n"
    alice, bob = start_agent("alice", extra=plain), start_agent("bob", extra=plain)
    make_ready(alice, bob)
    with pytest.raises(ControlFailed) as info:
        alice.client.accept("no-such-sid")
    assert info.value.code == "unknown-session"
    sid = alice.client.call(bob.bare)
    bob.state(sid, "RECEIVEDINITIATE")
    with pytest.raises(ControlFailed) as info:
        alice.client.accept(sid)  # the caller cannot accept its own call
    assert info.value.code == "not-allowed"
    bob.client.mute(sid, True)  # session-info mute is fine while ringing
    assert alice.watch.wait_for(5, event="session.info", sid=sid, info="ringing")
    muted = alice.watch.wait_for(5, event="session.info", sid=sid, info="mute")
    assert muted["name"] == "voice"
    alice.client.hangup(sid)
    bob.state(sid, "DEINIT")


def test_send_file_bad_path_is_bad_request(pair, tmp_path):
    alice, bob = pair
    with pytest.raises(ControlFailed) as info:
        alice.client.send_file(bob.bare, str(tmp_path / "missing.bin"))
    assert info.value.code == "bad-request"
    assert alice.client.sessions() == []
