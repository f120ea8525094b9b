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


def test_an_advertised_address_stands_for_the_hosts_ipv4_addresses():
    """media.advertised_address (1:1 NAT): host IPv4 candidates carry the public
    address, port for port; IPv6, reflexive and relayed ones are left as they are."""
    from bus.messages import IceCandidateInfo
    from media_worker.ice import signalled

    def cand(ip: str, kind: str) -> IceCandidateInfo:
        return IceCandidateInfo(1, "f", 0, "c", ip, 5000, 100, "udp", kind)

    out = signalled([cand("10.0.0.5", "host"), cand("fd00::5", "host"),
                     cand("198.51.100.9", "srflx")], False, "203.0.113.7")
    assert [(c.ip, c.port, c.type) for c in out] == [
        ("203.0.113.7", 5000, "host"), ("fd00::5", 5000, "host"), ("198.51.100.9", 5000, "srflx")]
