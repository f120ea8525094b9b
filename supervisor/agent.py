"""The supervisor: the agent's front door and the keeper of its processes.

It binds the three sockets that must outlive any worker — the control
ROUTER and PUB of docs/control.md, and the bus hub — so ``status`` answers and
events flow even while signalling restarts. Session commands are forwarded to
signalling as typed bus messages; a reply not back within
``FORWARD_TIMEOUT`` becomes ``unavailable``, so every request is answered
within 5 s. Sessions are mirrored from ``session.state`` events: when
signalling dies, the supervisor itself ends them with DEINIT.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import os
import signal
import time
import uuid
from typing import Any

import zmq
import zmq.asyncio
from zmq.auth.asyncio import AsyncioAuthenticator

from bus import curve
from bus import messages as m
from bus.config import AgentConfig
from bus.tasks import TaskSet
from bus.version import version
from control import protocol as cp
from supervisor import sd_notify
from supervisor.children import Child, kill, next_backoff, spawn

log = logging.getLogger(__name__)

FORWARD_TIMEOUT = 4.0
CONTROL_MAX_MSGSIZE = 1 << 20
VERSION = version()
SHUTDOWN_GRACE = 3.0
WORKERS = (m.Process.SIGNALLING, m.Process.MEDIA, m.Process.TRANSFER)


class Supervisor:
    def __init__(self, config: AgentConfig, config_path: str | None) -> None:
        self.config = config
        self.config_path = config_path
        self.ctx = zmq.asyncio.Context()
        spawn_set = set(config.bus.spawn)
        # Every process by its bus identity; media and transfer workers are pools of
        # media.workers / transfer.workers ("media", "media-2", ...), each spawned and
        # restarted alone.
        self.children: dict[str, Child] = {}
        for role in WORKERS:
            count = {m.Process.MEDIA: config.media.workers,
                     m.Process.TRANSFER: config.transfer.workers}.get(role, 1)
            for name in m.worker_names(role, count):
                self.children[name] = Child(role, role.value in spawn_set,
                                            "" if name == role.value else name)
        self.sessions: dict[str, dict[str, Any]] = {}
        self.jid = f"{config.bare_jid}/{config.account.resource}"
        self.connected = False
        self.encrypted = False
        self.last_error: str | None = None
        self._began: dict[str, float] = {}  # sid -> when it reached INPROGRESS
        self._pending: dict[str, asyncio.Future[m.Message]] = {}
        self._stopping = False
        self._bg = TaskSet()
        self.auth: AsyncioAuthenticator | None = None

    # --- lifecycle --------------------------------------------------------------

    def _secure(self) -> None:
        """CURVE on the sockets whose endpoints asked for it (tcp://): ZAP admits only
        the public keys in each key folder's ``clients/``."""
        folders = {"control": self.config.control.curve_keys, "bus": self.config.bus.curve_keys}
        if not any(folders.values()):
            return
        self.auth = AsyncioAuthenticator(self.ctx)
        self.auth.start()
        for domain, folder in folders.items():
            if folder is None:
                continue
            keys = curve.load_keys(folder)
            self.auth.configure_curve(domain=domain, location=str(keys.allowed))
            sockets = (self.commands, self.events) if domain == "control" else (self.hub,)
            for sock in sockets:
                curve.secure_server(sock, keys, domain)

    async def run(self, stop: asyncio.Event) -> None:
        self.hub = self.ctx.socket(zmq.ROUTER)
        self.hub.setsockopt(zmq.ROUTER_HANDOVER, 1)
        self.hub.setsockopt(zmq.ROUTER_MANDATORY, 1)
        self.hub.setsockopt(zmq.LINGER, 0)
        self.hub.setsockopt(zmq.MAXMSGSIZE, m.MAX_FRAME)
        self.commands = self.ctx.socket(zmq.ROUTER)
        self.commands.setsockopt(zmq.LINGER, 0)
        # Larger frames drop the sender's connection unread; up to this, they get
        # a bad-request reply without being decoded.
        self.commands.setsockopt(zmq.MAXMSGSIZE, CONTROL_MAX_MSGSIZE)
        self.events = self.ctx.socket(zmq.PUB)
        self.events.setsockopt(zmq.LINGER, 0)
        self._secure()
        self.hub.bind(self.config.bus.endpoint)
        self.commands.bind(self.config.control.commands)
        self.events.bind(self.config.control.events)
        for endpoint in (self.config.control.commands, self.config.control.events,
                         self.config.bus.endpoint):
            if endpoint.startswith("ipc://"):
                os.chmod(endpoint[len("ipc://"):], 0o600)
        log.info("control on %s, events on %s, bus on %s", self.config.control.commands,
                 self.config.control.events, self.config.bus.endpoint)
        for child in self.children.values():
            if child.spawned_here:
                await self._start(child, restarted=False)
        for loop in (self._serve_hub(), self._serve_control(), self._watch_liveness(),
                     self._feed_watchdog()):
            self._bg.spawn(loop)
        sd_notify.notify("READY=1")
        sd_notify.notify(f"STATUS=logging in as {self.jid}")
        await stop.wait()
        await self.shutdown()

    async def shutdown(self) -> None:
        self._stopping = True
        sd_notify.notify("STOPPING=1")
        for name in self.children:
            await self._send(name, m.Shutdown("supervisor stopping"))
        for child in self.children.values():
            kill(child, signal.SIGTERM)
        deadline = time.monotonic() + SHUTDOWN_GRACE
        for child in self.children.values():
            if child.proc is None:
                continue
            try:
                await asyncio.wait_for(child.proc.wait(), max(0.05, deadline - time.monotonic()))
            except TimeoutError:
                log.warning("%s did not stop in time, killing it", child.ident)
                kill(child)
                await child.proc.wait()
        self._bg.cancel_all()
        for sock in (self.hub, self.commands, self.events):
            sock.close(linger=0)
        if self.auth is not None:
            self.auth.stop()
        self.ctx.term()

    async def _start(self, child: Child, *, restarted: bool) -> None:
        await spawn(child, self.config_path)
        if restarted:
            child.restarts += 1
        self._bg.spawn(self._reap(child))

    async def _reap(self, child: Child) -> None:
        proc = child.proc
        assert proc is not None
        code = await proc.wait()
        if child.proc is not proc:
            return
        child.alive = False
        child.backlog.clear()
        if self._stopping:
            log.info("%s (pid %d) stopped", child.ident, child.pid)
        else:
            log.warning("%s (pid %d) exited with %s", child.ident, child.pid, code)
        self._publish_worker(child, m.WorkerState.EXITED, code)
        await self._worker_lost(child, code)
        if self._stopping:
            return
        await asyncio.sleep(next_backoff(child, time.monotonic()))
        if not self._stopping:
            await self._start(child, restarted=True)

    async def _worker_lost(self, child: Child, exit_code: int | None) -> None:
        """Everything that depended on ``child`` must end, with an event, now."""
        if child.process is m.Process.SIGNALLING:
            self._fail_pending("signalling exited")
            if self.connected:
                self.connected = False
                self._publish("connection.state", {"state": "disconnected",
                                                   "reason": "signalling process exited"})
            for sid, summary in list(self.sessions.items()):
                self._publish_session(dict(summary, state="DEINIT",
                                           reason="failed-application"))
                self.sessions.pop(sid, None)
            for worker in self._workers():
                await self._send(worker, m.ResetSessions("signalling exited"))
        else:
            await self._send(m.Process.SIGNALLING, m.WorkerStateChanged(
                child.process, m.WorkerState.EXITED, child.pid, child.restarts, exit_code,
                name=child.ident))

    def _workers(self) -> list[str]:
        """The media and transfer workers' bus identities."""
        return [name for name, child in self.children.items()
                if child.process is not m.Process.SIGNALLING]

    async def _watch_liveness(self) -> None:
        """A process silent for ``heartbeat_timeout`` is treated as dead, unless the
        silence was ours: frames waiting on the hub, or this loop starved of CPU (it
        woke late), say nothing about the children."""
        timeout, interval = self.config.bus.heartbeat_timeout, self.config.bus.heartbeat_interval
        last = time.monotonic()
        while True:
            await asyncio.sleep(interval)
            now = time.monotonic()
            late, last = now - last - interval, now
            if late > interval or int(self.hub.getsockopt(zmq.EVENTS)) & zmq.POLLIN:
                if late > interval:
                    log.warning("supervisor starved of CPU for %.1f s: its children's "
                                "silence is not held against them", late)
                for child in self.children.values():
                    child.last_heard = max(child.last_heard, now - interval)
            for child in self.children.values():
                if child.alive:
                    await self._send(child.ident,
                                     m.Heartbeat(m.Process.SUPERVISOR, os.getpid()))
                if child.alive and now - child.last_heard > timeout:
                    log.error("%s silent for %.1f s", child.ident, now - child.last_heard)
                    if child.spawned_here:
                        kill(child)  # _reap restarts it
                    else:
                        child.alive = child.announced = False
                        self._publish_worker(child, m.WorkerState.EXITED)
                        await self._worker_lost(child, None)

    async def _feed_watchdog(self) -> None:
        interval = sd_notify.watchdog_interval()
        if interval is None:
            return
        while True:
            # Fed from the event loop, so a hung supervisor starves the watchdog.
            sd_notify.notify("WATCHDOG=1")
            await asyncio.sleep(interval)

    # --- bus hub --------------------------------------------------------------------

    async def _send(self, process: str, message: m.Message) -> bool:
        return await self._send_raw(process, m.Process.SUPERVISOR, m.encode(message))

    async def _serve_hub(self) -> None:
        while True:
            frames = await self.hub.recv_multipart()
            if len(frames) != 3:
                log.warning("bus: dropped a frame set of %d parts", len(frames))
                continue
            try:
                source, destination = frames[0].decode(), frames[1].decode()
                m.role_of(source), m.role_of(destination)
            except (ValueError, UnicodeDecodeError):
                log.warning("bus: dropped a frame from an unknown identity")
                continue
            child = self.children.get(source)
            if child is not None:
                child.last_heard = time.monotonic()
            if destination != m.Process.SUPERVISOR:
                if not await self._send_raw(destination, source, frames[2]):
                    log.debug("bus: %s unreachable for %s", destination, source)
                continue
            try:
                message = m.decode(frames[2])
            except m.MessageError as exc:
                log.warning("bus: bad message from %s: %s", source, exc)
                continue
            await self._on_message(source, message)

    async def _send_raw(self, destination: str, source: str, payload: bytes) -> bool:
        """Forward on the hub; for a process that is starting, hold it until its Hello."""
        child = self.children.get(destination)
        if child is not None and child.spawned_here and not child.alive:
            if child.proc is None or child.proc.returncode is not None:
                return False
            if len(child.backlog) >= Child.MAX_BACKLOG:
                log.error("bus: backlog for %s full, dropping", destination)
                return False
            child.backlog.append((str(source).encode(), payload))
            return True
        try:
            await self.hub.send_multipart([str(destination).encode(), str(source).encode(),
                                           payload], flags=zmq.NOBLOCK)
            return True
        except zmq.ZMQError:
            return False  # not connected (EHOSTUNREACH) or full: the peer is down

    async def _on_message(self, source: str, message: m.Message) -> None:
        child = self.children.get(source)
        role = m.role_of(source)
        if role in (m.Process.MEDIA, m.Process.TRANSFER):
            self._note_worker(source, message)
        joined = False
        if isinstance(message, m.Hello) and child is None and role in (m.Process.MEDIA,
                                                                        m.Process.TRANSFER):
            # A worker started on its own (another host, over tcp+CURVE) joins its pool.
            child = self.children[source] = Child(role, False,
                                                  "" if source == role.value else source)
            child.last_heard = time.monotonic()
            log.info("%s joined from %s (pid %d)", source, message.host, message.pid)
            joined = True
        if isinstance(message, m.Hello) and child is not None:
            if not child.spawned_here and child.pid not in (0, message.pid):
                child.restarts += 1
            child.pid, child.alive = message.pid, True
            backlog, child.backlog = child.backlog, []
            for origin, payload in backlog:
                await self._send_raw(source, origin.decode(), payload)
            if not child.announced:
                child.announced = True
                self._publish_worker(child, m.WorkerState.RESTARTED if child.restarts
                                     else m.WorkerState.STARTED)
            if source == m.Process.SIGNALLING:
                for worker in self._workers():
                    await self._send(worker, m.ResetSessions("signalling started"))
            elif self.children[m.Process.SIGNALLING].alive and (child.restarts or joined):
                await self._send(m.Process.SIGNALLING, m.WorkerStateChanged(
                    role, m.WorkerState.RESTARTED if child.restarts else m.WorkerState.STARTED,
                    message.pid, child.restarts, name=source))
        elif isinstance(message, m.Goodbye) and child is not None:
            log.info("%s says goodbye", source)
            if not child.spawned_here and child.alive:
                # A process of its own (systemd unit, other host) left on purpose.
                child.alive = child.announced = False
                self._publish_worker(child, m.WorkerState.EXITED, 0)
                await self._worker_lost(child, 0)
        elif isinstance(message, m.CommandSucceeded | m.CommandFailed):
            future = self._pending.pop(message.request_id, None)
            if future is not None and not future.done():
                future.set_result(message)
        elif isinstance(message, m.SessionStateEvent):
            summary: dict[str, Any] = {
                "sid": message.sid, "peer": message.peer, "kind": message.kind.value,
                "direction": message.direction.value, "state": message.state}
            known = self.sessions.get(message.sid, {})
            offered = known.get("file")
            for kept in ("transport", "worker"):
                if kept in known:
                    summary[kept] = known[kept]
            if message.worker:
                summary["worker"] = message.worker  # placed by signalling (a pool)
            if message.file is not None:
                offered = {k: v for k, v in dataclasses.asdict(message.file).items()
                           if v is not None}
            if offered:
                summary["file"] = offered  # kept on the entry for the session's life
            self._tell_session(summary, message.reason)
            if message.state == "DEINIT":
                self.sessions.pop(message.sid, None)
            else:
                self.sessions[message.sid] = summary
            self._publish_session(dict(summary, reason=message.reason), message.ts)
        elif isinstance(message, m.ConnectionStateEvent):
            self.connected = message.state is m.ConnectionState.CONNECTED
            self.encrypted = bool(self.connected and message.encrypted)
            self.jid = message.jid or self.jid
            if self.connected:
                self.last_error = None
                sd_notify.notify(f"STATUS=connected as {self.jid}")
            elif message.reason and (message.error or self.last_error is None):
                # A login failure says more than the disconnection that follows it.
                self.last_error = message.reason
                sd_notify.notify(f"STATUS=not connected: {message.reason}")
            self._publish("connection.state", {"state": message.state.value,
                                               "reason": message.reason,
                                               "encrypted": message.encrypted}, message.ts)
        elif isinstance(message, m.ContactRequestEvent):
            self._publish("contact.request", {"jid": message.jid}, message.ts)
        elif isinstance(message, m.ContactStateEvent):
            self._publish("contact.state", {"jid": message.jid,
                                            "subscription": message.subscription}, message.ts)
        elif isinstance(message, m.SessionInfoEvent):
            self._publish("session.info", {"sid": message.sid, "info": message.info,
                                           "name": message.name}, message.ts)
        elif isinstance(message, m.MediaStatsEvent):
            # Every field of the message is a field of the event, under its own name.
            self._publish("media.stats", {k: v for k, v in dataclasses.asdict(message).items()
                                          if k != "ts"}, message.ts)
        elif isinstance(message, m.TransferProgressEvent):
            self._publish("transfer.progress", {"sid": message.sid, "bytes": message.bytes,
                                                "size": message.size}, message.ts)
        elif isinstance(message, m.TransferCompleteEvent):
            if message.path:
                log.info("file saved: %s (%d bytes, %s)", message.path, message.size,
                         "hash verified" if message.verified else "NOT verified")
            else:
                log.info("file %s sent (%d bytes, %s)", message.name, message.size,
                         "the peer verified it" if message.verified else "unconfirmed")
            self._publish("transfer.complete", {
                "sid": message.sid, "size": message.size, "sha256": message.sha256,
                "verified": message.verified, "path": message.path, "name": message.name},
                message.ts)
        elif isinstance(message, m.TransportStateEvent):
            self._tell_transport(message)
            entry = self.sessions.get(message.sid)
            if entry is not None and message.state is m.TransportState.CONNECTED:
                entry["transport"] = {k: v for k, v in (
                    ("method", message.method), ("local", message.local),
                    ("remote", message.remote), ("encryption", message.encryption))
                    if v is not None}
            self._publish("transport.state", {
                "sid": message.sid, "state": message.state.value, "method": message.method,
                "local": message.local, "remote": message.remote,
                "candidates": list(message.candidates) or None,
                "encryption": message.encryption,
                **({"restart": True} if message.restart else {}),
                **({"reason": message.reason} if message.reason else {})}, message.ts)
        else:
            log.debug("supervisor ignores %s from %s", type(message).__name__, source)

    def _note_worker(self, source: str, message: m.Message) -> None:
        """``sessions`` entries name the worker that holds their media or transfer, from
        the first report that worker makes about them."""
        sid = getattr(message, "sid", None)
        entry = self.sessions.get(sid) if isinstance(sid, str) else None
        if entry is not None and "worker" not in entry:
            entry["worker"] = str(source)

    # --- the story, one line per thing a user notices ----------------------------------

    def _tell_session(self, summary: dict[str, Any], reason: str | None) -> None:
        sid, state, peer = summary["sid"], summary["state"], summary["peer"]
        what = "call" if summary["kind"] == "call" else "transfer"
        offered = summary.get("file")
        if state == "RECEIVEDINITIATE" and summary["direction"] == "incoming":
            if offered:
                log.info("incoming file from %s: %s (%s bytes) [%s]", peer,
                         offered.get("name"), offered.get("size"), sid)
            else:
                log.info("incoming call from %s [%s]", peer, sid)
        elif state == "SENTINITIATE":
            log.info("%s %s [%s]", "calling" if what == "call" else "offering a file to",
                     peer, sid)
        elif state in ("SENTACCEPT", "RECEIVEDACCEPT"):
            log.info("%s with %s accepted%s [%s]", what, peer,
                     " by the peer" if state == "RECEIVEDACCEPT" else "", sid)
        elif state == "INPROGRESS":
            self._began[sid] = time.monotonic()
        elif state == "DEINIT":
            began = self._began.pop(sid, None)
            lasted = f" after {time.monotonic() - began:.0f} s" if began else ""
            log.info("%s with %s ended%s: %s [%s]", what, peer, lasted, reason or "-", sid)

    def _tell_transport(self, event: m.TransportStateEvent) -> None:
        if event.state is m.TransportState.CONNECTED:
            call = event.method == "ice-udp"
            security = ""
            if call:
                security = (f", encrypted ({event.encryption})"
                            if event.encryption not in (None, "none") else ", NOT encrypted")
            log.info("%s connected%s over %s, %s -> %s%s [%s]",
                     "call" if call else "transfer",
                     " again (ICE restart)" if event.restart else "", event.method,
                     event.local or "?", event.remote or "?", security, event.sid)
        elif event.state is m.TransportState.FAILED:
            log.warning("%s transport failed%s [%s]", event.method,
                        f": {event.reason}" if event.reason else "", event.sid)

    # --- control socket -------------------------------------------------------------

    async def _serve_control(self) -> None:
        while True:
            frames = await self.commands.recv_multipart()
            if len(frames) < 2:
                continue
            # A REQ client puts an empty delimiter before the payload; echo the envelope.
            self._bg.spawn(self._answer(frames[:-1], frames[-1]))

    async def _answer(self, envelope: list[bytes], payload: bytes) -> None:
        req_id = ""
        try:
            request = cp.parse_request(payload)
            req_id = request.id
            result = await self._execute(request)
            reply = cp.encode_ok(request.id, result)
        except cp.ControlError as exc:
            reply = cp.encode_error(exc.req_id or req_id, exc.code, exc.message)
        except Exception as exc:  # the agent keeps serving whatever happened
            log.exception("control request failed")
            reply = cp.encode_error(req_id, cp.INTERNAL_ERROR, str(exc))
        await self.commands.send_multipart([*envelope, reply])

    async def _execute(self, request: cp.Request) -> dict[str, Any]:
        if request.cmd == "status":
            return {
                "jid": self.jid,
                "version": VERSION,
                "connected": self.connected,
                **({} if self.connected else {"last_error": self.last_error}),
                "encrypted": self.encrypted,
                "workers": {c.ident: c.summary() for c in self.children.values()},
                "sessions": list(self.sessions.values()),
            }
        if request.cmd == "sessions":
            return {"sessions": list(self.sessions.values())}
        command = _to_bus_command(request)
        if not self.children[m.Process.SIGNALLING].alive:
            raise cp.ControlError(cp.UNAVAILABLE, "signalling is restarting, try again")
        future: asyncio.Future[m.Message] = asyncio.get_running_loop().create_future()
        self._pending[command.request_id] = future
        if not await self._send(m.Process.SIGNALLING, command):
            self._pending.pop(command.request_id, None)
            raise cp.ControlError(cp.UNAVAILABLE, "signalling is not reachable")
        try:
            answer = await asyncio.wait_for(future, FORWARD_TIMEOUT)
        except TimeoutError:
            self._pending.pop(command.request_id, None)
            raise cp.ControlError(cp.UNAVAILABLE, "signalling did not answer in time") from None
        if isinstance(answer, m.CommandFailed):
            raise cp.ControlError(answer.code, answer.message)
        assert isinstance(answer, m.CommandSucceeded)
        if answer.contacts is not None:
            return {"contacts": [{"jid": c.jid, "subscription": c.subscription,
                                  "pending": c.pending} for c in answer.contacts]}
        return {"sid": answer.sid} if answer.sid else {}

    def _fail_pending(self, why: str) -> None:
        for req_id, future in list(self._pending.items()):
            if not future.done():
                future.set_result(m.CommandFailed(req_id, cp.UNAVAILABLE, why))
        self._pending.clear()

    # --- events -----------------------------------------------------------------------

    def _publish(self, name: str, fields: dict[str, Any], ts: float | None = None) -> None:
        try:
            self.events.send_multipart(cp.encode_event(name, ts or time.time(), fields),
                                       flags=zmq.NOBLOCK)
        except zmq.ZMQError:
            log.warning("event %s dropped", name)

    def _publish_session(self, fields: dict[str, Any], ts: float | None = None) -> None:
        self._publish("session.state", fields, ts)

    def _publish_worker(self, child: Child, state: m.WorkerState,
                        exit_code: int | None = None) -> None:
        self._publish("worker.state", {"worker": child.ident, "pid": child.pid,
                                       "state": state.value, "exit_code": exit_code})


def _to_bus_command(request: cp.Request) -> m.Command:
    a = request.args
    rid = f"{request.id}:{uuid.uuid4().hex[:8]}"
    if request.cmd == "call":
        return m.Call(rid, a["to"])
    if request.cmd == "send_file":
        return m.SendFile(rid, a["to"], a["path"], a.get("name"), a.get("description"))
    if request.cmd == "request_file":
        return m.RequestFile(rid, a["to"], a["name"])
    if request.cmd == "accept":
        return m.Accept(rid, a["sid"], a.get("dir"))
    if request.cmd == "reject":
        return m.Reject(rid, a["sid"], a.get("reason") or "decline")
    if request.cmd == "hangup":
        return m.Hangup(rid, a["sid"], a.get("reason") or "success")
    if request.cmd == "mute":
        return m.Mute(rid, a["sid"], a["muted"])
    if request.cmd == "hold":
        return m.Hold(rid, a["sid"], a["held"])
    if request.cmd == "contacts":
        return m.ListContacts(rid)
    if request.cmd in {action.value for action in m.ContactAction}:
        return m.ChangeContact(rid, m.ContactAction(request.cmd), a["jid"])
    raise cp.ControlError(cp.UNKNOWN_COMMAND, f"unknown command {request.cmd!r}")
