"""XEP-0353 proposals against the XEP's examples, both generations."""

import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from signalling.jingle import namespaces as ns
from signalling.jingle.errors import UsageError
from signalling.jingle.jmi import (
    TRANSITIONS,
    JmiAction,
    JmiMessage,
    JmiState,
    Proceed,
    Proposal,
    Ringing,
    StateChanged,
    build_message,
    parse_message,
    session_state,
)
from signalling.jingle.states import Reason, Role, SessionState

XEP0353 = Path(__file__).parents[2] / "fixtures" / "xep0353"
ROMEO = "romeo@montague.example/orchard"
JULIET_PHONE = "juliet@capulet.example/phone"
JULIET_LAPTOP = "juliet@capulet.example/laptop"
CURRENT = "ca3cf894-5325-482f-a412-a6e9f832298d"
OLD = "a73sjjvkla37jfea"


def msg(name, own="juliet@capulet.example"):
    return parse_message(ET.fromstring((XEP0353 / name).read_text()), own)


def events(p):
    out = []
    while (e := p.next_event()) is not None:
        out.append(e)
    return out


def caller(pid=CURRENT):
    p = Proposal(id=pid, local=ROMEO, peer="juliet@capulet.example", role=Role.INITIATOR)
    p.propose(("audio",), 0.0)
    return p


def callee(name="current-propose.xml", local=JULIET_LAPTOP):
    m = msg(name)
    p = Proposal(id=m.id, local=local, peer=m.sender, role=Role.RESPONDER)
    p.receive(m, 0.0)
    return p


@pytest.mark.parametrize("name, action, pid, sender", [
    ("current-propose.xml", JmiAction.PROPOSE, CURRENT, ROMEO),
    ("current-ringing.xml", JmiAction.RINGING, CURRENT, JULIET_PHONE),
    ("current-proceed.xml", JmiAction.PROCEED, CURRENT, JULIET_PHONE),
    ("current-reject.xml", JmiAction.REJECT, CURRENT, JULIET_PHONE),
    ("current-retract.xml", JmiAction.RETRACT, CURRENT, ROMEO),
    ("current-finish.xml", JmiAction.FINISH, CURRENT, ROMEO),
    ("old-propose.xml", JmiAction.PROPOSE, OLD, ROMEO),
    ("old-accept.xml", JmiAction.ACCEPT, OLD, JULIET_PHONE),
    ("old-proceed.xml", JmiAction.PROCEED, OLD, JULIET_PHONE),
    ("old-reject.xml", JmiAction.REJECT, OLD, JULIET_PHONE),
    ("old-retract.xml", JmiAction.RETRACT, OLD, ROMEO),
])
def test_xep_examples_parse(name, action, pid, sender):
    m = msg(name)
    assert (m.action, m.id, m.sender) == (action, pid, sender)


def test_propose_media_and_reasons():
    assert msg("current-propose.xml").media == ("audio",)
    reject = msg("current-reject.xml")
    assert (reject.reason, reject.text) == (Reason.BUSY, "Busy")
    assert msg("current-finish.xml").reason is Reason.SUCCESS


def test_sent_carbon_from_own_account_is_unwrapped_and_marked():
    m = msg("current-proceed-carbon.xml")
    assert m.carbon and m.action is JmiAction.PROCEED and m.to == ROMEO
    # The same wrapper from anyone else is a forgery (XEP-0280 §11).
    assert msg("current-proceed-carbon.xml", own="mallory@evil.example") is None


def test_received_carbons_and_foreign_payloads_are_ignored():
    el = ET.fromstring(f"<message xmlns='jabber:client' from='juliet@capulet.example'>"
                       f"<received xmlns='{ns.CARBONS}'><forwarded xmlns='{ns.FORWARD}'>"
                       f"<message xmlns='jabber:client' from='{ROMEO}' to='{JULIET_PHONE}'>"
                       f"<propose xmlns='{ns.JMI}' id='x'/></message></forwarded></received>"
                       "</message>")
    assert parse_message(el, "juliet@capulet.example") is None
    assert parse_message(ET.fromstring("<message xmlns='jabber:client'><body>hi</body>"
                                       "</message>"), "juliet@capulet.example") is None
    no_id = ET.fromstring(f"<message xmlns='jabber:client'><propose xmlns='{ns.JMI}'/>"
                          "</message>")
    assert parse_message(no_id, "juliet@capulet.example") is None


def test_namespace_one_of_versions_0_4_and_0_5_is_understood():
    el = ET.fromstring(f"<message xmlns='jabber:client' from='{ROMEO}' type='chat'>"
                       f"<propose xmlns='{ns.JMI_1}' id='p1'><description xmlns='{ns.RTP}' "
                       "media='audio'/></propose></message>")
    assert parse_message(el, "juliet@capulet.example").action is JmiAction.PROPOSE


def test_built_messages_are_current_generation_and_parse_back():
    el = build_message(JmiMessage(JmiAction.RETRACT, "p1", to="juliet@capulet.example",
                                  reason=Reason.CANCEL, text="Retracted"), "m9")
    assert el.get("type") == "chat" and el.find(f"{{{ns.HINTS}}}store") is not None
    el.set("from", ROMEO)
    back = parse_message(el, "juliet@capulet.example")
    assert (back.action, back.id, back.reason, back.text) == (
        JmiAction.RETRACT, "p1", Reason.CANCEL, "Retracted")


# --- the initiator -------------------------------------------------------------------


def test_initiator_current_generation_ringing_then_proceed():
    p = caller()
    (sent,) = p.messages_to_send()
    assert (sent.action, sent.to, sent.media) == (
        JmiAction.PROPOSE, "juliet@capulet.example", ("audio",))
    assert session_state(Role.INITIATOR, p.state) is SessionState.SENTINITIATE
    events(p)
    p.receive(msg("current-ringing.xml"), 1.0)
    assert events(p) == [Ringing(CURRENT, JULIET_PHONE)]
    p.receive(msg("current-proceed.xml"), 2.0)
    assert Proceed(CURRENT, JULIET_PHONE) in events(p)
    assert p.state is JmiState.PROCEEDING and p.device == JULIET_PHONE
    assert p.get_timer() is None
    p.finish(Reason.SUCCESS)
    (fin,) = p.messages_to_send()
    assert (fin.action, fin.to, fin.reason) == (JmiAction.FINISH, JULIET_PHONE, Reason.SUCCESS)
    assert p.state is JmiState.FINISHED


def test_initiator_old_generation_proceed_at_the_bare_jid():
    p = caller(OLD)
    p.receive(msg("old-accept.xml"), 1.0)  # the callee's devices among themselves
    assert p.state is JmiState.PROPOSED
    p.receive(msg("old-proceed.xml"), 1.0)
    assert p.state is JmiState.PROCEEDING and p.device == JULIET_PHONE


@pytest.mark.parametrize("name, pid, reason", [
    ("current-reject.xml", CURRENT, "busy"), ("old-reject.xml", OLD, "decline")])
def test_initiator_rejected(name, pid, reason):
    p = caller(pid)
    events(p)
    p.receive(msg(name), 1.0)
    assert events(p) == [StateChanged(pid, JmiState.REJECTED, JmiState.PROPOSED, reason)]
    assert session_state(Role.INITIATOR, p.state) is SessionState.RECEIVEDREJECT


def test_initiator_retracts_before_accept_and_on_ring_timeout():
    p = caller()
    p.messages_to_send()
    p.retract()
    (m,) = p.messages_to_send()
    assert (m.action, m.to, m.reason) == (JmiAction.RETRACT, "juliet@capulet.example",
                                          Reason.CANCEL)
    assert p.state is JmiState.RETRACTED
    q = caller()
    q.messages_to_send()
    q.handle_timer(59.0)
    assert q.state is JmiState.PROPOSED
    q.handle_timer(60.0)
    assert q.state is JmiState.RETRACTED and q.reason == "timeout"
    assert q.messages_to_send()[0].reason is Reason.TIMEOUT


def test_messages_from_strangers_or_other_ids_change_nothing():
    p = caller()
    stranger = JmiMessage(JmiAction.PROCEED, CURRENT, "mallory@evil.example/x", ROMEO)
    p.receive(stranger, 1.0)
    other = JmiMessage(JmiAction.PROCEED, "other", JULIET_PHONE, ROMEO)
    p.receive(other, 1.0)
    assert p.state is JmiState.PROPOSED


# --- the responder -------------------------------------------------------------------


@pytest.mark.parametrize("name", ["current-propose.xml", "old-propose.xml"])
def test_responder_rings_then_proceeds(name):
    p = callee(name, JULIET_PHONE)
    assert p.state is JmiState.RINGING
    assert session_state(Role.RESPONDER, p.state) is SessionState.RECEIVEDINITIATE
    p.ring()
    p.proceed(5.0)
    sent = p.messages_to_send()
    assert [(m.action, m.to) for m in sent] == [
        (JmiAction.RINGING, ROMEO), (JmiAction.PROCEED, ROMEO),
        (JmiAction.ACCEPT, "juliet@capulet.example")]
    assert p.state is JmiState.PROCEEDING
    # Our own <accept/> comes back through our bare JID: nothing happens.
    p.receive(JmiMessage(JmiAction.ACCEPT, p.id, JULIET_PHONE, "juliet@capulet.example"), 6.0)
    assert p.state is JmiState.PROCEEDING
    # No session-initiate within the timeout: the proposal expires.
    p.handle_timer(5.0 + p.initiate_timeout)
    assert p.state is JmiState.EXPIRED


def test_responder_rejects():
    p = callee()
    p.reject(Reason.BUSY)
    sent = p.messages_to_send()
    assert [(m.action, m.to, m.reason) for m in sent] == [
        (JmiAction.REJECT, ROMEO, Reason.BUSY),
        (JmiAction.REJECT, "juliet@capulet.example", Reason.BUSY)]
    assert session_state(Role.RESPONDER, p.state) is SessionState.SENTREJECT
    with pytest.raises(UsageError):
        p.proceed(1.0)


@pytest.mark.parametrize("name, pid", [("current-retract.xml", CURRENT),
                                       ("old-retract.xml", OLD)])
def test_responder_retracted_before_accept(name, pid):
    p = callee("current-propose.xml" if pid == CURRENT else "old-propose.xml")
    p.receive(msg(name), 1.0)
    assert p.state is JmiState.RETRACTED and p.reason == "cancel"
    assert session_state(Role.RESPONDER, p.state) is SessionState.RECEIVEDTERMINATE


@pytest.mark.parametrize("name, propose, reason", [
    ("current-proceed-carbon.xml", "current-propose.xml", "answered-elsewhere"),
    ("old-accept.xml", "old-propose.xml", "answered-elsewhere"),
    ("old-reject-own.xml", "old-propose.xml", "rejected-elsewhere"),
])
def test_answered_on_another_device_stops_ringing(name, propose, reason):
    p = callee(propose, JULIET_LAPTOP)
    events(p)
    p.receive(msg(name), 2.0)
    assert p.state is JmiState.ELSEWHERE and p.reason == reason
    assert p.messages_to_send() == []


def test_every_row_names_only_known_states():
    for (role, state), row in TRANSITIONS.items():
        assert isinstance(role, Role) and isinstance(state, JmiState)
        for target in row.values():
            assert target is None or isinstance(target, JmiState)


def test_responder_stops_ringing_when_the_caller_never_retracts():
    p = callee()
    assert p.get_timer() == p.ring_timeout
    p.handle_timer(p.ring_timeout)
    assert p.state is JmiState.EXPIRED and p.reason == "timeout"
    assert session_state(Role.RESPONDER, p.state) is SessionState.RECEIVEDTERMINATE

SENDERS = [ROMEO, JULIET_PHONE, JULIET_LAPTOP, "mallory@evil.example/x"]


@given(st.sampled_from([Role.INITIATOR, Role.RESPONDER]),
       st.lists(st.tuples(st.sampled_from(list(JmiAction)), st.sampled_from(SENDERS),
                          st.booleans(), st.sampled_from([CURRENT, "other"])), max_size=12))
def test_any_message_sequence_follows_the_table(role, script):
    """Whatever arrives, in any order: no exception, every move is a table row, and
    a finished proposal never comes back to life."""
    p = caller() if role is Role.INITIATOR else callee(local=JULIET_LAPTOP)
    events(p)
    for action, sender, carbon, pid in script:
        before = p.state
        p.receive(JmiMessage(action, pid, sender, ROMEO if carbon else "", carbon=carbon), 1.0)
        for e in events(p):
            if isinstance(e, StateChanged):
                assert e.previous is before
                row = TRANSITIONS[(role, before)]
                assert e.state in row.values()
                before = e.state
        if before in (JmiState.REJECTED, JmiState.RETRACTED, JmiState.ELSEWHERE):
            assert p.ended
    if p.ended:
        final = p.state
        p.receive(JmiMessage(JmiAction.PROCEED, p.id, JULIET_PHONE, ROMEO), 2.0)
        assert p.state is final
