"""Relay-only: what the media worker may signal to the peer."""

from bus.messages import IceCandidateInfo
from media_worker.ice import signalled

HOST = IceCandidateInfo(1, "1", 0, "a", "10.0.0.2", 5000, 2130706431, "udp", "host")
SRFLX = IceCandidateInfo(1, "2", 0, "b", "198.51.100.2", 6000, 1694498815, "udp", "srflx",
                         "10.0.0.2", 5000)
RELAY = IceCandidateInfo(1, "3", 0, "c", "203.0.113.9", 7000, 16777215, "udp", "relay",
                         "198.51.100.2", 6000)


def test_relay_only_keeps_relays_without_related_address():
    (only,) = signalled([HOST, SRFLX, RELAY], relay_only=True)
    assert only.type == "relay" and only.ip == "203.0.113.9"
    assert only.rel_addr is None and only.rel_port is None


def test_default_signals_everything():
    assert signalled([HOST, SRFLX, RELAY], relay_only=False) == [HOST, SRFLX, RELAY]
