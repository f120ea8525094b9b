"""DTLS-SRTP between two in-memory endpoints: handshake, keys, pinning, retransmission."""

import time

import pylibsrtp
import pytest

from media_worker.dtls_srtp import Certificate, DtlsError, DtlsSrtp, is_dtls
from media_worker.rtp import RtpPacket

ALICE, BOB = Certificate.generate(), Certificate.generate()


def pair(bob_expects=None):
    client = DtlsSrtp(ALICE, client=True, remote_hash="sha-256",
                      remote_fingerprint=BOB.fingerprint())
    server = DtlsSrtp(BOB, client=False, remote_hash="sha-256",
                      remote_fingerprint=bob_expects or ALICE.fingerprint())
    return client, server


def run(client, server, drop_first=0):
    """Shuttle datagrams until both ends are done; optionally lose the first few."""
    to_server, to_client = client.start(), []
    dropped = 0
    for _ in range(50):
        if not to_server and not to_client:
            if client.established and server.established:
                return
            # Nothing in flight: wait for the retransmission timer (1 s at first).
            time.sleep(min(t for t in (client.timeout(), server.timeout(), 2.0) if t is not None))
            to_server += client.handle_timeout()
            to_client += server.handle_timeout()
        batch, to_server = to_server, []
        for datagram in batch:
            assert is_dtls(datagram) and len(datagram) <= 1200
            if dropped < drop_first:
                dropped += 1
                continue
            to_client += server.receive(datagram)
        batch, to_client = to_client, []
        for datagram in batch:
            to_server += client.receive(datagram)
    raise AssertionError("handshake did not finish")


def test_fingerprint_format():
    fp = ALICE.fingerprint()
    assert len(fp.split(":")) == 32 and fp == fp.upper()
    assert len(ALICE.fingerprint("sha-1").split(":")) == 20


def test_handshake_keys_srtp_both_ways():
    client, server = pair()
    run(client, server)
    rtp = RtpPacket(111, 7, 960, 0x1234, b"opus frame").encode()
    protected = client.protect(rtp)
    assert protected != rtp and len(protected) == len(rtp) + 10  # 80-bit auth tag
    assert protected[12:22] != b"opus frame"  # payload encrypted, header kept
    assert server.unprotect(protected) == rtp
    back = server.protect(RtpPacket(111, 9, 960, 0x9999, b"reply").encode())
    assert RtpPacket.decode(client.unprotect(back)).payload == b"reply"


def test_rtcp_is_protected_too():
    client, server = pair()
    run(client, server)
    sr = bytes([0x80, 200, 0, 6]) + bytes(24)
    assert server.unprotect(client.protect(sr, rtcp=True), rtcp=True) == sr


def test_tampered_packet_is_refused():
    client, server = pair()
    run(client, server)
    protected = bytearray(client.protect(RtpPacket(111, 1, 0, 1, b"x" * 40).encode()))
    protected[20] ^= 1
    with pytest.raises(pylibsrtp.Error):
        server.unprotect(bytes(protected))


def test_lost_flight_is_retransmitted():
    client, server = pair()
    run(client, server, drop_first=1)
    assert client.established and server.established


def test_wrong_fingerprint_fails_the_handshake():
    client, server = pair(bob_expects=BOB.fingerprint())  # bob expects the wrong key
    with pytest.raises(DtlsError, match="fingerprint"):
        run(client, server)


def test_lost_final_flight_is_answered_again_by_the_established_server():
    """The server is done once it sends its Finished; if that flight is lost the
    client resends its own, and the server (already established) must answer."""
    client, server = pair()
    to_server, dropped = client.start(), False
    for _ in range(40):
        to_client = [d for datagram in to_server for d in server.receive(datagram)]
        to_server = []
        if server.established and not dropped:
            to_client, dropped = [], True
        for datagram in to_client:
            to_server += client.receive(datagram)
        if client.established:
            break
        if not to_server:
            time.sleep(client.timeout() or 1.0)
            to_server = client.handle_timeout()
    assert dropped and client.established and server.established
