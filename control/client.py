"""A typed client of the control contract (docs/control.md) for other Python tools.

Synchronous on purpose: scripts, tests and the CLI call one command, wait
for its one reply, and read events from an iterator.
"""

from __future__ import annotations

import itertools
import os
import time
from collections.abc import Iterator, Mapping
from types import TracebackType
from typing import Any

import zmq

from bus.curve import load_keys, secure_client
from control import protocol as cp

REPLY_TIMEOUT = 6.0  # the agent promises an answer within 5 s


class ControlFailed(Exception):
    """The agent answered ``ok: false``."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message


class AgentUnreachable(Exception):
    """No reply within the contract's time: the agent is not running there."""


def _secure(sock: zmq.Socket[bytes], curve_keys: str | None) -> None:
    """A tcp:// agent speaks CURVE: ``curve_keys`` is a folder with the agent's
    ``server.key`` and our ``client.key_secret`` (made by ``pyjingle-keys``)."""
    if curve_keys is not None:
        secure_client(sock, load_keys(curve_keys))


class ControlClient:
    def __init__(self, commands: str, events: str | None = None,
                 curve_keys: str | None = None) -> None:
        self._ctx = zmq.Context()
        self._sock = self._ctx.socket(zmq.DEALER)
        self._sock.setsockopt(zmq.LINGER, 0)
        _secure(self._sock, curve_keys)
        self._sock.connect(commands)
        self._events_endpoint = events
        self._curve_keys = curve_keys
        self._ids = itertools.count(1)
        self._prefix = f"{os.getpid()}-"

    def __enter__(self) -> ControlClient:
        return self

    def __exit__(self, *exc: type[BaseException] | BaseException | TracebackType | None) -> None:
        self.close()

    def close(self) -> None:
        self._sock.close(0)
        self._ctx.term()

    def request(self, cmd: str, args: Mapping[str, Any] | None = None,
                timeout: float = REPLY_TIMEOUT) -> dict[str, Any]:
        """Send one command; its result, or :class:`ControlFailed`."""
        req_id = f"{self._prefix}{next(self._ids)}"
        self._sock.send(cp.encode_request(req_id, cmd, args or {}))
        deadline = time.monotonic() + timeout
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0 or not self._sock.poll(int(remaining * 1000)):
                raise AgentUnreachable(f"no reply to {cmd!r} within {timeout:.0f} s")
            reply = cp.decode_reply(self._sock.recv())
            if reply.id != req_id:
                continue  # a late reply to an earlier request that timed out
            if not reply.ok:
                raise ControlFailed(reply.code, reply.message)
            return dict(reply.result)

    def send_raw(self, frame: bytes, timeout: float = REPLY_TIMEOUT) -> cp.Reply:
        """Send an arbitrary frame (for tests of bad input); the decoded reply."""
        self._sock.send(frame)
        if not self._sock.poll(int(timeout * 1000)):
            raise AgentUnreachable("no reply")
        return cp.decode_reply(self._sock.recv())

    # Typed conveniences for the contract's commands.
    def status(self) -> dict[str, Any]:
        return self.request("status")

    def sessions(self) -> list[dict[str, Any]]:
        return list(self.request("sessions")["sessions"])

    def call(self, to: str) -> str:
        return str(self.request("call", {"to": to})["sid"])

    def send_file(self, to: str, path: str, name: str | None = None,
                  description: str | None = None) -> str:
        args = {"to": to, "path": path, "name": name, "description": description}
        return str(self.request("send_file", {k: v for k, v in args.items() if v})["sid"])

    def request_file(self, to: str, name: str) -> str:
        return str(self.request("request_file", {"to": to, "name": name})["sid"])

    def accept(self, sid: str, directory: str | None = None) -> None:
        self.request("accept", {"sid": sid, **({"dir": directory} if directory else {})})

    def reject(self, sid: str, reason: str = "decline") -> None:
        self.request("reject", {"sid": sid, "reason": reason})

    def hangup(self, sid: str, reason: str | None = None) -> None:
        self.request("hangup", {"sid": sid, **({"reason": reason} if reason else {})})

    def mute(self, sid: str, muted: bool = True) -> None:
        self.request("mute", {"sid": sid, "muted": muted})

    def hold(self, sid: str, held: bool = True) -> None:
        self.request("hold", {"sid": sid, "held": held})

    def contacts(self) -> list[dict[str, Any]]:
        """The roster: ``{jid, subscription, pending}`` each (RFC 6121 states)."""
        return list(self.request("contacts")["contacts"])

    def approve(self, jid: str) -> None:
        self.request("approve", {"jid": jid})

    def deny(self, jid: str) -> None:
        self.request("deny", {"jid": jid})

    def add_contact(self, jid: str) -> None:
        self.request("add", {"jid": jid})

    def remove_contact(self, jid: str) -> None:
        self.request("remove", {"jid": jid})

    def events(self, topics: tuple[str, ...] = ("",),
               timeout: float | None = None) -> Iterator[dict[str, Any]]:
        """Events as dicts; stops after ``timeout`` seconds without one (None: never)."""
        if self._events_endpoint is None:
            raise ValueError("no events endpoint given")
        sub = self._ctx.socket(zmq.SUB)
        sub.setsockopt(zmq.LINGER, 0)
        _secure(sub, self._curve_keys)
        for topic in topics:
            sub.setsockopt(zmq.SUBSCRIBE, topic.encode())
        sub.connect(self._events_endpoint)
        try:
            while True:
                if not sub.poll(None if timeout is None else int(timeout * 1000)):
                    return
                yield cp.decode_event(sub.recv_multipart())
        finally:
            sub.close(0)


class EventWatcher:
    """A subscription opened now, so no event after this point is missed."""

    def __init__(self, endpoint: str, topics: tuple[str, ...] = ("",),
                 curve_keys: str | None = None) -> None:
        self._ctx: zmq.Context[zmq.Socket[bytes]] = zmq.Context.instance()
        self._sub = self._ctx.socket(zmq.SUB)
        self._sub.setsockopt(zmq.LINGER, 0)
        _secure(self._sub, curve_keys)
        for topic in topics:
            self._sub.setsockopt(zmq.SUBSCRIBE, topic.encode())
        self._sub.connect(endpoint)
        self.seen: list[dict[str, Any]] = []

    def close(self) -> None:
        self._sub.close(0)

    def poll(self, timeout: float) -> dict[str, Any] | None:
        if not self._sub.poll(int(timeout * 1000)):
            return None
        event = cp.decode_event(self._sub.recv_multipart())
        self.seen.append(event)
        return event

    def wait_for(self, timeout: float = 10.0, **match: Any) -> dict[str, Any]:
        """The first event (already seen or new) whose fields equal ``match``."""
        for event in self.seen:
            if all(event.get(k) == v for k, v in match.items()):
                self.seen.remove(event)
                return event
        deadline = time.monotonic() + timeout
        while (remaining := deadline - time.monotonic()) > 0:
            polled = self.poll(remaining)
            if polled is not None and all(polled.get(k) == v for k, v in match.items()):
                self.seen.remove(polled)
                return polled
        raise TimeoutError(f"no event matching {match} within {timeout} s; saw {self.seen}")
