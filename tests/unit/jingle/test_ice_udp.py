"""XEP-0176 transport details: ICE restart detection."""

from signalling.jingle.ice_udp import IceCandidate, IceUdpTransport, is_restart


def test_restart_is_new_credentials_with_or_without_candidates():
    known = ("8hhy", "asd88fgpdd777uzjYhagZg")
    assert is_restart(known, IceUdpTransport("9uB6", "YH75Fviy6338Vbrhrlp8Yh"))
    cand = IceCandidate(1, "1", 0, "c", "192.0.2.1", 3478, 1, "udp", "host")
    assert is_restart(known, IceUdpTransport("9uB6", "YH75Fviy6338Vbrhrlp8Yh", (cand,)))
    assert not is_restart(known, IceUdpTransport(*known, (cand,)))  # more candidates
    assert not is_restart(known, IceUdpTransport(None, None, (cand,)))
    assert not is_restart(None, IceUdpTransport("9uB6", "YH75Fviy6338Vbrhrlp8Yh"))
