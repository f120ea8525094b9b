"""Hypothesis over (state, action): every action in every state gives a transition
from the table or the right error, never an exception (after h2's
test_state_machines)."""

import xml.etree.ElementTree as ET

from hypothesis import given, settings
from hypothesis import strategies as st

from signalling.jingle.errors import UsageError
from signalling.jingle.session import TRANSITIONS, SendError, SendResult, StateChanged
from signalling.jingle.stanzas import Content, Jingle, ReasonInfo, build_jingle
from signalling.jingle.states import Action, Direction, Reason, Role, SessionState
from tests.unit.jingle.helpers import JULIET, ROMEO, Pair, voice_content

COMMANDS = ["initiate", "accept", "terminate", "info", "transport-info", "content-add",
            "content-accept", "transport-replace", "transport-accept", "media", "tick"]
ALLOWED_ERRORS = {"out-of-order", "unknown-session", "tie-break", "unsupported-info", None}


def _run_command(session, command, now):
    contents = voice_content()
    if command == "initiate":
        session.initiate(contents, now)
    elif command == "accept":
        session.accept(contents, now)
    elif command == "terminate":
        session.terminate(Reason.SUCCESS, now)
    elif command == "info":
        session.send_info(None, now)
    elif command == "transport-info":
        session.send_transport_info(contents, now)
    elif command == "content-add":
        session.modify(Action.CONTENT_ADD, (Content(session.role, "extra"),), now)
    elif command == "content-accept":
        session.modify(Action.CONTENT_ACCEPT, (Content(Role.INITIATOR, "extra"),), now)
    elif command == "transport-replace":
        session.modify(Action.TRANSPORT_REPLACE, contents, now)
    elif command == "transport-accept":
        session.modify(Action.TRANSPORT_ACCEPT, contents, now)
    elif command == "media":
        session.media_flowing(now)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(["romeo", "juliet"]), st.sampled_from(COMMANDS)),
                max_size=12))
def test_any_command_sequence_keeps_both_machines_sane(steps):
    pair = Pair()
    mine = pair.romeo.create_outgoing(JULIET, "urn:xmpp:jingle:apps:rtp:1")
    sessions = {"romeo": mine, "juliet": None}
    # The state each side last *reported* (StateChanged events): the table is the only
    # writer of state, so what the control socket shows always equals the real state.
    reported = {"romeo": SessionState.INIT, "juliet": None}

    def drain() -> None:
        for who, side in (("romeo", pair.romeo), ("juliet", pair.juliet)):
            for event in pair.events(side):
                inner = getattr(event, "event", None)
                if isinstance(inner, StateChanged) and inner.sid == mine.sid:
                    reported[who] = inner.state

    for who, command in steps:
        if command == "tick":
            pair.now += 61.0
            pair.romeo.handle_timer(pair.now)
            pair.juliet.handle_timer(pair.now)
        else:
            session = sessions[who]
            if who == "juliet" and session is None:
                session = sessions["juliet"] = pair.juliet.get(mine.sid)
            if session is None:
                continue
            before = session.state
            try:
                _run_command(session, command, pair.now)
            except UsageError:
                assert session.state is before
        pair.pump()
        drain()
        for name, session in sessions.items():
            if session is not None:
                assert session.state in TRANSITIONS
                assert session.state is reported[name], (name, session.state, reported)
    # Every request on the wire got exactly one answer.
    requests = sorted((src, el.get("id")) for src, el in pair.wire if el.get("type") == "set")
    answers = sorted((el.get("to"), el.get("id")) for _, el in pair.wire
                     if el.get("type") in ("result", "error"))
    assert answers == requests
    for _, el in pair.wire:
        if el.get("type") == "error":
            conditions = {c.tag.rpartition("}")[2] for c in el.find("{jabber:client}error")}
            jingle = conditions & {"out-of-order", "unknown-session", "tie-break",
                                   "unsupported-info"}
            assert jingle, ET.tostring(el)


def _drive_to(state):
    """A romeo-side session in ``state`` (those reachable by ordinary moves)."""
    pair = Pair()
    mine = pair.romeo.create_outgoing(JULIET, "urn:xmpp:jingle:apps:rtp:1")
    if state is SessionState.INIT:
        return pair, mine
    mine.initiate(voice_content(), 0.0)
    pair.pump()
    if state is SessionState.SENTINITIATE:
        return pair, mine
    pair.juliet.get(mine.sid).accept(voice_content(), 0.0)
    pair.pump()
    if state is SessionState.RECEIVEDACCEPT:
        return pair, mine
    mine.media_flowing(0.0)
    if state is SessionState.INPROGRESS:
        return pair, mine
    mine.modify(Action.TRANSPORT_REPLACE, voice_content(), 0.0)
    assert mine.state is SessionState.SENTMODIFY
    return pair, mine


@settings(max_examples=200, deadline=None)
@given(st.sampled_from([SessionState.INIT, SessionState.SENTINITIATE,
                        SessionState.RECEIVEDACCEPT, SessionState.INPROGRESS,
                        SessionState.SENTMODIFY]),
       st.sampled_from(list(Action)), st.sampled_from([JULIET, "mercutio@montague.lit/x"]))
def test_received_action_in_state(state, action, sender):
    pair, mine = _drive_to(state)
    pair.romeo.stanzas_to_send()
    pair.events(pair.romeo)
    jingle = Jingle(action, mine.sid, initiator=ROMEO, contents=voice_content(),
                    reason=ReasonInfo(Reason.SUCCESS))
    iq = ET.Element("iq", {"type": "set", "id": "x1", "from": sender, "to": ROMEO})
    iq.append(build_jingle(jingle))
    pair.romeo.receive_iq(iq, 0.0)
    (answer,) = [s for s in pair.romeo.stanzas_to_send() if s.iq_id == "x1"]
    legal = (Direction.RECEIVED, action) in TRANSITIONS[state]
    if sender != JULIET:
        assert isinstance(answer, SendError)
        assert answer.error.jingle_condition == "unknown-session"
        assert mine.state is state
    elif state is SessionState.INIT:
        # Not initiated yet: nothing the peer sends can be in order.
        assert isinstance(answer, SendError)
        assert answer.error.jingle_condition in ("out-of-order", "unknown-session")
    elif legal:
        assert isinstance(answer, SendResult)
    else:
        assert isinstance(answer, SendError)
        assert answer.error.jingle_condition in ALLOWED_ERRORS
        assert mine.state is state
    changes = [e.event for e in pair.events(pair.romeo)
               if isinstance(getattr(e, "event", None), StateChanged)]
    for change in changes:
        assert change.state in TRANSITIONS


def test_a_refused_modification_goes_back_through_the_table_with_an_event():
    """transport-replace answered with an error: the session returns to INPROGRESS
    and says so (it used to change state silently, leaving SENTMODIFY on show)."""
    from signalling.jingle.errors import StanzaError
    from signalling.jingle.session import SendRequest

    pair, mine = _drive_to(SessionState.SENTMODIFY)
    replace = [s for s in pair.romeo.stanzas_to_send() if isinstance(s, SendRequest)][-1]
    pair.events(pair.romeo)
    pair.romeo.receive_response(replace.iq_id, StanzaError("cancel", "feature-not-implemented"),
                                1.0)
    assert mine.state is SessionState.INPROGRESS
    changes = [e.event for e in pair.events(pair.romeo)
               if isinstance(getattr(e, "event", None), StateChanged)]
    assert [(c.previous, c.state) for c in changes] == [
        (SessionState.SENTMODIFY, SessionState.INPROGRESS)]
