"""``jingle top``: counters become rates, the view renders as in its snapshot."""

from pathlib import Path

from control.top import TopView, render_text

SNAPSHOT = Path(__file__).resolve().parents[1] / "fixtures" / "top" / "call.txt"


def _view() -> TopView:
    view = TopView()
    view.status({
        "jid": "alice@example.com/desk", "connected": True,
        "workers": {"signalling": {"pid": 0, "alive": True, "restarts": 0},
                    "media": {"pid": 0, "alive": True, "restarts": 1}},
        "sessions": [
            {"sid": "c1", "peer": "bob@example.com/phone", "kind": "call",
             "direction": "outgoing", "state": "INPROGRESS",
             "transport": {"method": "ice-udp", "local": "srflx", "remote": "relay",
                           "encryption": "dtls-srtp"}},
            {"sid": "f1", "peer": "carol@example.com/pc", "kind": "file",
             "direction": "incoming", "state": "INPROGRESS",
             "file": {"name": "holiday.mp4", "size": 100_000_000}}]}, 10.0)
    for now, received, lost, octets in ((11.0, 50, 0, 4000), (12.0, 95, 5, 8000)):
        view.event({"event": "media.stats", "sid": "c1", "codec": "opus", "rtt_ms": 42.5,
                    "jitter_ms": 3.25, "received_packets": received, "lost_packets": lost,
                    "received_octets": octets, "sent_octets": octets * 2,
                    "dropped_packets": 3}, now)
    for now, moved in ((11.0, 10_000_000), (12.0, 30_000_000)):
        view.event({"event": "transfer.progress", "sid": "f1", "bytes": moved,
                    "size": 100_000_000}, now)
    return view


def test_rates_from_cumulative_counters():
    view = _view()
    call, transfer = view.sessions["c1"], view.sessions["f1"]
    assert call.loss_pct == 10.0  # 5 lost of 50 in the last second
    assert call.bits_in.rate == 32_000 and call.bits_out.rate == 64_000
    assert transfer.moved.rate == 20_000_000


def test_the_view_matches_its_snapshot():
    assert render_text(_view()) == SNAPSHOT.read_text()


def test_a_session_that_ended_leaves_the_view():
    view = _view()
    view.event({"event": "session.state", "sid": "c1", "state": "DEINIT"}, 13.0)
    assert "c1" not in view.sessions and "bob@example.com" not in render_text(view)


def test_mute_and_hold_show_beside_the_state():
    view = _view()
    view.event({"event": "media.stats", "sid": "c1", "peer_muted": True, "held": True,
                "received_packets": 95, "lost_packets": 5}, 13.0)
    assert "INPROGRESS (held, peer muted)" in render_text(view, width=200)
