"""Errors of the Jingle core, carrying their wire conditions.

As in h11 and aioquic: :class:`ProtocolError` means the peer misbehaved and
becomes an IQ error (RFC 6120 §8.3 condition plus the XEP-0166 §8 Jingle
condition); :class:`UsageError` means the caller misused the API (a command
not allowed in this state) and never reaches the wire.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class StanzaError:
    """An IQ error to send or one received: ``<error type=...><condition/>...``."""

    type: str
    condition: str
    jingle_condition: str | None = None
    text: str | None = None


class ProtocolError(Exception):
    """The peer sent something we must refuse; ``error`` is what to answer."""

    def __init__(self, error: StanzaError) -> None:
        super().__init__(error.text or error.jingle_condition or error.condition)
        self.error = error


class UsageError(Exception):
    """A command that is not allowed now (e.g. accept on an outgoing call)."""


def bad_request(text: str) -> ProtocolError:
    """Malformed Jingle (XEP-0166 §6.3.2)."""
    return ProtocolError(StanzaError("modify", "bad-request", None, text))


def unknown_session(text: str = "no such session") -> ProtocolError:
    """XEP-0166 §8: sid unknown, ended, or not this sender's."""
    return ProtocolError(StanzaError("cancel", "item-not-found", "unknown-session", text))


def out_of_order(text: str) -> ProtocolError:
    """XEP-0166 §8: the action cannot occur in the session's current state."""
    return ProtocolError(StanzaError("wait", "unexpected-request", "out-of-order", text))


def tie_break(text: str) -> ProtocolError:
    """XEP-0166 §8: sent while we awaited a reply on a similar request, and ours wins."""
    return ProtocolError(StanzaError("cancel", "conflict", "tie-break", text))


def unsupported_info(text: str) -> ProtocolError:
    """XEP-0166 §8: a session-info payload we do not understand."""
    return ProtocolError(
        StanzaError("modify", "feature-not-implemented", "unsupported-info", text)
    )

