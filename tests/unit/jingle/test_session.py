"""The Jingle session state machine: two in-memory peers, and the XEP examples fed in."""

import pytest

from signalling.jingle.errors import UsageError
from signalling.jingle.manager import SessionCreated, SessionEvent
from signalling.jingle.rtp import RtpInfo, RtpInfoKind
from signalling.jingle.session import (
    InfoReceived,
    PeerAccepted,
    SendError,
    SendRequest,
    SendResult,
    StateChanged,
    Timeouts,
)
from signalling.jingle.stanzas import Content
from signalling.jingle.states import Action, Reason, Role, SessionState
from tests.unit.jingle.helpers import JULIET, ROMEO, Pair, fixture, manager, voice_content

St = SessionState


def states(events):
    return [e.event.state for e in events
            if isinstance(e, SessionEvent) and isinstance(e.event, StateChanged)]


def call(pair):
    session = pair.romeo.create_outgoing(JULIET, "urn:xmpp:jingle:apps:rtp:1")
    session.initiate(voice_content(), pair.now)
    pair.pump()
    return session


def test_call_accept_media_hangup():
    pair = Pair()
    session = call(pair)
    assert states(pair.events(pair.romeo)) == [St.SENTINITIATE]
    juliet_events = pair.events(pair.juliet)
    assert states(juliet_events) == [St.RECEIVEDINITIATE]
    created = [e for e in juliet_events if isinstance(e, SessionCreated)]
    assert created == [SessionCreated(session.sid, ROMEO, "urn:xmpp:jingle:apps:rtp:1")]

    theirs = pair.juliet.get(session.sid)
    assert theirs is not None and theirs.role is Role.RESPONDER
    theirs.accept(voice_content(), pair.now)
    pair.pump()
    assert states(pair.events(pair.juliet)) == [St.SENTACCEPT]
    romeo_events = pair.events(pair.romeo)
    assert states(romeo_events) == [St.RECEIVEDACCEPT]
    assert any(isinstance(e.event, PeerAccepted) for e in romeo_events
               if isinstance(e, SessionEvent))

    assert session.media_flowing(pair.now) and theirs.media_flowing(pair.now)
    session.terminate(Reason.SUCCESS, pair.now)
    pair.pump()
    romeo_events = pair.events(pair.romeo)
    assert states(romeo_events) == [St.INPROGRESS, St.SENTTERMINATE, St.DEINIT]
    last = romeo_events[-1].event
    assert isinstance(last, StateChanged) and last.reason is not None
    assert last.reason.condition is Reason.SUCCESS
    assert states(pair.events(pair.juliet)) == [St.INPROGRESS, St.RECEIVEDTERMINATE, St.DEINIT]
    assert pair.romeo.get(session.sid) is None and pair.juliet.get(session.sid) is None


def test_reject_is_terminate_before_accept():
    pair = Pair()
    session = call(pair)
    pair.events(pair.romeo)
    pair.events(pair.juliet)
    theirs = pair.juliet.get(session.sid)
    theirs.terminate(Reason.DECLINE, pair.now)
    pair.pump()
    assert states(pair.events(pair.juliet)) == [St.SENTREJECT, St.DEINIT]
    events = pair.events(pair.romeo)
    assert states(events) == [St.RECEIVEDREJECT, St.DEINIT]
    assert events[-1].event.reason.condition is Reason.DECLINE


def test_caller_cancels_before_answer():
    pair = Pair()
    session = call(pair)
    pair.events(pair.juliet)
    session.terminate(Reason.CANCEL, pair.now)
    pair.pump()
    assert states(pair.events(pair.juliet)) == [St.RECEIVEDTERMINATE, St.DEINIT]


def test_media_is_not_inprogress_before_accept():
    pair = Pair()
    session = call(pair)
    assert session.media_flowing(pair.now) is False
    assert session.state is St.SENTINITIATE


def test_xep_initiate_then_accept_then_terminate_examples():
    """Juliet's agent fed the XEP-0166 examples: the flow of §6."""
    juliet = manager(JULIET, "j")
    juliet.receive_iq(fixture("session-initiate.xml"), 0.0)
    assert juliet.stanzas_to_send() == [SendResult("nzu25s8", ROMEO)]
    session = juliet.get("a73sjjvkla37jfea")
    assert session is not None and session.state is St.RECEIVEDINITIATE
    session.accept(voice_content(), 0.0)
    (accept,) = juliet.stanzas_to_send()[-1:]
    assert isinstance(accept, SendRequest) and accept.jingle.action is Action.SESSION_ACCEPT
    assert accept.jingle.responder == JULIET and accept.jingle.initiator == ROMEO


def test_romeo_fed_the_accept_example():
    romeo = manager(ROMEO, "r")
    session = romeo.create_outgoing(JULIET, "urn:xmpp:jingle:apps:rtp:1")
    session.sid = "a73sjjvkla37jfea"
    romeo.sessions = {session.sid: session}
    session.initiate(voice_content(), 0.0)
    romeo.receive_iq(fixture("session-accept.xml"), 0.0)
    assert session.state is St.RECEIVEDACCEPT
    assert romeo.stanzas_to_send()[-1] == SendResult("pd1bf839", JULIET)
    romeo.receive_iq(fixture("session-info-ringing.xml"), 0.0)
    events = [e.event for e in iter(romeo.next_event, None) if isinstance(e, SessionEvent)]
    assert InfoReceived(session.sid, RtpInfo(RtpInfoKind.RINGING)) in events
    romeo.receive_iq(fixture("session-terminate-success.xml"), 0.0)
    assert session.state is St.DEINIT
    assert session.end_reason is not None and session.end_reason.text == "Sorry, gotta go!"


def _romeo_in(state_after_accept=True):
    romeo = manager(ROMEO, "r")
    session = romeo.create_outgoing(JULIET, "urn:xmpp:jingle:apps:rtp:1")
    romeo.sessions = {"a73sjjvkla37jfea": session}
    session.sid = "a73sjjvkla37jfea"
    session.initiate(voice_content(), 0.0)
    if state_after_accept:
        romeo.receive_iq(fixture("session-accept.xml"), 0.0)
    romeo.stanzas_to_send()
    return romeo, session


def test_out_of_order_accept_twice():
    romeo, session = _romeo_in()
    romeo.receive_iq(fixture("session-accept.xml"), 0.0)
    (error,) = romeo.stanzas_to_send()
    assert isinstance(error, SendError)
    assert (error.error.condition, error.error.jingle_condition) == ("unexpected-request",
                                                                     "out-of-order")
    assert session.state is St.RECEIVEDACCEPT


def test_third_party_cannot_touch_the_session():
    juliet = manager(JULIET, "j")
    juliet.receive_iq(fixture("session-initiate.xml"), 0.0)
    juliet.stanzas_to_send()
    juliet.receive_iq(fixture("third-party-terminate.xml"), 0.0)
    (error,) = juliet.stanzas_to_send()
    assert isinstance(error, SendError) and error.to == "mercutio@montague.lit/street"
    assert (error.error.condition, error.error.jingle_condition) == ("item-not-found",
                                                                     "unknown-session")
    assert juliet.get("a73sjjvkla37jfea").state is St.RECEIVEDINITIATE


def test_unknown_sid():
    romeo = manager(ROMEO, "r")
    romeo.receive_iq(fixture("session-terminate-success.xml"), 0.0)
    (error,) = romeo.stanzas_to_send()
    assert isinstance(error, SendError) and error.error.jingle_condition == "unknown-session"


def test_unsupported_info_and_ping():
    romeo, _session = _romeo_in()
    romeo.receive_iq(fixture("session-info-unsupported.xml"), 0.0)
    (error,) = romeo.stanzas_to_send()
    assert isinstance(error, SendError)
    assert (error.error.condition, error.error.jingle_condition) == (
        "feature-not-implemented", "unsupported-info")
    romeo.receive_iq(fixture("session-info-ping.xml"), 0.0)
    assert romeo.stanzas_to_send() == [SendResult("msd76s21", JULIET)]


def test_content_add_glare_initiator_wins():
    romeo, session = _romeo_in()
    session.media_flowing(0.0)
    video = (Content(Role.INITIATOR, "video", None, None),)
    session.modify(Action.CONTENT_ADD, video, 0.0)
    assert session.state is St.SENTMODIFY
    romeo.stanzas_to_send()
    romeo.receive_iq(fixture("content-add.xml"), 0.0)
    (error,) = romeo.stanzas_to_send()
    assert isinstance(error, SendError)
    assert (error.error.condition, error.error.jingle_condition) == ("conflict", "tie-break")
    assert session.state is St.SENTMODIFY


def test_modify_glare_responder_yields():
    pair = Pair()
    session = call(pair)
    theirs = pair.juliet.get(session.sid)
    theirs.accept(voice_content(), 0.0)
    pair.pump()
    video_r = (Content(Role.INITIATOR, "video-r", None, None),)
    video_j = (Content(Role.RESPONDER, "video-j", None, None),)
    session.modify(Action.CONTENT_ADD, video_r, 0.0)
    theirs.modify(Action.CONTENT_ADD, video_j, 0.0)
    pair.pump()
    # Juliet (responder) yielded: she now holds Romeo's request; Romeo still waits.
    assert theirs.state is St.RECEIVEDMODIFY
    assert session.state is St.SENTMODIFY
    theirs.modify(Action.CONTENT_ACCEPT, video_r, 0.0)
    pair.pump()
    assert session.state is St.RECEIVEDACCEPT and theirs.state is St.SENTACCEPT


def test_crossing_initiates_lower_sid_wins():
    pair = Pair()
    mine = pair.romeo.create_outgoing(JULIET, "urn:xmpp:jingle:apps:rtp:1")
    theirs = pair.juliet.create_outgoing(ROMEO, "urn:xmpp:jingle:apps:rtp:1")
    assert theirs.sid < mine.sid  # "j1" < "r1"
    mine.initiate(voice_content(), 0.0)
    theirs.initiate(voice_content(), 0.0)
    pair.pump()
    errors = [el for _, el in pair.wire if el.get("type") == "error"]
    assert len(errors) == 1 and errors[0].get("to") == ROMEO
    assert mine.state is St.DEINIT
    assert mine.end_reason.condition is Reason.ALTERNATIVE_SESSION
    assert pair.romeo.get(theirs.sid).state is St.RECEIVEDINITIATE


def test_unanswered_initiate_times_out():
    pair = Pair(Timeouts(ring=30.0, iq=10.0, terminate=5.0))
    session = call(pair)
    pair.events(pair.romeo)
    assert pair.romeo.get_timer() == 30.0  # initiate acknowledged: only the ring timer
    pair.now = 31.0
    pair.romeo.handle_timer(pair.now)
    pair.pump()
    assert states(pair.events(pair.romeo)) == [St.SENTTERMINATE, St.DEINIT]
    events = pair.events(pair.juliet)
    assert states(events) == [St.RECEIVEDINITIATE, St.RECEIVEDTERMINATE, St.DEINIT]
    assert events[-1].event.reason.condition is Reason.TIMEOUT
    assert session.ended


def test_initiate_without_response_times_out():
    romeo = manager(ROMEO, "r", Timeouts(ring=60.0, iq=10.0))
    session = romeo.create_outgoing(JULIET, "urn:xmpp:jingle:apps:rtp:1")
    session.initiate(voice_content(), 0.0)
    romeo.handle_timer(10.5)
    assert session.state is St.DEINIT
    assert session.end_reason.condition is Reason.TIMEOUT


def test_initiate_refused_ends_session():
    romeo = manager(ROMEO, "r")
    session = romeo.create_outgoing(JULIET, "urn:xmpp:jingle:apps:rtp:1")
    session.initiate(voice_content(), 0.0)
    (request,) = romeo.stanzas_to_send()
    from signalling.jingle.stanzas import parse_error

    romeo.receive_response(request.iq_id, parse_error(fixture("error-service-unavailable.xml")),
                           0.0)
    assert session.state is St.DEINIT
    assert session.end_reason.condition is Reason.UNSUPPORTED_APPLICATIONS


def test_unsupported_application_is_acked_then_terminated():
    import xml.etree.ElementTree as ET

    juliet = manager(JULIET, "j")
    juliet.receive_iq(ET.fromstring(
        f"<iq type='set' id='i1' from='{ROMEO}'><jingle xmlns='urn:xmpp:jingle:1' "
        "action='session-initiate' sid='s1'><content creator='initiator' name='a'>"
        "<description xmlns='urn:example:app'/>"
        "<transport xmlns='urn:xmpp:jingle:transports:ice-udp:1'/></content></jingle></iq>"),
        0.0)
    ack, terminate = juliet.stanzas_to_send()
    assert ack == SendResult("i1", ROMEO)
    assert isinstance(terminate, SendRequest)
    assert terminate.jingle.reason.condition is Reason.UNSUPPORTED_APPLICATIONS


def test_commands_in_wrong_state_are_usage_errors():
    pair = Pair()
    session = call(pair)
    with pytest.raises(UsageError):
        session.accept(voice_content(), 0.0)  # the caller cannot accept its own call
    with pytest.raises(UsageError):
        session.initiate(voice_content(), 0.0)
    assert session.stanzas_to_send() == []


def test_reinitiate_with_same_sid_is_out_of_order():
    juliet = manager(JULIET, "j")
    juliet.receive_iq(fixture("session-initiate.xml"), 0.0)
    juliet.stanzas_to_send()
    juliet.receive_iq(fixture("session-initiate.xml"), 0.0)
    (error,) = juliet.stanzas_to_send()
    assert isinstance(error, SendError) and error.error.jingle_condition == "out-of-order"


def test_peer_unavailable_ends_sessions():
    pair = Pair()
    session = call(pair)
    pair.romeo.peer_unavailable(JULIET)
    assert session.state is St.DEINIT and session.end_reason.condition is Reason.GONE


def test_media_during_a_modification_resumes_to_inprogress():
    romeo, session = _romeo_in()
    session.modify(Action.TRANSPORT_REPLACE, voice_content(), 0.0)
    assert session.state is St.SENTMODIFY
    assert session.media_flowing(0.0) is True
    assert session.state is St.SENTMODIFY
    import xml.etree.ElementTree as ET

    from signalling.jingle.stanzas import Jingle, build_jingle

    accept = ET.Element("iq", {"type": "set", "id": "ta1", "from": JULIET, "to": ROMEO})
    accept.append(build_jingle(Jingle(Action.TRANSPORT_ACCEPT, session.sid,
                                      contents=voice_content())))
    romeo.receive_iq(accept, 0.0)
    assert session.state is St.INPROGRESS
