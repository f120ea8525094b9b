"""``jingle``: the command line of the control contract (docs/control.md).

Exit status 0 on success; otherwise a one-line message on stderr and
1 (the agent said no), 2 (bad usage, config or endpoint) or 3 (no agent answering).
Paths are resolved here, against the directory the command runs in, never by the
agent; no error ends in a traceback (a closed pipe ends ``jingle events | head``
quietly).
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import time
from typing import Any

import zmq

from bus.config import ConfigError, control_endpoints
from bus.curve import CurveKeyError
from bus.version import version
from control.client import AgentUnreachable, ControlClient, ControlFailed, EventWatcher

TERMINAL = "DEINIT"
PROBE_TIMEOUT = 2.0  # how long to wait for an agent before saying there is none


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="jingle", description="drive a pyjingle agent")
    p.add_argument("--version", action="version", version=f"jingle {version()}")
    p.add_argument("--agent", metavar="CONFIG|NAME",
                   help="the agent's TOML config, or the name of a systemd unit instance "
                        "(pyjingle@NAME); default: $PYJINGLE_AGENT")
    p.add_argument("--control", metavar="ENDPOINT", help="command socket endpoint")
    p.add_argument("--events", metavar="ENDPOINT", help="event socket endpoint")
    p.add_argument("--curve-keys", metavar="FOLDER",
                   help="CURVE keys for a tcp:// agent (server.key + client.key_secret)")
    sub = p.add_subparsers(dest="command", required=True)
    sub.add_parser("status", help="the agent, its workers and sessions")
    sub.add_parser("sessions", help="the live sessions")
    c = sub.add_parser("call", help="call a contact (bare or full JID)")
    c.add_argument("jid")
    c.add_argument("--wait", action="store_true", help="wait until the call ends")
    s = sub.add_parser("send", help="send a file")
    s.add_argument("jid")
    s.add_argument("path")
    s.add_argument("--name")
    s.add_argument("--description")
    s.add_argument("--no-wait", action="store_true", help="return once the offer is sent")
    f = sub.add_parser("fetch", help="ask a contact to send you a file (XEP-0234 request)")
    f.add_argument("jid")
    f.add_argument("name")
    f.add_argument("--no-wait", action="store_true", help="return once the request is sent")
    a = sub.add_parser("accept", help="accept an incoming call or file")
    a.add_argument("sid")
    a.add_argument("--dir", help="for files: where to save")
    a.add_argument("--wait", action="store_true",
                   help="follow the session to its end (a progress bar for files)")
    r = sub.add_parser("reject", help="reject an incoming call or file")
    r.add_argument("sid")
    r.add_argument("--reason", choices=("decline", "busy"), default="decline")
    h = sub.add_parser("hangup", help="end a call or transfer")
    h.add_argument("sid")
    h.add_argument("--reason")
    m = sub.add_parser("mute", help="mute (or --off: unmute) a call")
    m.add_argument("sid")
    m.add_argument("--off", action="store_true")
    o = sub.add_parser("hold", help="put a call on hold (or --off: resume it)")
    o.add_argument("sid")
    o.add_argument("--off", action="store_true")
    sub.add_parser("contacts", help="the roster: subscriptions and pending requests")
    for verb, text in (("approve", "approve a pending subscription request (and ask theirs)"),
                       ("deny", "refuse a pending subscription request"),
                       ("add", "ask a contact for a subscription"),
                       ("remove", "remove a contact")):
        sub.add_parser(verb, help=text).add_argument("jid")
    e = sub.add_parser("events", help="print events as JSON lines")
    e.add_argument("--no-follow", action="store_true", help="stop after 1 s without events")
    e.add_argument("--topic", action="append", default=[], help="only these event names")
    t = sub.add_parser("top", help="a live view of the agent's sessions and workers")
    t.add_argument("--once", action="store_true",
                   help="print one view after --interval seconds and exit")
    t.add_argument("--interval", type=float, default=1.0, help="seconds between refreshes")
    return p


def _print(obj: Any) -> None:
    print(json.dumps(obj, sort_keys=True), flush=True)


class Progress:
    """A one-line progress bar whose rate counts from the first byte, not from the
    command (the wait for the peer to accept is not transfer time)."""

    def __init__(self, show: bool) -> None:
        self.show = show
        self._first: tuple[float, int] | None = None

    def update(self, done: int, size: int) -> None:
        if not self.show:
            return
        now = time.monotonic()
        if self._first is None:
            self._first = (now, done)
        since, base = self._first
        rate = (done - base) / (now - since) if now > since else 0.0
        pct = 100.0 * done / size if size else 100.0
        eta = (size - done) / rate if rate > 0 else 0.0
        filled = int(pct / 5)
        print(f"\r[{'#' * filled}{'.' * (20 - filled)}] {pct:5.1f}% "
              f"{done / 1e6:8.1f}/{size / 1e6:.1f} MB {rate / 1e6:6.1f} MB/s ETA {eta:4.0f} s",
              end="", file=sys.stderr, flush=True)

    def end(self) -> None:
        if self.show and self._first is not None:
            print(file=sys.stderr)


def _wait_end(client: ControlClient, watcher: EventWatcher, sid: str, show: bool) -> int:
    """Follow ``sid`` to DEINIT; 0 only if it ended well (and any file was verified).
    Ctrl-C hangs the session up (an offer is cancelled, a transfer stopped)."""
    progress = Progress(show)
    verified: bool | None = None
    try:
        while True:
            event = watcher.poll(3600.0)
            if event is None or event.get("sid") != sid:
                continue
            name = event["event"]
            if name == "transfer.progress":
                progress.update(event.get("bytes", 0), event.get("size") or 0)
            elif name == "transfer.complete":
                progress.end()
                _print(event)
                verified = bool(event.get("verified"))
            elif name == "session.state" and event["state"] == TERMINAL:
                reason = event.get("reason") or ""
                if verified is False:
                    print("jingle: transfer finished but the hash did not match",
                          file=sys.stderr)
                    return 1
                if reason not in ("success", ""):
                    print(f"jingle: session ended: {reason}", file=sys.stderr)
                    return 1
                return 0
    except KeyboardInterrupt:
        progress.end()
        try:
            client.hangup(sid, "cancel")
            print(f"jingle: interrupted: session {sid} cancelled", file=sys.stderr)
        except (ControlFailed, AgentUnreachable) as exc:
            print(f"jingle: interrupted; hanging up {sid} failed: {exc}", file=sys.stderr)
        return 130


def _endpoints(args: argparse.Namespace) -> tuple[str, str, str | None]:
    if args.control and args.events:
        return args.control, args.events, args.curve_keys
    found = control_endpoints(args.agent)
    return (args.control or found.commands, args.events or found.events,
            args.curve_keys or found.curve_keys)


def _probe(client: ControlClient, commands: str) -> None:
    """Fail fast when nothing answers (an ipc socket that does not exist, or silence)."""
    if commands.startswith("ipc://") and not os.path.exists(commands[len("ipc://"):]):
        raise AgentUnreachable(f"no socket {commands[len('ipc://'):]}: is the agent running?")
    client.request("status", timeout=PROBE_TIMEOUT)


def main(argv: list[str] | None = None) -> int:
    # A closed pipe (`jingle events | head -1`) ends us quietly, as it does cat.
    signal.signal(signal.SIGPIPE, signal.SIG_DFL)
    args = _parser().parse_args(argv)
    try:
        commands, events, keys = _endpoints(args)
    except ConfigError as exc:
        print(f"jingle: config error: {exc}", file=sys.stderr)
        return 2
    try:
        with ControlClient(commands, events, keys) as client:
            _probe(client, commands)
            return _run(client, args, events, keys)
    except ControlFailed as exc:
        print(f"jingle: {exc.code}: {exc.message}", file=sys.stderr)
        return 1
    except CurveKeyError as exc:
        print(f"jingle: CURVE keys: {exc}", file=sys.stderr)
        return 2
    except zmq.ZMQError as exc:
        print(f"jingle: cannot use the endpoints {commands} / {events}: {exc}",
              file=sys.stderr)
        return 2
    except AgentUnreachable as exc:
        print(f"jingle: agent not answering at {commands}: {exc}", file=sys.stderr)
        return 3
    except KeyboardInterrupt:
        return 130


def _run(client: ControlClient, args: argparse.Namespace, events: str,
         keys: str | None) -> int:
    cmd = args.command
    if cmd == "status":
        _print(client.status())
    elif cmd == "sessions":
        _print(client.sessions())
    elif cmd in ("call", "send", "fetch"):
        # Subscribe first, so not even a fast ending is missed.
        watcher = EventWatcher(events, ("session.state", "transfer."), keys)
        try:
            if cmd == "call":
                sid = client.call(args.jid)
                wait, progress = args.wait, False
            elif cmd == "fetch":
                sid = client.request_file(args.jid, args.name)
                wait, progress = not args.no_wait, sys.stderr.isatty()
            else:
                sid = client.send_file(args.jid, os.path.abspath(args.path), args.name,
                                       args.description)
                wait, progress = not args.no_wait, sys.stderr.isatty()
            _print({"sid": sid})
            if wait:
                return _wait_end(client, watcher, sid, progress)
        finally:
            watcher.close()
    elif cmd == "accept":
        watcher = EventWatcher(events, ("session.state", "transfer."), keys)
        try:
            client.accept(args.sid, os.path.abspath(args.dir) if args.dir else None)
            if args.wait:
                return _wait_end(client, watcher, args.sid, sys.stderr.isatty())
        finally:
            watcher.close()
    elif cmd == "reject":
        client.reject(args.sid, args.reason)
    elif cmd == "hangup":
        client.hangup(args.sid, args.reason)
    elif cmd == "mute":
        client.mute(args.sid, not args.off)
    elif cmd == "hold":
        client.hold(args.sid, not args.off)
    elif cmd == "contacts":
        _print(client.contacts())
    elif cmd in ("approve", "deny", "add", "remove"):
        client.request(cmd, {"jid": args.jid})
    elif cmd == "events":
        topics = tuple(args.topic) or ("",)
        for event in client.events(topics, timeout=1.0 if args.no_follow else None):
            _print(event)
    elif cmd == "top":
        from control.top import run_top

        return run_top(client, events, keys, args.interval, args.once)
    return 0


if __name__ == "__main__":
    sys.exit(main())
