"""File sessions in signalling: XEP-0234 offers over XEP-0260 SOCKS5 bytestreams.

Signalling negotiates, the transfer worker moves the bytes. Per session this
holds what XEP-0260 §2.3-2.4 needs to pick the connection (which peer
candidate we reached, which of ours the peer reached), and what XEP-0234 §7
needs to finish (the peer's hash, ours, the ``received`` confirmation).
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import mimetypes
import os
import secrets
import shutil
import time
import xml.etree.ElementTree as ET
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol

from bus import messages as m
from bus.config import AgentConfig
from control import protocol as cp
from signalling.errors import CommandError
from signalling.jingle import bytestream_negotiation as bn
from signalling.jingle import file_completion as fc
from signalling.jingle import file_transfer as ft
from signalling.jingle import ibb, s5b
from signalling.jingle import namespaces as ns
from signalling.jingle.errors import StanzaError, UsageError, bad_request, unknown_session
from signalling.jingle.manager import bare
from signalling.jingle.session import Session
from signalling.jingle.stanzas import Content
from signalling.jingle.states import Action, Reason, Role, Senders
from signalling.pools import WorkerPool
from signalling.records import SessionRecord, Slot

log = logging.getLogger(__name__)

FILE_FEATURES = (ns.JINGLE, ns.FILE_TRANSFER)
# XEP-0047 block size we offer (a peer may answer smaller; Conversations takes 8 KiB).
# 32 KiB was the fastest through Prosody (bench.ibb), and its base64 stanza, ~44 KB,
# stays under the 64 KiB stanza limit some servers set.
IBB_BLOCK_SIZE = 32768


class Host(Protocol):
    """What the signalling service offers this helper."""

    config: AgentConfig
    local_jid: str
    records: dict[str, SessionRecord]  # one per session (signalling/records.py)

    def post(self, process: str, message: m.Message) -> None: ...
    def session(self, sid: str) -> Session | None: ...
    def spawn(self, coro: Coroutine[Any, Any, Any]) -> asyncio.Task[Any]: ...
    def call_later(self, delay: float, callback: Callable[[], None]) -> None: ...
    async def find_proxy(self) -> tuple[str, str, int] | None: ...
    async def activate_proxy(self, proxy: str, sid: str, target: str) -> None: ...
    def send_request(self, to: str, payload: ET.Element,
                     done: Callable[[StanzaError | None], None]) -> None: ...
    def send_result(self, iq_id: str, to: str, error: StanzaError | None = None) -> None: ...
    def end(self, session: Session, reason: Reason, text: str) -> None: ...
    async def ask(self, worker: str, message: m.Message, answer: type[m.Message],
                  sid: str) -> m.Message: ...


@dataclass
class FileState:
    sending: bool
    s5b_sid: str
    content: Content  # the offer's content (creator, name, description)
    size: int
    name: str
    ours: dict[str, s5b.S5bCandidate] = field(default_factory=dict)
    theirs: tuple[s5b.S5bCandidate, ...] = ()
    # XEP-0260/0261: which bytestream carries the bytes, once both candidate sets are known
    negotiation: bn.BytestreamNegotiation | None = None
    offset: int = 0  # where the bytes start (XEP-0234 §6.1 range), for a resumed file
    ibb: ibb.IbbTransport | None = None  # set once in-band is the transport
    ibb_acks: dict[int, str] = field(default_factory=dict)  # receiver: seq -> IQ id to answer
    path: str | None = None
    peer_hash: dataclasses.InitVar[fc.PeerHash | None] = None  # from the offer, if any
    worker: str = m.Process.TRANSFER.value  # the transfer worker of the pool that moves it
    # XEP-0234 §7: checksum, received, verification and their waits
    completion: fc.FileCompletion = field(init=False)

    def __post_init__(self, peer_hash: fc.PeerHash | None) -> None:
        self.completion = fc.FileCompletion(sending=self.sending, size=self.size,
                                            peer_hash=peer_hash)


def _candidates(hosts: tuple[str, ...], port: int, jid: str,
                proxy: tuple[str, str, int] | None,
                relay_only: bool) -> dict[str, s5b.S5bCandidate]:
    """Our direct candidates (unless relay-only) and the server's proxy, if it has one."""
    out = {}
    if not relay_only:
        for i, host in enumerate(hosts):
            cid = secrets.token_hex(4)
            out[cid] = s5b.S5bCandidate(cid, host, jid, port, s5b.priority("direct", 255 - i))
    if proxy is not None:
        cid = secrets.token_hex(4)
        proxy_jid, proxy_host, proxy_port = proxy
        out[cid] = s5b.S5bCandidate(cid, proxy_host, proxy_jid, proxy_port,
                                    s5b.priority("proxy"), "proxy")
    return out


def _to_bus(c: s5b.S5bCandidate) -> m.S5bCandidateInfo:
    return m.S5bCandidateInfo(c.cid, c.host, c.jid, c.port, c.priority, c.type)


def _capped(transport: ibb.IbbTransport) -> ibb.IbbTransport:
    """The peer's in-band bytestream with its block size capped at ours."""
    return ibb.IbbTransport(transport.sid, min(transport.block_size, IBB_BLOCK_SIZE))


def _best_hash(info: ft.FileInfo) -> fc.PeerHash | None:
    """The peer's hash to verify against: SHA-256 (computed while receiving) first,
    else another XEP-0300 algorithm we can compute."""
    for algo in ("sha-256", "sha3-256", "blake2b-256"):
        h = info.hash(algo)
        if h is not None:
            return fc.PeerHash(algo, h.value.hex())
    return None


class FileSessions:
    def __init__(self, host: Host) -> None:
        self.host = host
        self.files: Slot[FileState] = Slot(host.records, "file")
        # The transfer worker pool (transfer.workers) and the members that are down.
        self.pool = WorkerPool(m.Process.TRANSFER, host.config.transfer.workers)
        self._placing: dict[str, str] = {}  # sid -> worker, while its state is being made

    def place(self, sid: str) -> str:
        """The transfer worker a new transfer goes to: the live one moving fewest
        (those being prepared count too, so simultaneous offers spread)."""
        chosen = self.pool.place([state.worker for _sid, state in self.files.items()]
                                 + list(self._placing.values()))
        self._placing[sid] = chosen
        return chosen

    def _placed(self, sid: str, state: FileState) -> None:
        """The state is made: it holds its worker from now on."""
        state.worker = self._placing.pop(sid, state.worker)
        self.files[sid] = state

    def worker_changed(self, name: str, state: m.WorkerState) -> None:
        self.pool.changed(name, state)

    # --- sender -------------------------------------------------------------------

    async def offer(self, session: Session, path: str, name: str | None,
                    description: str | None) -> None:
        """Prepare the worker, then send session-initiate with our direct candidates."""
        size = os.path.getsize(path)
        s5b_sid = secrets.token_hex(8)
        expected = s5b.dstaddr(s5b_sid, session.local, session.peer)
        try:
            answer = await self.host.ask(
                self.place(session.sid),
                m.PrepareTransfer(session.sid, True, path, size, expected,
                                  max_rate=self.host.config.transfer.max_rate,
                                  algo=self.host.config.transfer.hash),
                m.TransferPrepared, session.sid)
        except CommandError:
            self._placing.pop(session.sid, None)
            raise
        assert isinstance(answer, m.TransferPrepared)
        shown = name or os.path.basename(path)
        mtime = datetime.fromtimestamp(os.path.getmtime(path), UTC)
        info = ft.FileInfo(name=shown, size=size,
                           media_type=mimetypes.guess_type(shown)[0] or
                           "application/octet-stream",
                           date=mtime.strftime("%Y-%m-%dT%H:%M:%SZ"), desc=description)
        transport, ours, in_band = await self._our_transport(session, s5b_sid, expected, answer)
        content = Content(Role.INITIATOR, "file", ft.FileDescription(info), transport,
                          Senders.INITIATOR)
        self._placed(session.sid, FileState(True, s5b_sid, content, size, shown, ours,
                                            path=path, ibb=in_band))
        session.initiate((content,), time.monotonic())

    async def request(self, session: Session, name: str) -> None:
        """XEP-0234 §5: ask the peer to send us ``name`` (senders='responder')."""
        s5b_sid = secrets.token_hex(8)
        expected = s5b.dstaddr(s5b_sid, session.local, session.peer)
        folder = os.path.expanduser(self.host.config.transfer.download_dir)
        try:
            answer = await self.host.ask(
                self.place(session.sid),
                m.PrepareTransfer(session.sid, False, folder, 0, expected, name=name,
                                  peer=bare(session.peer)),
                m.TransferPrepared, session.sid)
        except CommandError:
            self._placing.pop(session.sid, None)
            raise
        assert isinstance(answer, m.TransferPrepared)
        transport, ours, in_band = await self._our_transport(session, s5b_sid, expected, answer)
        content = Content(Role.INITIATOR, "file", ft.FileDescription(ft.FileInfo(name=name)),
                          transport, Senders.RESPONDER)
        self._placed(session.sid, FileState(False, s5b_sid, content, 0, name, ours,
                                            path=answer.path, ibb=in_band))
        session.initiate((content,), time.monotonic())

    async def _our_transport(
        self, session: Session, s5b_sid: str, expected: str, answer: m.TransferPrepared
    ) -> tuple[s5b.S5bTransport | ibb.IbbTransport, dict[str, s5b.S5bCandidate],
               ibb.IbbTransport | None]:
        """SOCKS5 with our candidates, or in-band when that is all we allow."""
        if self.host.config.transfer.transports[0] == "s5b":
            ours = _candidates(answer.hosts, answer.port, session.local,
                               await self.host.find_proxy(),
                               self.host.config.policy.relay_only_for(session.peer))
            return s5b.S5bTransport(s5b_sid, tuple(ours.values()), expected), ours, None
        in_band = ibb.IbbTransport(secrets.token_hex(8), IBB_BLOCK_SIZE)
        return in_band, {}, in_band

    def peer_accepted(self, session: Session, contents: tuple[Content, ...]) -> None:
        state = self.files.get(session.sid)
        if state is None:
            return
        desc = next((c.description for c in contents
                     if isinstance(c.description, ft.FileDescription)), None)
        if not state.sending:
            # Our request was granted: the accept tells the size (and maybe the hash).
            if desc is None or desc.file.size is None:
                self.host.end(session, Reason.FAILED_APPLICATION, "accept without a size")
                return
            state.size = state.completion.size = desc.file.size
            announced = _best_hash(desc.file)
            if announced is not None:
                self._finish(session, state, announced)
        elif desc is not None and desc.file.range is not None:
            state.offset = min(max(desc.file.range.offset, 0), state.size)
        in_band = next((c.transport for c in contents
                        if isinstance(c.transport, ibb.IbbTransport)), None)
        if in_band is not None and state.ibb is not None:
            if state.sending:
                self._open_ibb(session, state, in_band)
            else:
                state.ibb = ibb.IbbTransport(in_band.sid, in_band.block_size)
            return
        transport = next((c.transport for c in contents
                          if isinstance(c.transport, s5b.S5bTransport)), None)
        if transport is None:
            self.host.end(session, Reason.UNSUPPORTED_TRANSPORTS, "no SOCKS5 transport")
            return
        self._connect(session, state, transport.candidates)

    # --- receiver -------------------------------------------------------------------

    def offered(self, session: Session) -> None:
        """An incoming offer: remember it; the user (or policy) accepts it."""
        content = session.remote_contents[0]
        desc, transport = content.description, content.transport
        ours = self.host.config.transfer.transports
        # An S5B offer while only in-band is on is still taken: XEP-0260 §3 has the
        # responder accept, report candidate-error, and the initiator replace the
        # transport with XEP-0261 (Dino does its part).
        usable = (isinstance(transport, s5b.S5bTransport) and ("s5b" in ours or "ibb" in ours)
                  ) or (isinstance(transport, ibb.IbbTransport) and "ibb" in ours)
        if not isinstance(desc, ft.FileDescription) or not usable:
            self.host.end(session, Reason.UNSUPPORTED_TRANSPORTS,
                          f"need XEP-0234 over {' or '.join(ours)}")
            return
        size = desc.file.size or 0
        if content.senders is not Senders.RESPONDER:
            try:
                refusal = self._too_big(size, self.host.config.transfer.download_dir)
            except CommandError as exc:  # the user may still accept it into another folder
                log.warning("transfer %s: %s", session.sid, exc)
                refusal = None
            if refusal:
                self.host.end(session, Reason.DECLINE, refusal)
                return
        self.place(session.sid)
        self._placed(session.sid, FileState(
            content.senders is Senders.RESPONDER,  # a request: we would be the sender
            transport.sid if isinstance(transport, s5b.S5bTransport) else "",
            content, desc.file.size or 0, desc.file.name or "",
            theirs=transport.candidates if isinstance(transport, s5b.S5bTransport) else (),
            peer_hash=_best_hash(desc.file),
            ibb=transport if isinstance(transport, ibb.IbbTransport) else None))

    async def accept(self, session: Session, directory: str | None) -> None:
        state = self.files.get(session.sid)
        if state is None:
            raise CommandError(cp.NOT_ALLOWED, "not an incoming file offer or request")
        if state.sending:
            await self._grant(session, state)
            return
        folder = os.path.expanduser(directory or self.host.config.transfer.download_dir)
        refusal = self._too_big(state.size, folder)
        if refusal:
            self.host.end(session, Reason.DECLINE, refusal)
            raise CommandError("insufficient-space", refusal)
        expected = s5b.dstaddr(state.s5b_sid, session.local, session.peer)
        answer = await self.host.ask(
            state.worker,
            m.PrepareTransfer(session.sid, False, folder, state.size, expected,
                              name=state.name, peer=bare(session.peer),
                              date=self._offered(state).date),
            m.TransferPrepared, session.sid)
        assert isinstance(answer, m.TransferPrepared)
        state.path = answer.path
        state.offset = answer.offset
        transport = await self._answer_transport(session, state, answer, expected)
        offer = state.content
        description = offer.description
        if state.offset:
            # §6.1: ask only for what we lack; the sender still hashes the whole file.
            file = dataclasses.replace(self._offered(state), range=ft.Range(state.offset))
            description = ft.FileDescription(file)
            log.info("transfer %s resumes at byte %d of %d", session.sid, state.offset,
                     state.size)
        self._send_accept(session, Content(offer.creator, offer.name, description, transport,
                                           offer.senders))
        if state.ibb is None:
            self._connect(session, state, state.theirs)

    def _too_big(self, size: int, folder: str) -> str | None:
        """Why an offer of ``size`` bytes cannot land in ``folder``, or None."""
        limit = self.host.config.transfer.max_size
        if limit and size > limit:
            return f"{size} bytes offered, transfer.max_size is {limit}"
        folder = os.path.expanduser(folder)
        try:
            os.makedirs(folder, exist_ok=True)
            free = shutil.disk_usage(folder).free
        except OSError as exc:
            raise CommandError(cp.FAILED, f"cannot save in {folder}: {exc.strerror or exc}") \
                from None
        if size > free:
            return f"{size} bytes offered, {free} free in {folder}"
        return None

    async def _grant(self, session: Session, state: FileState) -> None:
        """Send a requested file (XEP-0234 §5), from ``transfer.shared_dir`` only."""
        shared = self.host.config.transfer.shared_dir
        answer = None
        if shared:
            expected = s5b.dstaddr(state.s5b_sid, session.local, session.peer)
            answer = await self.host.ask(
                state.worker,
                m.PrepareTransfer(session.sid, True, shared, 0, expected, name=state.name,
                                  max_rate=self.host.config.transfer.max_rate,
                                  algo=self.host.config.transfer.hash),
                m.TransferPrepared, session.sid)
        if not isinstance(answer, m.TransferPrepared) or not answer.found or not answer.path:
            self.host.end(session, Reason.CANCEL, "no such shared file")
            raise CommandError(cp.NOT_FOUND, f"{state.name!r} is not in transfer.shared_dir")
        state.size, state.path = answer.size, answer.path
        state.completion.size = answer.size
        name = os.path.basename(answer.path)
        info = ft.FileInfo(name=name, size=state.size,
                           media_type=mimetypes.guess_type(name)[0] or
                           "application/octet-stream")
        transport = await self._answer_transport(session, state, answer, expected)
        offer = state.content
        self._send_accept(session, Content(offer.creator, offer.name,
                                           ft.FileDescription(info), transport, offer.senders))
        if state.ibb is not None:
            self._open_ibb(session, state, state.ibb)
        else:
            self._connect(session, state, state.theirs)

    async def _answer_transport(self, session: Session, state: FileState,
                                answer: m.TransferPrepared,
                                expected: str) -> s5b.S5bTransport | ibb.IbbTransport:
        """What we accept the offered transport with: the same in-band bytestream (our
        block-size cap), or SOCKS5 with our own candidates."""
        if state.ibb is not None:
            state.ibb = _capped(state.ibb)
            return state.ibb
        if "s5b" not in self.host.config.transfer.transports:
            state.ours = {}  # no streamhost of ours: the fallback to in-band follows
            return s5b.S5bTransport(state.s5b_sid, (), expected)
        state.ours = _candidates(answer.hosts, answer.port, session.local,
                                 await self.host.find_proxy(),
                                 self.host.config.policy.relay_only_for(session.peer))
        return s5b.S5bTransport(state.s5b_sid, tuple(state.ours.values()), expected)

    def _send_accept(self, session: Session, content: Content) -> None:
        try:
            session.accept((content,), time.monotonic())
        except UsageError as exc:
            raise CommandError(cp.NOT_ALLOWED, str(exc)) from None

    # --- XEP-0260/0261 negotiation: signalling/jingle/bytestream_negotiation.py ------

    def _connect(self, session: Session, state: FileState,
                 candidates: tuple[s5b.S5bCandidate, ...]) -> None:
        """Both candidate sets are known: the negotiation starts and the worker dials."""
        state.theirs = candidates
        transports = self.host.config.transfer.transports
        state.negotiation = bn.BytestreamNegotiation(
            initiator=session.role is Role.INITIATOR, sending=state.sending,
            ours=state.ours, theirs=candidates, in_band="ibb" in transports,
            new_in_band=lambda: ibb.IbbTransport(secrets.token_hex(8), IBB_BLOCK_SIZE),
            cap=_capped)
        if "s5b" not in transports:
            self._feed(session, state, bn.WeReached(None))  # §2.3 candidate-error at once
            return
        if self.host.config.policy.relay_only_for(session.peer):
            # Dialling the peer's own addresses would reveal ours: proxies only.
            candidates = tuple(c for c in candidates if c.type == "proxy")
        self.host.post(state.worker, m.ConnectCandidates(
            session.sid, tuple(_to_bus(c) for c in candidates),
            s5b.dstaddr(state.s5b_sid, session.peer, session.local)))

    def candidate_result(self, session: Session, cid: str | None, own_proxy: bool) -> None:
        """The worker tried the peer's candidates (or reached our own proxy)."""
        state = self.files.get(session.sid)
        if state is None:
            return
        if own_proxy:
            self._feed(session, state,
                       bn.OwnProxyReached() if cid else bn.OwnProxyActivated(False))
        else:
            self._feed(session, state, bn.WeReached(cid))

    def transport_info(self, session: Session, contents: tuple[Content, ...]) -> None:
        state = self.files.get(session.sid)
        transport = next((c.transport for c in contents
                          if isinstance(c.transport, s5b.S5bTransport)), None)
        if state is None or transport is None or transport.info is None:
            return
        self._feed(session, state, bn.PeerSaid(transport.info, transport.info_cid))

    def modify_received(self, session: Session, action: Action,
                        contents: tuple[Content, ...]) -> None:
        """transport-replace to IBB from the initiator, or its answer to ours."""
        state = self.files.get(session.sid)
        if state is None:
            return
        in_band = next((c.transport for c in contents
                        if isinstance(c.transport, ibb.IbbTransport)), None)
        if action is Action.TRANSPORT_REPLACE:
            if state.negotiation is None:  # offered in-band already: nothing to replace
                self._do(session, state, [bn.RejectReplace(), bn.Fail(
                    Reason.FAILED_TRANSPORT, "no common transport")], contents)
                return
            self._feed(session, state, bn.PeerReplaces(in_band), contents)
        elif action in (Action.TRANSPORT_ACCEPT, Action.TRANSPORT_REJECT):
            self._feed(session, state, bn.PeerAnswersReplace(
                action is Action.TRANSPORT_ACCEPT, in_band))

    def _feed(self, session: Session, state: FileState, event: bn.Input,
              contents: tuple[Content, ...] = ()) -> None:
        if state.negotiation is not None:
            self._do(session, state, state.negotiation.handle(event), contents)

    def _do(self, session: Session, state: FileState, outputs: list[bn.Output],
            contents: tuple[Content, ...] = ()) -> None:
        """Execute what the negotiation decided, in order; stop once the session
        no longer allows a stanza (it ended meanwhile)."""
        for out in outputs:
            if isinstance(out, bn.Tell):
                if not self._tell(session, state, out.info, out.cid):
                    return
            elif isinstance(out, bn.ConnectOwnProxy):
                # §2.5: we offered the proxy, so we connect to it too and activate it.
                self.host.post(state.worker, m.ConnectCandidates(
                    session.sid, (_to_bus(out.candidate),),
                    s5b.dstaddr(state.s5b_sid, session.local, session.peer), own_proxy=True))
            elif isinstance(out, bn.ActivateProxy):
                self.host.spawn(self._activate(session, state, out.candidate))
            elif isinstance(out, bn.UseSocks5):
                self._use(session, out.ours, out.via_own_proxy, out.kind)
            elif isinstance(out, bn.Socks5Failed):
                self.host.post(m.Process.SUPERVISOR, m.TransportStateEvent(
                    time.time(), session.sid, m.TransportState.FAILED, "s5b",
                    reason="no SOCKS5 candidate connected on either side"))
            elif isinstance(out, bn.Replace | bn.AcceptReplace | bn.RejectReplace):
                if not self._modify(session, state, out, contents):
                    return
            elif isinstance(out, bn.UseInBand):
                state.ibb = out.in_band
                if out.we_open:
                    self._open_ibb(session, state, out.in_band)
            elif isinstance(out, bn.Fail):
                self.host.end(session, out.reason, out.text)
                return

    def _modify(self, session: Session, state: FileState,
                out: bn.Replace | bn.AcceptReplace | bn.RejectReplace,
                contents: tuple[Content, ...]) -> bool:
        """transport-replace / -accept / -reject (XEP-0166 §7.2, XEP-0261 §2)."""
        try:
            if isinstance(out, bn.RejectReplace):
                session.modify(Action.TRANSPORT_REJECT, contents, time.monotonic())
            else:
                state.ibb = out.in_band
                action = (Action.TRANSPORT_REPLACE if isinstance(out, bn.Replace)
                          else Action.TRANSPORT_ACCEPT)
                session.modify(action, (Content(state.content.creator, state.content.name,
                                                None, out.in_band),), time.monotonic())
        except UsageError as exc:
            log.warning("transfer %s: %s", session.sid, exc)
            self.host.end(session, Reason.FAILED_TRANSPORT, "cannot replace the transport")
            return False
        return True

    def _tell(self, session: Session, state: FileState, info: s5b.S5bInfo,
              cid: str | None) -> bool:
        """A transport-info with one XEP-0260 §2.3-2.5 notice; False if the session
        no longer allows it (it ended meanwhile)."""
        transport = s5b.S5bTransport(state.s5b_sid, info=info, info_cid=cid)
        try:
            session.send_transport_info(
                (Content(state.content.creator, state.content.name, None, transport),),
                time.monotonic())
        except UsageError:
            return False
        return True

    def _use(self, session: Session, ours: bool, via_own_proxy: bool, remote: str) -> None:
        local = "proxy" if remote == "proxy" else "direct"
        state = self.files.get(session.sid)
        offset = state.offset if state is not None and state.sending else 0
        size = state.size if state is not None and not state.sending else 0
        worker = state.worker if state is not None else m.Process.TRANSFER.value
        self.host.post(m.Process.SUPERVISOR, m.TransportStateEvent(
            time.time(), session.sid, m.TransportState.CONNECTED, "s5b", local, remote))
        self.host.post(worker, m.UseConnection(session.sid, ours, via_own_proxy,
                                                           offset, size))

    @staticmethod
    def _offered(state: FileState) -> ft.FileInfo:
        desc = state.content.description
        assert isinstance(desc, ft.FileDescription)
        return desc.file

    async def _activate(self, session: Session, state: FileState,
                        proxy: s5b.S5bCandidate) -> None:
        """Our proxy was nominated and our worker reached it: activate it (XEP-0065
        §6.3.4); the negotiation says what follows."""
        ok = False
        try:
            await self.host.activate_proxy(proxy.jid, state.s5b_sid, session.peer)
            ok = True
        except Exception as exc:  # an IQ error or timeout from the proxy
            log.warning("transfer %s: proxy activation failed: %s", session.sid, exc)
        self._feed(session, state, bn.OwnProxyActivated(ok))

    # --- in-band bytestreams (XEP-0261, XEP-0047) -------------------------------------

    def _open_ibb(self, session: Session, state: FileState, agreed: ibb.IbbTransport) -> None:
        """XEP-0047 §2.1: the sender opens the bytestream, then the worker streams blocks."""
        state.ibb = _capped(agreed)
        block, sid = state.ibb.block_size, session.sid

        def opened(error: StanzaError | None) -> None:
            if error is not None:
                self.host.end(session, Reason.FAILED_TRANSPORT, f"ibb open: {error.condition}")
                return
            self.host.post(m.Process.SUPERVISOR, m.TransportStateEvent(
                time.time(), sid, m.TransportState.CONNECTED, "ibb"))
            self.host.post(state.worker, m.UseIbb(sid, block, state.offset))

        self.host.send_request(session.peer, ibb.build(ibb.IbbOpen(state.ibb.sid, block)),
                               opened)

    def ibb_chunk(self, session: Session, chunk: m.IbbChunk) -> None:
        """Sender: blocks from the worker go out, one data IQ each; each ack
        releases a slot of the worker's window (the link merges the acks)."""
        state = self.files.get(session.sid)
        if state is None or state.ibb is None:
            return
        for offset, data in enumerate(chunk.blocks):
            seq = m.next_seq(chunk.seq, offset)

            def acked(error: StanzaError | None, seq: int = seq) -> None:
                if error is not None:
                    self.host.end(session, Reason.FAILED_TRANSPORT,
                                  f"ibb data: {error.condition}")
                else:
                    self.host.post(state.worker, m.IbbAck(session.sid, seq))

            self.host.send_request(
                session.peer, ibb.build(ibb.IbbData(state.ibb.sid, seq, data)), acked)

    def ibb_written(self, session: Session, ack: m.IbbAck) -> None:
        """Receiver: the worker wrote these blocks; only now are they acknowledged, so
        a slow disk slows the sender instead of filling memory."""
        state = self.files.get(session.sid)
        if state is None:
            return
        for offset in range(ack.count):
            iq_id = state.ibb_acks.pop(m.next_seq(ack.seq, offset), None)
            if iq_id is not None:
                self.host.send_result(iq_id, session.peer)

    def ibb_stanza(self, sender: str, iq_id: str, payload: ibb.IbbPayload) -> None:
        """An XEP-0047 IQ from the network."""
        found = next(((sid, st) for sid, st in self.files.items()
                       if st.ibb is not None and st.ibb.sid == payload.sid), None)
        session = self.host.session(found[0]) if found else None
        if found is None or session is None or session.peer != sender:
            self.host.send_result(iq_id, sender, unknown_session().error)
            return
        sid, state = found
        if isinstance(payload, ibb.IbbOpen):
            if state.sending or payload.block_size > ibb.MAX_BLOCK_SIZE:
                self.host.send_result(iq_id, sender, bad_request("unexpected open").error)
                return
            self.host.send_result(iq_id, sender)
            self.host.post(m.Process.SUPERVISOR, m.TransportStateEvent(
                time.time(), sid, m.TransportState.CONNECTED, "ibb"))
            self.host.post(state.worker, m.UseIbb(sid, payload.block_size,
                                                        size=state.size))
        elif isinstance(payload, ibb.IbbData):
            state.ibb_acks[payload.seq] = iq_id
            self.host.post(state.worker, m.IbbChunk(sid, payload.seq, (payload.data,)))
        else:
            self.host.send_result(iq_id, sender)

    # --- the end (XEP-0234 §7) --------------------------------------------------------

    def transfer_done(self, session: Session, done: m.TransferDone) -> None:
        """The worker moved every byte (either way)."""
        state = self.files.get(session.sid)
        if state is None:
            return
        if state.sending and state.ibb is not None:
            self.host.send_request(session.peer, ibb.build(ibb.IbbClose(state.ibb.sid)),
                                   lambda _error: None)
        self._finish(session, state, fc.BytesDone(done.sha256, done.algo, done.digest))

    def info(self, session: Session, payload: object) -> None:
        state = self.files.get(session.sid)
        if state is None:
            return
        if isinstance(payload, ft.Checksum):
            announced = _best_hash(payload.file)
            if announced is not None:
                self._finish(session, state, announced)
        elif isinstance(payload, ft.Received):
            self._finish(session, state, fc.PeerReceived())

    def committed(self, session: Session, path: str | None, verified: bool) -> None:
        state = self.files.get(session.sid)
        if state is not None:
            self._finish(session, state, fc.Committed(path, verified))

    def ended(self, sid: str, reason: str | None = None) -> None:
        """The session is over (a sender whose peer ended with ``success`` without
        the optional <received/> completes, unconfirmed: see file_completion)."""
        state = self.files.pop(sid, None)
        session = self.host.session(sid)
        if state is not None:
            self._finish(session, state, fc.SessionEnded(reason), sid=sid)

    def _finish(self, session: Session | None, state: FileState, event: fc.Input,
                sid: str | None = None) -> None:
        """Feed the XEP-0234 §7 rules and execute what they say."""
        sid = sid or (session.sid if session is not None else "")
        completion = state.completion
        for out in completion.handle(event, time.monotonic()):
            if isinstance(out, fc.Complete):
                self.host.post(m.Process.SUPERVISOR, m.TransferCompleteEvent(
                    time.time(), sid, state.size, out.sha256, out.verified, path=out.path,
                    name=state.name if state.sending else None))
            elif session is None:
                continue
            elif isinstance(out, fc.SendChecksum | fc.SendReceived):
                creator, name = state.content.creator.value, state.content.name
                payload: ft.Received | ft.Checksum = (
                    ft.Received(creator, name) if isinstance(out, fc.SendReceived)
                    else ft.Checksum(creator, name, ft.FileInfo(
                        hashes=(ft.Hash(out.algo, bytes.fromhex(out.hex)),))))
                try:
                    session.send_info(payload, time.monotonic())
                except UsageError:
                    continue
            elif isinstance(out, fc.Commit):
                self.host.post(state.worker, m.CommitFile(sid, out.algo, out.hex))
            elif isinstance(out, fc.End):
                self.host.end(session, out.reason, out.text)
        due = completion.get_timer()
        if due is not None and session is not None:
            self.host.call_later(max(0.0, due - time.monotonic()) + 0.01, lambda: self._finish(
                session, state, fc.Tick(time.monotonic())))
