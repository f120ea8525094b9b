"""``jingle``: the command line of the control contract (shared/CONTROL.md).

Exit status 0 on success; otherwise a one-line message on stderr and
1 (the agent said no), 2 (bad usage or config) or 3 (no agent answering).
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from bus.config import ConfigError, load_config
from control.client import AgentUnreachable, ControlClient, ControlFailed

TERMINAL = "DEINIT"


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="jingle", description="drive a pyjingle agent")
    p.add_argument("--agent", metavar="CONFIG", help="the agent's TOML config")
    p.add_argument("--control", metavar="ENDPOINT", help="command socket endpoint")
    p.add_argument("--events", metavar="ENDPOINT", help="event socket endpoint")
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
    a = sub.add_parser("accept", help="accept an incoming call or file")
    a.add_argument("sid")
    a.add_argument("--dir", help="for files: where to save")
    r = sub.add_parser("reject", help="reject an incoming call or file")
    r.add_argument("sid")
    r.add_argument("--reason", choices=("decline", "busy"), default="decline")
    h = sub.add_parser("hangup", help="end a call or transfer")
    h.add_argument("sid")
    h.add_argument("--reason")
    m = sub.add_parser("mute", help="mute (or --off: unmute) a call")
    m.add_argument("sid")
    m.add_argument("--off", action="store_true")
    e = sub.add_parser("events", help="print events as JSON lines")
    e.add_argument("--no-follow", action="store_true", help="stop after 1 s without events")
    e.add_argument("--topic", action="append", default=[], help="only these event names")
    return p


def _endpoints(args: argparse.Namespace) -> tuple[str, str]:
    if args.control and args.events:
        return args.control, args.events
    config = load_config(args.agent)
    return args.control or config.control.commands, args.events or config.control.events


def _print(obj: Any) -> None:
    print(json.dumps(obj, sort_keys=True), flush=True)


def _wait_end(client: ControlClient, sid: str, show_progress: bool) -> int:
    last_state = ""
    for event in client.events(("session.state", "transfer."), timeout=None):
        if event.get("sid") != sid:
            continue
        if event["event"] == "transfer.progress" and show_progress:
            size = event.get("size") or 0
            done = event.get("bytes", 0)
            pct = 100.0 * done / size if size else 0.0
            print(f"\r{pct:5.1f}% {done}/{size} bytes", end="", file=sys.stderr, flush=True)
        elif event["event"] == "transfer.complete":
            _print(event)
            if not event.get("verified"):
                print("jingle: transfer finished but the hash did not match", file=sys.stderr)
                return 1
        elif event["event"] == "session.state":
            last_state = event["state"]
            if last_state == TERMINAL:
                reason = event.get("reason") or ""
                ok = reason in ("success", "")
                if not ok:
                    print(f"jingle: session ended: {reason}", file=sys.stderr)
                return 0 if ok else 1
    return 1


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        commands, events = _endpoints(args)
    except ConfigError as exc:
        print(f"jingle: config error: {exc}", file=sys.stderr)
        return 2
    try:
        with ControlClient(commands, events) as client:
            return _run(client, args)
    except ControlFailed as exc:
        print(f"jingle: {exc.code}: {exc.message}", file=sys.stderr)
        return 1
    except AgentUnreachable as exc:
        print(f"jingle: agent not answering at {commands}: {exc}", file=sys.stderr)
        return 3
    except KeyboardInterrupt:
        return 130


def _run(client: ControlClient, args: argparse.Namespace) -> int:
    cmd = args.command
    if cmd == "status":
        _print(client.status())
    elif cmd == "sessions":
        _print(client.sessions())
    elif cmd == "call":
        sid = client.call(args.jid)
        _print({"sid": sid})
        if args.wait:
            return _wait_end(client, sid, show_progress=False)
    elif cmd == "send":
        sid = client.send_file(args.jid, args.path, args.name, args.description)
        _print({"sid": sid})
        if not args.no_wait:
            return _wait_end(client, sid, show_progress=sys.stderr.isatty())
    elif cmd == "accept":
        client.accept(args.sid, args.dir)
    elif cmd == "reject":
        client.reject(args.sid, args.reason)
    elif cmd == "hangup":
        client.hangup(args.sid, args.reason)
    elif cmd == "mute":
        client.mute(args.sid, not args.off)
    elif cmd == "events":
        topics = tuple(args.topic) or ("",)
        for event in client.events(topics, timeout=1.0 if args.no_follow else None):
            _print(event)
    return 0


if __name__ == "__main__":
    sys.exit(main())
