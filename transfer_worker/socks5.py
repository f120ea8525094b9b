"""The SOCKS5 handshake of XEP-0065 bytestreams (RFC 1928 subset), sans-IO.

XEP-0065 §5.3.3 uses SOCKS5 with no authentication and a CONNECT whose
destination is the domain-name form (ATYP 3) of the 40-character hex dstaddr,
port 0. Both ends are state machines fed bytes with ``receive_data``; they
return what to send, and say when the stream is ready for file data.
"""

from __future__ import annotations

import enum

VERSION = 5
NO_AUTH = 0
NO_ACCEPTABLE = 0xFF
CONNECT = 1
ATYP_DOMAIN = 3
SUCCEEDED = 0
GENERAL_FAILURE = 1
HOST_UNREACHABLE = 4


class Socks5Error(Exception):
    """The other end broke the protocol or refused."""


class _Phase(enum.Enum):
    GREETING = 1
    REQUEST = 2
    READY = 3
    FAILED = 4


def _address(dstaddr: str) -> bytes:
    raw = dstaddr.encode("ascii")
    if len(raw) > 255:
        raise ValueError("dstaddr too long")
    return bytes([ATYP_DOMAIN, len(raw)]) + raw + b"\x00\x00"


class Socks5Client:
    """The side that connects to a candidate (XEP-0065 "target")."""

    def __init__(self, dstaddr: str) -> None:
        self.dstaddr = dstaddr
        self._phase = _Phase.GREETING
        self._buffer = b""
        self.leftover = b""  # data that arrived after the reply (already file data)

    def initial(self) -> bytes:
        """Greeting: version 5, one method, no authentication."""
        return bytes([VERSION, 1, NO_AUTH])

    @property
    def ready(self) -> bool:
        return self._phase is _Phase.READY

    def receive_data(self, data: bytes) -> bytes:
        self._buffer += data
        if self._phase is _Phase.GREETING:
            if len(self._buffer) < 2:
                return b""
            version, method = self._buffer[0], self._buffer[1]
            self._buffer = self._buffer[2:]
            if version != VERSION or method != NO_AUTH:
                self._phase = _Phase.FAILED
                raise Socks5Error(f"server chose method {method} (version {version})")
            self._phase = _Phase.REQUEST
            return bytes([VERSION, CONNECT, 0]) + _address(self.dstaddr)
        if self._phase is _Phase.REQUEST:
            if len(self._buffer) < 5:
                return b""
            version, reply, _rsv, atyp = self._buffer[:4]
            if version != VERSION or reply != SUCCEEDED:
                self._phase = _Phase.FAILED
                raise Socks5Error(f"CONNECT refused with reply {reply}")
            if atyp == ATYP_DOMAIN:
                total = 5 + self._buffer[4] + 2
            elif atyp == 1:
                total = 4 + 4 + 2
            elif atyp == 4:
                total = 4 + 16 + 2
            else:
                raise Socks5Error(f"reply address type {atyp}")
            if len(self._buffer) < total:
                return b""
            self.leftover, self._buffer = self._buffer[total:], b""
            self._phase = _Phase.READY
        return b""


class Socks5Server:
    """The side that listens (our direct candidate): accepts only ``expected`` dstaddrs."""

    def __init__(self, expected: set[str]) -> None:
        self.expected = expected
        self._phase = _Phase.GREETING
        self._buffer = b""
        self.dstaddr: str | None = None
        self.leftover = b""

    @property
    def ready(self) -> bool:
        return self._phase is _Phase.READY

    def receive_data(self, data: bytes) -> bytes:
        self._buffer += data
        if self._phase is _Phase.GREETING:
            if len(self._buffer) < 2 or len(self._buffer) < 2 + self._buffer[1]:
                return b""
            version, count = self._buffer[0], self._buffer[1]
            methods = self._buffer[2:2 + count]
            self._buffer = self._buffer[2 + count:]
            if version != VERSION or NO_AUTH not in methods:
                self._phase = _Phase.FAILED
                raise Socks5Error("client offers no acceptable method")
            self._phase = _Phase.REQUEST
            return bytes([VERSION, NO_AUTH]) + self.receive_data(b"")
        if self._phase is _Phase.REQUEST:
            if len(self._buffer) < 5:
                return b""
            version, command, _rsv, atyp, length = self._buffer[:5]
            if version != VERSION or command != CONNECT or atyp != ATYP_DOMAIN:
                self._phase = _Phase.FAILED
                raise Socks5Error("expected CONNECT to a domain-name address")
            total = 5 + length + 2
            if len(self._buffer) < total:
                return b""
            address = self._buffer[5:5 + length].decode("ascii", "replace")
            self.leftover, self._buffer = self._buffer[total:], b""
            if address not in self.expected:
                self._phase = _Phase.FAILED
                # RFC 1928 §6: host unreachable, then close.
                return bytes([VERSION, HOST_UNREACHABLE, 0]) + _address(address)
            self.dstaddr = address
            self._phase = _Phase.READY
            return bytes([VERSION, SUCCEEDED, 0]) + _address(address)
        return b""

    @property
    def failed(self) -> bool:
        return self._phase is _Phase.FAILED
