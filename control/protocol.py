"""The control contract's wire format (docs/control.md, version 1), both sides.

Requests: one msgpack map ``{"v": 1, "id": str, "cmd": str, "args": map}``.
Replies: ``{"v": 1, "id", "ok": true, "result"}`` or ``{"v": 1, "id", "ok": false,
"error": {"code", "message"}}``. Events: two frames, topic and
``{"v": 1, "event", "ts", ...}``. :func:`parse_request` validates every
argument against :data:`COMMANDS`, so a bad request is refused with a code
before anything acts on it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import msgpack

VERSION = 1

# Bounds on what one request may cost (a control endpoint may be reachable by other
# users or hosts): ZeroMQ drops a connection whose frame exceeds MAX_FRAME before
# it is read whole; msgpack refuses containers and strings past these lengths
# before building them, so no request holds the loop for more than microseconds.
MAX_FRAME = 64 * 1024
_UNPACK_LIMITS = {"max_str_len": 16 * 1024, "max_bin_len": 16 * 1024,
                  "max_array_len": 64, "max_map_len": 32, "max_ext_len": 0}

# Error codes, each documented in docs/control.md (a test checks).
UNKNOWN_COMMAND = "unknown-command"
BAD_REQUEST = "bad-request"
UNKNOWN_SESSION = "unknown-session"
NOT_FOUND = "not-found"
UNAVAILABLE = "unavailable"  # the process that must act is down or did not answer in time
NOT_ALLOWED = "not-allowed"  # e.g. accept on an outgoing call
INTERNAL_ERROR = "internal-error"
FAILED = "failed"  # a worker could not do it (e.g. the file cannot be created); says why


@dataclass(frozen=True)
class Arg:
    type: type
    required: bool = True
    choices: tuple[str, ...] = ()


COMMANDS: dict[str, dict[str, Arg]] = {
    "status": {},
    "sessions": {},
    "call": {"to": Arg(str)},
    "send_file": {"to": Arg(str), "path": Arg(str), "name": Arg(str, False),
                  "description": Arg(str, False)},
    "request_file": {"to": Arg(str), "name": Arg(str)},
    "accept": {"sid": Arg(str), "dir": Arg(str, False)},
    "reject": {"sid": Arg(str), "reason": Arg(str, False, ("decline", "busy"))},
    "hangup": {"sid": Arg(str), "reason": Arg(str, False)},
    "mute": {"sid": Arg(str), "muted": Arg(bool)},
    "hold": {"sid": Arg(str), "held": Arg(bool)},
    # Additions of version 1.1: contacts are the user's decision (RFC 6121).
    "contacts": {},
    "approve": {"jid": Arg(str)},
    "deny": {"jid": Arg(str)},
    "add": {"jid": Arg(str)},
    "remove": {"jid": Arg(str)},
}


class ControlError(Exception):
    """A request that gets ``ok: false``; ``code`` is the wire error code, ``req_id``
    the request's id where one could be read (so the client can match the reply)."""

    def __init__(self, code: str, message: str, req_id: str = "") -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.req_id = req_id


@dataclass(frozen=True)
class Request:
    id: str
    cmd: str
    args: Mapping[str, Any]


def parse_request(frame: bytes) -> Request:
    """Decode (once, within bounds) and validate one request frame, or raise
    :class:`ControlError`, which carries the request's id whenever it could be read."""
    if len(frame) > MAX_FRAME:
        raise ControlError(BAD_REQUEST, f"frame of {len(frame)} bytes exceeds {MAX_FRAME}")
    try:
        raw = msgpack.unpackb(frame, raw=False, **_UNPACK_LIMITS)
    except Exception:
        raise ControlError(BAD_REQUEST, "frame is not msgpack (or exceeds the limits)") from None
    if not isinstance(raw, dict):
        raise ControlError(BAD_REQUEST, "request must be a msgpack map")
    req_id = raw.get("id")
    if not isinstance(req_id, str):
        raise ControlError(BAD_REQUEST, "'id' must be a string")
    try:
        return _validate(req_id, raw)
    except ControlError as exc:
        exc.req_id = req_id
        raise


def _validate(req_id: str, raw: dict[Any, Any]) -> Request:
    if raw.get("v") != VERSION:
        raise ControlError(BAD_REQUEST, f"unsupported version {raw.get('v')!r}, expected 1")
    cmd = raw.get("cmd")
    if not isinstance(cmd, str):
        raise ControlError(BAD_REQUEST, "'cmd' must be a string")
    spec = COMMANDS.get(cmd)
    if spec is None:
        raise ControlError(UNKNOWN_COMMAND, f"unknown command {cmd[:64]!r}")
    args = raw.get("args", {})
    if args is None:
        args = {}
    if not isinstance(args, dict):
        raise ControlError(BAD_REQUEST, "'args' must be a map")
    for name, arg in spec.items():
        if name not in args or args[name] is None:
            if arg.required:
                raise ControlError(BAD_REQUEST, f"{cmd}: missing argument {name!r}")
            continue
        value = args[name]
        if type(value) is not arg.type:
            raise ControlError(BAD_REQUEST,
                               f"{cmd}: argument {name!r} must be {arg.type.__name__}")
        if arg.type is str and not value:
            raise ControlError(BAD_REQUEST, f"{cmd}: argument {name!r} is empty")
        if arg.choices and value not in arg.choices:
            raise ControlError(BAD_REQUEST,
                               f"{cmd}: {name!r} must be one of {', '.join(arg.choices)}")
    for name in args:
        if name not in spec:
            raise ControlError(BAD_REQUEST, f"{cmd}: unknown argument {str(name)[:64]!r}")
    return Request(req_id, cmd, args)


def encode_request(req_id: str, cmd: str, args: Mapping[str, Any]) -> bytes:
    packed: bytes = msgpack.packb({"v": VERSION, "id": req_id, "cmd": cmd, "args": dict(args)})
    return packed


def encode_ok(req_id: str, result: Mapping[str, Any]) -> bytes:
    packed: bytes = msgpack.packb({"v": VERSION, "id": req_id, "ok": True, "result": dict(result)})
    return packed


def encode_error(req_id: str, code: str, message: str) -> bytes:
    packed: bytes = msgpack.packb({"v": VERSION, "id": req_id, "ok": False,
                                   "error": {"code": code, "message": message}})
    return packed


def encode_event(name: str, ts: float, fields: Mapping[str, Any]) -> list[bytes]:
    body = {k: v for k, v in fields.items() if v is not None}
    body.update({"v": VERSION, "event": name, "ts": ts})
    return [name.encode(), msgpack.packb(body)]


@dataclass(frozen=True)
class Reply:
    id: str
    ok: bool
    result: Mapping[str, Any]
    code: str = ""
    message: str = ""


def decode_reply(frame: bytes) -> Reply:
    raw = msgpack.unpackb(frame, raw=False)
    if not isinstance(raw, dict) or not isinstance(raw.get("id"), str):
        raise ValueError("reply is not a control reply map")
    if raw.get("ok"):
        return Reply(raw["id"], True, raw.get("result") or {})
    error = raw.get("error") or {}
    return Reply(raw["id"], False, {}, str(error.get("code", "")), str(error.get("message", "")))


def decode_event(frames: list[bytes]) -> dict[str, Any]:
    if len(frames) != 2:
        raise ValueError("an event is two frames")
    body = msgpack.unpackb(frames[1], raw=False)
    if not isinstance(body, dict):
        raise ValueError("event body is not a map")
    return body
