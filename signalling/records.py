"""One record per session in signalling: what the control surface reports about it
and the state of its call or file rules, held together and dropped together."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from bus import messages as m

if TYPE_CHECKING:
    from signalling.call_sessions import CallState
    from signalling.file_sessions import FileState

T = TypeVar("T")


@dataclass
class SessionRecord:
    """Everything signalling holds about one session (a proposed call's too)."""

    sid: str
    peer: str
    kind: m.SessionKind
    direction: m.Direction
    closed: bool = False  # the worker was told to close this session
    state: str = ""  # the last state reported (a proposal's, then its session's)
    call: CallState | None = None  # call_sessions' part
    file: FileState | None = None  # file_sessions' part


class Slot(Generic[T]):
    """One part of the records (``call`` or ``file``) seen as a mapping sid -> part:
    the helper that owns the part reads and writes it without a table of its own."""

    def __init__(self, records: dict[str, SessionRecord], part: str) -> None:
        self._records = records
        self._part = part

    def get(self, sid: str) -> T | None:
        record = self._records.get(sid)
        return getattr(record, self._part) if record is not None else None

    def __setitem__(self, sid: str, value: T) -> None:
        setattr(self._records[sid], self._part, value)  # the record exists from its creation

    def setdefault(self, sid: str, value: T) -> T:
        current = self.get(sid)
        if current is not None:
            return current
        self[sid] = value
        return value

    def pop(self, sid: str, default: Any = None) -> T | None:
        record = self._records.get(sid)
        if record is None:
            return default  # type: ignore[no-any-return]
        value: T | None = getattr(record, self._part)
        setattr(record, self._part, None)
        return value if value is not None else default

    def items(self) -> Iterator[tuple[str, T]]:
        for sid, record in list(self._records.items()):
            value = getattr(record, self._part)
            if value is not None:
                yield sid, value

    def __contains__(self, sid: object) -> bool:
        return isinstance(sid, str) and self.get(sid) is not None
