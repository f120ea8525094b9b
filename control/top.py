"""``jingle top``: the agent at a glance, like top(1) for calls and transfers.

:class:`TopView` is fed events and ``status`` replies (no I/O) and turns the
cumulative counters of ``media.stats`` and ``transfer.progress`` into rates over
the last interval: loss %, bitrate in and out, transfer rate and ETA; the path
(host/srflx/relay each side) and encryption come from ``transport.state``.
:func:`render` draws it with rich; :func:`run_top` refreshes it live.
"""

from __future__ import annotations

import io
import time
from dataclasses import dataclass, field
from typing import Any

from rich.console import Console, Group
from rich.live import Live
from rich.table import Table
from rich.text import Text

from control.client import ControlClient, EventWatcher


@dataclass
class _Counter:
    """A cumulative counter and the rate it moved at over its last step."""

    value: float = 0.0
    at: float = 0.0
    rate: float = 0.0

    def update(self, value: float, now: float) -> None:
        if self.at and now > self.at and value >= self.value:
            self.rate = (value - self.value) / (now - self.at)
        self.value, self.at = value, now


@dataclass
class SessionRow:
    sid: str
    peer: str = ""
    kind: str = ""
    direction: str = ""
    state: str = ""
    codec: str = ""
    path: str = ""
    encryption: str = ""
    rtt_ms: float | None = None
    jitter_ms: float | None = None
    loss_pct: float | None = None
    dropped: int = 0
    bits_in: _Counter = field(default_factory=_Counter)
    bits_out: _Counter = field(default_factory=_Counter)
    received: _Counter = field(default_factory=_Counter)
    lost: _Counter = field(default_factory=_Counter)
    moved: _Counter = field(default_factory=_Counter)
    size: int = 0
    file: str = ""
    flags: str = ""  # "peer muted", "held", ... from media.stats


@dataclass
class WorkerRow:
    name: str
    pid: int = 0
    alive: bool = False
    restarts: int = 0
    cpu: _Counter = field(default_factory=_Counter)


class TopView:
    """What ``jingle top`` shows, built from events and status replies."""

    def __init__(self) -> None:
        self.sessions: dict[str, SessionRow] = {}
        self.workers: dict[str, WorkerRow] = {}
        self.jid = ""
        self.connected = False
        self.last_error: str | None = None

    def status(self, status: dict[str, Any], now: float) -> None:
        self.jid = str(status.get("jid", ""))
        self.connected = bool(status.get("connected"))
        self.last_error = status.get("last_error")
        for name, worker in (status.get("workers") or {}).items():
            row = self.workers.setdefault(name, WorkerRow(name))
            row.pid, row.alive = int(worker.get("pid") or 0), bool(worker.get("alive"))
            row.restarts = int(worker.get("restarts") or 0)
            ticks = _cpu_ticks(row.pid) if row.alive else None
            if ticks is not None:
                row.cpu.update(ticks, now)
        live = {s["sid"]: s for s in status.get("sessions") or []}
        for sid in list(self.sessions):
            if sid not in live:
                del self.sessions[sid]
        for sid, summary in live.items():
            self._summary(self.sessions.setdefault(sid, SessionRow(sid)), summary)

    @staticmethod
    def _summary(row: SessionRow, summary: dict[str, Any]) -> None:
        row.peer = str(summary.get("peer", row.peer))
        row.kind = str(summary.get("kind", row.kind))
        row.direction = str(summary.get("direction", row.direction))
        row.state = str(summary.get("state", row.state))
        transport = summary.get("transport")
        if transport:
            row.path = _path(transport)
            row.encryption = str(transport.get("encryption") or row.encryption)
        offered = summary.get("file")
        if offered:
            row.file = str(offered.get("name", ""))
            row.size = int(offered.get("size") or row.size)

    def event(self, event: dict[str, Any], now: float) -> None:
        name, sid = event.get("event"), event.get("sid")
        if not sid:
            return
        if name == "session.state":
            if event.get("state") == "DEINIT":
                self.sessions.pop(sid, None)
            else:
                self._summary(self.sessions.setdefault(sid, SessionRow(sid)), event)
            return
        row = self.sessions.get(sid)
        if row is None:
            return
        if name == "transport.state" and event.get("state") == "connected":
            row.path = _path(event)
            row.encryption = str(event.get("encryption") or row.encryption)
        elif name == "media.stats":
            row.codec = str(event.get("codec") or row.codec)
            row.rtt_ms, row.jitter_ms = event.get("rtt_ms"), event.get("jitter_ms")
            row.dropped = int(event.get("dropped_packets") or 0)
            row.flags = ", ".join(name.replace("_", " ") for name in (
                "muted", "held", "peer_muted", "peer_held") if event.get(name))
            row.received.update(event.get("received_packets", 0), now)
            row.lost.update(event.get("lost_packets", 0), now)
            total = row.received.rate + row.lost.rate
            row.loss_pct = 100.0 * row.lost.rate / total if total > 0 else 0.0
            row.bits_in.update(8 * event.get("received_octets", 0), now)
            row.bits_out.update(8 * event.get("sent_octets", 0), now)
        elif name == "transfer.progress":
            row.moved.update(event.get("bytes", 0), now)
            row.size = int(event.get("size") or row.size)


def _path(transport: dict[str, Any]) -> str:
    """``ice-udp host->srflx``: the method and the candidate types of each end."""
    return (f"{transport.get('method', '')} {transport.get('local') or '?'}->"
            f"{transport.get('remote') or '?'}").strip()


def _cpu_ticks(pid: int) -> float | None:
    """CPU seconds used by a local process (None when it is not ours to read)."""
    try:
        with open(f"/proc/{pid}/stat") as fh:
            fields = fh.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / 100.0
    except (OSError, IndexError, ValueError):
        return None


def _num(value: float | None, fmt: str) -> str:
    return "-" if value is None else format(value, fmt)


def render(view: TopView) -> Group:
    heading = Text(f"{view.jid or '?'}  "
                   + ("connected" if view.connected else f"NOT CONNECTED: {view.last_error}"),
                   style="bold" if view.connected else "bold red")
    calls = Table(title="calls", title_justify="left", expand=False)
    for column in ("peer", "state", "codec", "path", "encryption", "RTT ms", "jitter ms",
                   "loss %", "in kb/s", "out kb/s", "dropped"):
        calls.add_column(column, no_wrap=column in ("peer", "state", "path"),
                         justify="right" if "ms" in column or "/" in column
                         or column in ("loss %", "dropped") else "left")
    files = Table(title="transfers", title_justify="left", expand=False)
    for column in ("peer", "direction", "state", "file", "done", "MB/s", "ETA s"):
        files.add_column(column, no_wrap=column in ("peer", "state"))
    for row in sorted(view.sessions.values(), key=lambda r: r.sid):
        if row.kind == "file":
            done = f"{100 * row.moved.value / row.size:.0f} %" if row.size else "-"
            rate = row.moved.rate / 1e6
            eta = (row.size - row.moved.value) / row.moved.rate if row.moved.rate else None
            files.add_row(row.peer, row.direction, row.state, row.file, done,
                          _num(rate, ".1f"), _num(eta, ".0f"))
        else:
            state = f"{row.state} ({row.flags})" if row.flags else row.state
            calls.add_row(row.peer, state, row.codec or "-", row.path or "-",
                          row.encryption or "-", _num(row.rtt_ms, ".1f"),
                          _num(row.jitter_ms, ".1f"), _num(row.loss_pct, ".1f"),
                          _num(row.bits_in.rate / 1000, ".1f"),
                          _num(row.bits_out.rate / 1000, ".1f"), str(row.dropped))
    workers = Table(title="workers", title_justify="left", expand=False)
    for column in ("worker", "pid", "alive", "CPU %", "restarts"):
        workers.add_column(column)
    for worker in sorted(view.workers.values(), key=lambda w: w.name):
        workers.add_row(worker.name, str(worker.pid), "yes" if worker.alive else "NO",
                        _num(100 * worker.cpu.rate if worker.cpu.at else None, ".0f"),
                        str(worker.restarts))
    return Group(heading, calls, files, workers)


def render_text(view: TopView, width: int = 160) -> str:
    """The view as plain text (``--once``, tests)."""
    out = io.StringIO()
    Console(file=out, width=width, color_system=None, force_terminal=False).print(
        render(view))
    return out.getvalue()


def run_top(client: ControlClient, events: str, keys: str | None, interval: float,
            once: bool) -> int:
    view = TopView()
    watcher = EventWatcher(events, ("",), keys)
    try:
        view.status(client.status(), time.monotonic())
        if once:
            _follow(client, watcher, view, interval)
            print(render_text(view), end="")
            return 0
        with Live(render(view), refresh_per_second=4, screen=False) as live:
            while True:
                _follow(client, watcher, view, interval)
                live.update(render(view))
    except KeyboardInterrupt:
        return 0
    finally:
        watcher.close()


def _follow(client: ControlClient, watcher: EventWatcher, view: TopView,
            interval: float) -> None:
    """Take in events for ``interval`` seconds, then a fresh status."""
    deadline = time.monotonic() + interval
    while (remaining := deadline - time.monotonic()) > 0:
        event = watcher.poll(remaining)
        if event is not None:
            view.event(event, time.monotonic())
            watcher.seen.clear()
    view.status(client.status(), time.monotonic())
