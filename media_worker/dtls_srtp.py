"""DTLS-SRTP (RFC 5763/5764) for one call: the handshake over ICE, then SRTP keys.

pyOpenSSL runs DTLS on memory BIOs, so this class does no I/O: datagrams from
the peer go in with :meth:`DtlsSrtp.receive`, datagrams to send come out, and
the retransmission clock is :meth:`timeout` / :meth:`handle_timeout` (DTLS
over UDP must resend lost flights itself, RFC 6347 §4.2.4). Once the
handshake is done the peer's certificate is checked against the fingerprint
signalling pinned (XEP-0320), and pylibsrtp sessions are keyed from the
exported keying material (RFC 5764 §4.2).
"""

from __future__ import annotations

import datetime
import hmac
import secrets
from dataclasses import dataclass

import pylibsrtp
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from OpenSSL import SSL

# RFC 5764 §4.1.2: the profile every WebRTC-era client (Conversations, Dino) offers.
SRTP_PROFILE = b"SRTP_AES128_CM_SHA1_80"
KEY_LEN, SALT_LEN = 16, 14
MTU = 1200  # DTLS records packed into datagrams no larger than ICE-safe sizes
HASH_ALGORITHMS = {
    "sha-1": hashes.SHA1(), "sha-224": hashes.SHA224(), "sha-256": hashes.SHA256(),
    "sha-384": hashes.SHA384(), "sha-512": hashes.SHA512(),
}


def is_dtls(data: bytes) -> bool:
    """RFC 7983 §7: a first byte of 20..63 is DTLS; 128..191 is RTP/RTCP."""
    return bool(data) and 20 <= data[0] <= 63


class DtlsError(Exception):
    """The handshake failed or the peer is not who signalling said."""


class DtlsTimeout(DtlsError):
    """No handshake in time: a path that loses everything, not an impostor."""


@dataclass(frozen=True)
class Certificate:
    """The agent's DTLS identity: an ECDSA P-256 key and a self-signed certificate."""

    key: ec.EllipticCurvePrivateKey
    cert: x509.Certificate

    @classmethod
    def generate(cls, days: int = 30) -> Certificate:
        key = ec.generate_private_key(ec.SECP256R1())
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, secrets.token_hex(8))])
        now = datetime.datetime.now(datetime.UTC)
        cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
                .public_key(key.public_key()).serial_number(x509.random_serial_number())
                .not_valid_before(now - datetime.timedelta(days=1))
                .not_valid_after(now + datetime.timedelta(days=days))
                .sign(key, hashes.SHA256()))
        return cls(key, cert)

    def fingerprint(self, algorithm: str = "sha-256") -> str:
        return fingerprint_of(self.cert, algorithm)


def fingerprint_of(cert: x509.Certificate, algorithm: str) -> str:
    """RFC 4572 §5: the hash of the DER certificate as upper-case colon-separated hex."""
    digest = cert.fingerprint(HASH_ALGORITHMS[algorithm])
    return ":".join(f"{b:02X}" for b in digest)


def _records(data: bytes) -> list[bytes]:
    """Split a buffer of DTLS records (13-byte header, length in bytes 11-12)."""
    out, i = [], 0
    while i + 13 <= len(data):
        end = i + 13 + int.from_bytes(data[i + 11:i + 13], "big")
        out.append(data[i:end])
        i = end
    return out


class DtlsSrtp:
    """One side of a DTLS-SRTP association."""

    def __init__(self, certificate: Certificate, *, client: bool,
                 remote_hash: str, remote_fingerprint: str) -> None:
        ctx = SSL.Context(SSL.DTLS_METHOD)
        ctx.use_certificate(certificate.cert)
        ctx.use_privatekey(certificate.key)
        ctx.set_tlsext_use_srtp(SRTP_PROFILE)
        # Self-signed on both sides: trust comes from the signalled fingerprint.
        ctx.set_verify(SSL.VERIFY_PEER | SSL.VERIFY_FAIL_IF_NO_PEER_CERT,
                       lambda *_args: True)
        ctx.set_cipher_list(b"ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-ECDSA-AES256-GCM-SHA384:"
                            b"ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-AES128-GCM-SHA256:"
                            b"ECDHE-RSA-AES256-GCM-SHA384")
        self._ssl = SSL.Connection(ctx)
        self._ssl.set_ciphertext_mtu(MTU)
        if client:
            self._ssl.set_connect_state()
        else:
            self._ssl.set_accept_state()
        self.client = client
        self.remote_hash = remote_hash
        self.remote_fingerprint = remote_fingerprint
        self.established = False
        self.tx: pylibsrtp.Session | None = None
        self.rx: pylibsrtp.Session | None = None

    # --- handshake ------------------------------------------------------------

    def start(self) -> list[bytes]:
        """The first flight (the client's ClientHello); nothing for the server."""
        return self._step() if self.client else []

    def receive(self, data: bytes) -> list[bytes]:
        """A DTLS datagram from the peer; returns the datagrams to send back."""
        self._ssl.bio_write(data)
        if not self.established:
            return self._step()
        try:
            self._ssl.recv(1500)  # no application data is expected; drives retransmits
        except SSL.ZeroReturnError:
            pass
        except (SSL.WantReadError, SSL.Error):
            pass
        return self._pending()

    def timeout(self) -> float | None:
        """Seconds until a lost flight must be sent again (None: nothing in flight)."""
        if self.established:
            return None
        value = self._ssl.DTLSv1_get_timeout()
        return None if value is None else float(value)

    def handle_timeout(self) -> list[bytes]:
        self._ssl.DTLSv1_handle_timeout()
        return self._pending()

    def _step(self) -> list[bytes]:
        try:
            self._ssl.do_handshake()
        except SSL.WantReadError:
            return self._pending()
        except SSL.Error as exc:
            raise DtlsError(f"DTLS handshake failed: {exc}") from None
        out = self._pending()
        self._established()
        return out

    def _pending(self) -> list[bytes]:
        """Datagrams of whole records, each at most MTU bytes."""
        buffered = b""
        while True:
            try:
                buffered += self._ssl.bio_read(65536)
            except SSL.WantReadError:
                break
        datagrams: list[bytes] = []
        for record in _records(buffered):
            if datagrams and len(datagrams[-1]) + len(record) <= MTU:
                datagrams[-1] += record
            else:
                datagrams.append(record)
        return datagrams

    def _established(self) -> None:
        peer = self._ssl.get_peer_certificate(as_cryptography=True)
        if peer is None:
            raise DtlsError("the peer presented no certificate")
        seen = fingerprint_of(peer, self.remote_hash)
        if not hmac.compare_digest(seen, self.remote_fingerprint):
            raise DtlsError("the peer's certificate does not match its signalled "
                            "fingerprint (XEP-0320)")
        if self._ssl.get_selected_srtp_profile() != SRTP_PROFILE:
            raise DtlsError("no SRTP profile in common")
        material = self._ssl.export_keying_material(
            b"EXTRACTOR-dtls_srtp", 2 * (KEY_LEN + SALT_LEN))
        # RFC 5764 §4.2: client key, server key, client salt, server salt.
        client_key = material[:KEY_LEN]
        server_key = material[KEY_LEN:2 * KEY_LEN]
        client_salt = material[2 * KEY_LEN:2 * KEY_LEN + SALT_LEN]
        server_salt = material[2 * KEY_LEN + SALT_LEN:]
        ours = client_key + client_salt if self.client else server_key + server_salt
        theirs = server_key + server_salt if self.client else client_key + client_salt
        self.tx = pylibsrtp.Session(pylibsrtp.Policy(
            key=ours, ssrc_type=pylibsrtp.Policy.SSRC_ANY_OUTBOUND,
            srtp_profile=pylibsrtp.Policy.SRTP_PROFILE_AES128_CM_SHA1_80))
        self.rx = pylibsrtp.Session(pylibsrtp.Policy(
            key=theirs, ssrc_type=pylibsrtp.Policy.SSRC_ANY_INBOUND,
            srtp_profile=pylibsrtp.Policy.SRTP_PROFILE_AES128_CM_SHA1_80))
        self.established = True

    # --- media ----------------------------------------------------------------

    def protect(self, packet: bytes, rtcp: bool = False) -> bytes:
        assert self.tx is not None
        return bytes(self.tx.protect_rtcp(packet) if rtcp else self.tx.protect(packet))

    def unprotect(self, packet: bytes, rtcp: bool = False) -> bytes:
        """Raises :class:`pylibsrtp.Error` when authentication fails (drop the packet)."""
        assert self.rx is not None
        return bytes(self.rx.unprotect_rtcp(packet) if rtcp else self.rx.unprotect(packet))
