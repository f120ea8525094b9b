"""The bus schema: every message type round-trips; bad frames give typed errors."""

import dataclasses
import enum
import typing

import msgpack
import pytest

from bus import messages as m


def _sample(hint):
    origin = typing.get_origin(hint)
    if origin in (typing.Union, __import__("types").UnionType):
        return _sample(typing.get_args(hint)[0])
    if isinstance(hint, type) and issubclass(hint, enum.Enum):
        return list(hint)[-1]
    if origin is tuple:
        return (_sample(typing.get_args(hint)[0]),) * 2
    if dataclasses.is_dataclass(hint):
        hints = typing.get_type_hints(hint)
        return hint(**{f.name: _sample(hints[f.name]) for f in dataclasses.fields(hint)})
    return {str: "x", int: 7, float: 1.5, bool: True, bytes: b"\x00\xff"}[hint]


@pytest.mark.parametrize("cls", m.message_types(), ids=lambda c: c.__name__)
def test_every_message_round_trips(cls):
    hints = typing.get_type_hints(cls)
    msg = cls(**{f.name: _sample(hints[f.name]) for f in dataclasses.fields(cls)})
    assert m.decode(m.encode(msg)) == msg


@pytest.mark.parametrize("frame, error", [
    (b"\xc1garbage", m.MessageError),
    (msgpack.packb([1, 2]), m.MessageError),
    (msgpack.packb({"v": 99, "t": "Hello", "f": {}}), m.UnsupportedVersion),
    (msgpack.packb({"v": 1, "t": "NoSuchThing", "f": {}}), m.MessageError),
    (msgpack.packb({"v": 1, "t": "Command", "f": {"request_id": "a"}}), m.MessageError),
    (msgpack.packb({"v": 1, "t": "Hello", "f": {"process": "media", "pid": "x", "host": "h"}}),
     m.MessageError),
    (msgpack.packb({"v": 1, "t": "Hello", "f": {"process": "toaster", "pid": 1, "host": "h"}}),
     m.MessageError),
    (msgpack.packb({"v": 1, "t": "Hello", "f": {"process": "media", "pid": 1}}), m.MessageError),
    (msgpack.packb({"v": 1, "t": "Mute", "f": {"request_id": "r", "sid": "s", "muted": 1}}),
     m.MessageError),
    (msgpack.packb({"v": 1, "t": "Hello", "f": {"process": "media", "pid": 1, "host": "h",
                                                "extra": 1}}), m.MessageError),
])
def test_malformed_frames_raise_typed_errors(frame, error):
    with pytest.raises(error):
        m.decode(frame)


def test_version_mismatch_is_a_message_error():
    assert issubclass(m.UnsupportedVersion, m.MessageError)


def test_optional_fields_default():
    frame = msgpack.packb({"v": 1, "t": "Reject", "f": {"request_id": "r", "sid": "s"}})
    assert m.decode(frame) == m.Reject("r", "s", "decline")
