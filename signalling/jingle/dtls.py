"""XEP-0320 DTLS-SRTP in Jingle: the <fingerprint/> element and one call's negotiation.

The fingerprint of the certificate each side will present in the DTLS
handshake travels inside the ICE-UDP <transport/> (XEP-0320 §1), with the
RFC 4145 ``setup`` role that says who starts the handshake (RFC 5763 §5:
the offerer says ``actpass``, the answerer picks ``active`` and so becomes the
DTLS client). The handshake itself runs in the media worker; here the roles
are chosen and the peer's fingerprint is pinned, whichever stanza brings it:
clients send it in session-initiate/-accept and also in transport-info, even
before session-accept, and it must be the same every time.
"""

from __future__ import annotations

import enum
import re
import xml.etree.ElementTree as ET
from dataclasses import dataclass

from signalling.jingle import namespaces as ns
from signalling.jingle.errors import bad_request

# RFC 4572 §5 hash function textual names (IANA), the ones OpenSSL can compute.
HASHES = ("sha-1", "sha-224", "sha-256", "sha-384", "sha-512")
_HEX_PAIRS = re.compile(r"^[0-9A-F]{2}(:[0-9A-F]{2})+$")


class Setup(enum.StrEnum):
    """RFC 4145 §4 'setup' values as XEP-0320 carries them."""

    ACTPASS = "actpass"
    ACTIVE = "active"
    PASSIVE = "passive"
    HOLDCONN = "holdconn"


class Encryption(enum.StrEnum):
    """``media.encryption``: what a call accepts."""

    REQUIRED = "required"  # DTLS-SRTP or no call (the default, as Conversations and Dino)
    OPTIONAL = "optional"  # DTLS-SRTP when the peer offers it, plain RTP otherwise
    OFF = "off"  # plain RTP only


@dataclass(frozen=True)
class Fingerprint:
    """XEP-0320 §1 <fingerprint hash='' setup=''>AB:CD:..</fingerprint>."""

    hash: str
    value: str  # upper-case hex pairs separated by colons (RFC 4572 §5)
    setup: Setup

    def to_element(self) -> ET.Element:
        el = ET.Element(f"{{{ns.DTLS}}}fingerprint", {"hash": self.hash, "setup": self.setup})
        el.text = self.value
        return el

    def same_key(self, other: Fingerprint) -> bool:
        return self.hash == other.hash and self.value == other.value


def parse_fingerprint(el: ET.Element) -> Fingerprint:
    hash_name = (el.get("hash") or "").lower()
    if hash_name not in HASHES:
        raise bad_request(f"DTLS fingerprint with unknown hash {el.get('hash')!r}")
    value = "".join((el.text or "").split()).upper()
    if not _HEX_PAIRS.match(value):
        raise bad_request("DTLS fingerprint is not colon-separated hex")
    try:
        # XEP-0320 examples omit nothing, but old clients did: actpass is the RFC default.
        setup = Setup(el.get("setup") or Setup.ACTPASS)
    except ValueError:
        raise bad_request(f"DTLS setup {el.get('setup')!r} is not one of "
                          "actpass, active, passive, holdconn") from None
    return Fingerprint(hash_name, value, setup)


def answer_setup(offered: Setup) -> Setup:
    """RFC 5763 §5: answer ``actpass`` with ``active`` (we start the handshake, which
    saves a round trip); ``active`` with ``passive`` and the reverse."""
    if offered is Setup.PASSIVE:
        return Setup.ACTIVE
    if offered is Setup.ACTIVE:
        return Setup.PASSIVE
    if offered is Setup.ACTPASS:
        return Setup.ACTIVE
    raise SecurityFailure("the peer holds the DTLS connection (setup='holdconn')")


class SecurityFailure(Exception):
    """The call cannot be secured as configured; it ends with ``security-error``."""


@dataclass(frozen=True)
class DtlsRole:
    """What the media worker needs: who starts the handshake and whom to expect."""

    client: bool
    remote: Fingerprint | None  # None until some stanza brought it


class DtlsNegotiation:
    """One call's XEP-0320 negotiation, fed with every transport the peer sends."""

    def __init__(self, mode: Encryption, local_value: str | None,
                 local_hash: str = "sha-256") -> None:
        self.mode = mode
        self.local_value = local_value
        self.local_hash = local_hash
        self.local_setup: Setup | None = None
        self.remote: Fingerprint | None = None  # the peer's key, pinned on first sight
        self.peer_setup: Setup | None = None  # its latest decided role (or actpass)

    def local(self) -> Fingerprint | None:
        """Ours as already offered or answered (transport-info repeats it, as clients do)."""
        if self.local_setup is None or self.local_value is None:
            return None
        return Fingerprint(self.local_hash, self.local_value, self.local_setup)

    def _ours(self, setup: Setup) -> Fingerprint:
        if self.local_value is None:
            raise SecurityFailure("no local certificate")
        self.local_setup = setup
        return Fingerprint(self.local_hash, self.local_value, setup)

    def offer(self) -> Fingerprint | None:
        """Our session-initiate's fingerprint (``actpass``), unless encryption is off."""
        if self.mode is Encryption.OFF:
            return None
        return self._ours(Setup.ACTPASS)

    def offer_acceptable(self) -> bool:
        """Whether the offer seen so far can be answered as configured: a plain
        offer cannot when encryption is required (refused before it rings)."""
        return self.mode is not Encryption.REQUIRED or self.remote is not None

    def answer(self, offered: Fingerprint | None) -> Fingerprint | None:
        """Our session-accept's fingerprint for the peer's offer (or what an earlier
        transport-info brought); None means plain RTP."""
        self.learn(offered)
        if not self.offer_acceptable():
            raise SecurityFailure("the caller offers no DTLS-SRTP (XEP-0320) and "
                                  "media.encryption is 'required'")
        if self.remote is None or self.mode is Encryption.OFF:
            return None
        assert self.peer_setup is not None
        return self._ours(answer_setup(self.peer_setup))

    def learn(self, fingerprint: Fingerprint | None) -> bool:
        """A fingerprint in any stanza from the peer; True when it is the first.

        A different key than the one already pinned is an attack or a bug: refused
        with :class:`SecurityFailure`.
        """
        if fingerprint is None:
            return False
        if fingerprint.setup is not Setup.ACTPASS or self.peer_setup is None:
            self.peer_setup = fingerprint.setup
        if self.remote is not None:
            if not self.remote.same_key(fingerprint):
                raise SecurityFailure("the peer's DTLS fingerprint changed during the call")
            return False
        self.remote = fingerprint
        return True

    def role(self) -> DtlsRole | None:
        """Once both sides have spoken: the handshake role, or None for plain RTP.

        Raises :class:`SecurityFailure` when the configuration demands encryption
        that the peer did not agree to.
        """
        if self.local_setup is None or self.remote is None:
            if self.mode is Encryption.REQUIRED:
                raise SecurityFailure("the peer sent no DTLS fingerprint (XEP-0320) and "
                                      "media.encryption is 'required'")
            return None
        if self.local_setup is Setup.ACTPASS:
            # We offered: the peer's answer decides (RFC 5763 §5).
            if self.peer_setup is Setup.HOLDCONN:
                raise SecurityFailure("the peer holds the DTLS connection (setup='holdconn')")
            return DtlsRole(client=self.peer_setup is Setup.PASSIVE, remote=self.remote)
        return DtlsRole(client=self.local_setup is Setup.ACTIVE, remote=self.remote)
