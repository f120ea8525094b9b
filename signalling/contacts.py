"""Choosing the resource to call, as libjingle's MakeCallTo did (XEP-0166 §6.1).

Pure: the XMPP glue gathers each online resource's presence priority and
disco#info features; this picks the best one that supports what the session
needs, or None ("Could not find online friend").
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass


@dataclass(frozen=True)
class OnlineResource:
    jid: str  # full JID
    priority: int
    show: str = ""  # '' (available), 'chat', 'away', 'xa', 'dnd'
    features: frozenset[str] = frozenset()


_SHOW_RANK = {"chat": 0, "": 1, "away": 2, "xa": 3, "dnd": 4}


def choose_resource(resources: Iterable[OnlineResource], required: Iterable[str]) -> str | None:
    """The highest-priority resource supporting every ``required`` feature.

    Negative priority means "never route to me" (RFC 6121 §4.7.2.3), so such
    resources are skipped; ties go to the more available one, then the JID, so
    the choice is stable.
    """
    needed = frozenset(required)
    usable = [r for r in resources if r.priority >= 0 and needed <= r.features]
    if not usable:
        return None
    usable.sort(key=lambda r: (-r.priority, _SHOW_RANK.get(r.show, 5), r.jid))
    return usable[0].jid
