"""One call's media in the media worker: ICE, RTP/RTCP, jitter buffer, codec, audio.

A 20 ms clock drives the call (absolute deadlines, so it does not drift): each
tick reads a frame from the source, encodes and sends it, and plays one frame
out of the jitter buffer into the sink. A receive task feeds RTP into the
jitter buffer and RTCP into the RTT estimate. Once a second an RTCP SR goes
out and ``media.stats`` is published.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import secrets
import struct
import time
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any

import pylibsrtp

from bus import messages as m
from bus.config import IceConfig
from bus.net import host_addresses
from media_worker.audio import Sink, Source, open_sink, open_source
from media_worker.codecs import SILENCE, Codec, make_codec
from media_worker.dtls_srtp import Certificate, DtlsError, DtlsSrtp, DtlsTimeout, is_dtls
from media_worker.ice import IceTransport
from media_worker.jitter import Concealed, JitterBuffer, Played
from media_worker.liveness import ANSWER_WAIT, Liveness, PathAction, PathInput
from media_worker.loss_protection import LossProtection
from media_worker.priority import overloaded
from media_worker.reception import ReceptionStats
from media_worker.rtp import (
    PacketError,
    ReceiverReport,
    ReportBlock,
    RtpPacket,
    SenderReport,
    decode_rtcp,
    encode_rtcp,
    is_rtcp,
    ntp_middle,
    ntp_timestamp,
)

log = logging.getLogger(__name__)

FRAME_SECONDS = 0.020
END_OF_CANDIDATES_AFTER = 2.0  # XEP-0176 has no end-of-candidates: debounce instead
REPORT_INTERVAL = 1.0
DTLS_TIMEOUT = 15.0  # the whole handshake, retransmissions (1, 2, 4, 8 s) included
WATCH_INTERVAL = 0.5
PROBE_TIMEOUT = 3.0  # seconds a consent check on the old pair may take (with retries)
# RTP over UDP never exceeds a path MTU; anything larger is not ours (RFC 3550 §11).
MAX_DATAGRAM = 1500
# What a malformed, forged or replayed datagram raises on its way through the parsers.
DATAGRAM_ERRORS = (PacketError, pylibsrtp.Error, ValueError, IndexError, struct.error,
                   OverflowError, DtlsError)
# Diagnostics: a folder where each call writes its RTP send times (bench/isolation.py).
TRACE_DIR = os.environ.get("PYJINGLE_MEDIA_TRACE")

Send = Callable[[m.Process, m.Message], Awaitable[None]]


class MediaCall:
    def __init__(self, sid: str, controlling: bool, audio_in: str, audio_out: str,
                 send: Send, ice: IceConfig | None = None, relay_only: bool = False,
                 certificate: Certificate | None = None, advertised: str | None = None) -> None:
        self.sid = sid
        self.controlling = controlling
        self.servers = ice
        self.relay_only = relay_only
        self.certificate = certificate or Certificate.generate()
        self.srtp: DtlsSrtp | None = None
        self.connect_timeout = ice.connect_timeout if ice else 20.0
        self.advertised = advertised
        self.ice = IceTransport(controlling, ice, relay_only, advertised)
        self._audio_in = audio_in
        self._audio_out = audio_out
        self._send = send
        self.muted = False
        self.held = False  # we put the call on hold: nothing sent, as when muted
        self.peer_muted = False  # what the peer said in session-info (XEP-0167 §7)
        self.peer_held = False
        self.codec: Codec | None = None
        self.source: Source | None = None
        self.sink: Sink | None = None
        self.ssrc = secrets.randbits(32)
        self.sequence = secrets.randbits(16)
        self.timestamp = secrets.randbits(32)
        self.sent_packets = 0
        self.sent_octets = 0
        self.dropped_packets = 0  # datagrams discarded as malformed or unauthenticated
        self.received_octets = 0  # payload octets of the RTP packets taken in
        self.remote_ssrc: int | None = None
        self.reception: ReceptionStats | None = None
        self.jitter = JitterBuffer()
        self.rtt_ms: float | None = None
        self.loss_protection = LossProtection()
        self._last_sr: tuple[int, float] | None = None  # (LSR, arrival) of the peer's SR
        self._flowing = False
        self._closed = False
        self._tasks: list[asyncio.Task[None]] = []
        self._eoc: asyncio.TimerHandle | None = None
        self._send_times: list[float] | None = [] if TRACE_DIR else None
        self._dtls: m.DtlsParams | None = None
        self._opened = False
        self._accepted = asyncio.Event()
        self._encryption = "none"
        self._addresses: set[str] = set()
        self._restart: asyncio.Task[None] | None = None
        self._answer: asyncio.Future[m.RestartIce] | None = None
        self._receiver: asyncio.Task[None] | None = None
        self.liveness = Liveness()
        self._next: IceTransport | None = None  # the generation a restart is bringing up
        self._pair_types: tuple[str | None, str | None] = (None, None)

    # --- control ---------------------------------------------------------------

    async def open(self, ufrag: str, pwd: str,
                   candidates: tuple[m.IceCandidateInfo, ...]) -> None:
        """Gather, signal our candidates and start the checks (after accept, or
        before it where the reveal policy allows)."""
        if self._opened:
            await self.add_remote(candidates)
            return
        self._opened = True
        self.ice.set_remote_credentials(ufrag, pwd)
        gathered = await self.ice.gather()
        if self._closed:
            return
        await self._transport_state(m.TransportState.CHECKING,
                                    types=tuple(sorted({c.type for c in gathered})))
        await self._send(m.Process.SIGNALLING, m.LocalCandidates(self.sid, tuple(gathered)))
        await self.add_remote(candidates)
        self._spawn(self._connect())

    async def start(self, start: m.StartMedia) -> None:
        """The session is accepted: the codec and DTLS role are known, media may flow."""
        self._dtls = start.dtls
        choice = start.codec
        self.codec = make_codec(choice.name, choice.payload_type, choice.fec)
        self.reception = ReceptionStats(self.codec.clock_rate)
        self._accepted.set()
        await self.open(start.remote_ufrag, start.remote_pwd, start.remote_candidates)

    async def add_remote(self, candidates: tuple[m.IceCandidateInfo, ...]) -> None:
        target = self._next or self.ice
        if await target.add_remote(candidates) and not self._closed:
            loop = asyncio.get_running_loop()
            if self._eoc is not None:
                self._eoc.cancel()
            self._eoc = loop.call_later(
                END_OF_CANDIDATES_AFTER,
                lambda: self._spawn(target.end_of_candidates()))

    async def close(self, reason: str) -> None:
        if self._closed:
            return
        self._closed = True
        if self._eoc is not None:
            self._eoc.cancel()
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        # Whatever the sockets say on the way out (an address gone, a loaded host), the
        # call is closed and its worker answers CloseSession.
        for generation in (self.ice, self._next):
            if generation is not None:
                try:
                    await asyncio.wait_for(generation.close(), 5.0)
                except (OSError, ConnectionError, TimeoutError) as exc:
                    log.info("call %s: closing ICE: %s", self.sid, exc or "timeout")
        for end in (self.source, self.sink):
            if end is not None:
                end.close()
        await self._transport_state(m.TransportState.CLOSED)
        if TRACE_DIR and self._send_times:
            path = os.path.join(TRACE_DIR, f"{self.sid}.send")
            with open(path, "w") as fh:
                fh.write("\n".join(f"{t:.6f}" for t in self._send_times))
        log.info("call %s media closed (%s)", self.sid, reason)

    def _spawn(self, coro: Coroutine[Any, Any, None]) -> asyncio.Task[None]:
        """A task of this call; should it fail, the call ends with a reason, an event
        and a log line instead of going on deaf or mute."""
        task = asyncio.create_task(coro)
        self._tasks.append(task)
        task.add_done_callback(self._task_done)
        return task

    def _task_done(self, task: asyncio.Task[None]) -> None:
        if task.cancelled() or self._closed:
            return
        exc = task.exception()
        if exc is None:
            return
        log.error("call %s: %s failed, ending the call", self.sid,
                  task.get_coro().__qualname__, exc_info=exc)  # type: ignore[union-attr]
        self._tasks.append(asyncio.create_task(self._fail("failed-application")))

    async def _fail(self, reason: str) -> None:
        await self._transport_state(m.TransportState.FAILED,
                                    reason="the call's media task failed")
        await self._send(m.Process.SIGNALLING, m.WorkerFailed(self.sid, reason))

    # --- transport --------------------------------------------------------------

    async def _connect(self) -> None:
        # Revealed early, the caller still gathers only once we accept: checking
        # before that would only run the ICE timeout down.
        await self._accepted.wait()
        try:
            local, remote = await self.ice.connect(self.connect_timeout)
        except (TimeoutError, ConnectionError) as exc:
            why = str(exc) or "no candidate pair connected in time"
            log.warning("call %s: ICE failed: %s", self.sid, why)
            await self._transport_state(m.TransportState.FAILED, reason=f"ICE: {why}")
            await self._send(m.Process.SIGNALLING, m.WorkerFailed(self.sid, "failed-transport"))
            return
        encryption = "none"
        if self._dtls is not None:
            try:
                self.srtp = await self._secure(self._dtls)
            except (DtlsError, TimeoutError, ConnectionError) as exc:
                log.warning("call %s: DTLS-SRTP failed: %s", self.sid, exc or "timeout")
                # A peer that is not who it signalled is a security error; a path
                # that lost the handshake is a transport failure.
                reason = ("failed-transport" if isinstance(exc, DtlsTimeout | TimeoutError
                                                           | ConnectionError)
                          else "security-error")
                await self._transport_state(m.TransportState.FAILED,
                                            reason=f"DTLS-SRTP: {exc or 'no handshake in time'}")
                await self._send(m.Process.SIGNALLING, m.WorkerFailed(self.sid, reason))
                return
            encryption = "dtls-srtp"
        self._encryption = encryption
        await self._path_up(local, remote)
        # The path is up and secured: the call is in progress (libjingle's INPROGRESS
        # once the transport is writable), whether or not the peer sends yet: one that
        # answers muted sends nothing (XEP-0167 §7).
        await self._media_flowing()
        self.source = open_source(self._audio_in)
        self.sink = open_sink(self._audio_out, self.sid)
        self._spawn(self._clock())
        self._receiver = self._spawn(self._receive())
        self._spawn(self._report())
        self._spawn(self._watch())

    async def _secure(self, params: m.DtlsParams) -> DtlsSrtp:
        """RFC 5763: the DTLS handshake over the ICE pair, bounded in time; the peer's
        certificate must match the fingerprint signalling pinned (XEP-0320)."""
        dtls = DtlsSrtp(self.certificate, client=params.client,
                        remote_hash=params.remote_hash,
                        remote_fingerprint=params.remote_fingerprint)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + DTLS_TIMEOUT
        for datagram in dtls.start():
            await self.ice.send(datagram)
        while not dtls.established:
            remaining = deadline - loop.time()
            if remaining <= 0:
                raise DtlsTimeout("DTLS handshake timed out")
            wait = dtls.timeout()
            try:
                data = await asyncio.wait_for(
                    self.ice.recv(), remaining if wait is None else min(wait, remaining))
            except TimeoutError:
                for datagram in dtls.handle_timeout():
                    await self.ice.send(datagram)
                continue
            if not is_dtls(data):
                continue  # SRTP from a peer that finished first: lost, as on a bad line
            for datagram in dtls.receive(data):
                await self.ice.send(datagram)
        return dtls

    async def _transport_state(self, state: m.TransportState, local: str | None = None,
                               remote: str | None = None, types: tuple[str, ...] = (),
                               encryption: str | None = None, restart: bool = False,
                               reason: str | None = None) -> None:
        await self._send(m.Process.SUPERVISOR, m.TransportStateEvent(
            time.time(), self.sid, state, "ice-udp", local, remote, types, encryption,
            restart, reason))

    # --- ICE restart (RFC 8445 §9) ------------------------------------------------------

    def restart(self, peer: m.RestartIce | None = None,
                cause: PathInput = PathInput.CONSENT_LOST) -> None:
        """A new ICE generation under the same DTLS-SRTP association: ours (``peer``
        None: ``cause`` says why) or the peer's. New credentials that arrive while one
        is under way answer it. What happens is :mod:`media_worker.liveness`'s table."""
        if self._closed or self.source is None:
            log.info("call %s: restart ignored, media not up yet", self.sid)
            return
        if self._restart is not None and not self._restart.done():
            if peer is not None and self._answer is not None and not self._answer.done():
                self._answer.set_result(peer)
            return
        actions = self.liveness.handle(PathInput.PEER_RESTART if peer is not None else cause)
        if not actions:
            return
        self._answer = asyncio.get_running_loop().create_future()
        if peer is not None:
            self._answer.set_result(peer)
        self._restart = self._spawn(self._restart_ice(actions))

    async def _restart_ice(self, actions: tuple[PathAction, ...]) -> None:
        """Execute the restart the table asked for. The old generation carries the call
        (if it still can) until the new one connects; only then is it closed."""
        assert self._answer is not None
        old = self.ice
        new = self._next = IceTransport(self.controlling, self.servers, self.relay_only,
                                        self.advertised)
        log.info("call %s: ICE restart: new credentials %s", self.sid, new.ufrag)
        await self._transport_state(m.TransportState.CHECKING, restart=True)
        try:
            # Our own restart is offered the way libwebrtc peers (Conversations) expect:
            # the new credentials alone, candidates only once the peer has answered
            # with its own (credentials with candidates read as an answer to a restart
            # of theirs). Answering the peer's restart, both go together.
            if PathAction.OFFER_RESTART in actions:
                await self._send(m.Process.SIGNALLING, m.IceRestarted(
                    self.sid, new.ufrag, new.pwd, ()))
            gathered = await new.gather()
            if PathAction.ANSWER_RESTART in actions:
                await self._send(m.Process.SIGNALLING, m.IceRestarted(
                    self.sid, new.ufrag, new.pwd, tuple(gathered)))
            offering = PathAction.OFFER_RESTART in actions
            try:
                peer = await asyncio.wait_for(
                    asyncio.shield(self._answer),
                    ANSWER_WAIT if offering else self.connect_timeout)
            except TimeoutError:
                if not offering:
                    raise
                # The peer did not answer (Dino 0.4 returns an empty result and keeps
                # the old credentials): does the old pair still work?
                self.liveness.handle(PathInput.ANSWER_TIMEOUT)
                alive = await old.probe(PROBE_TIMEOUT)
                if self._answer.done():  # the answer came while we probed
                    alive = False
                    self.liveness.handle(PathInput.PEER_RESTART)
                elif not alive:
                    self.liveness.handle(PathInput.OLD_DEAD)
                    raise ConnectionError(self.liveness.why) from None
                if alive:
                    self.liveness.handle(PathInput.OLD_ALIVE)
                    log.info("call %s: the peer did not answer the ICE restart; the old "
                             "path still works and carries on", self.sid)
                    self._next = None
                    self._close_later(new)
                    await self._path_up(*self._pair_types, restart=True)
                    return
                peer = self._answer.result()
            new.set_remote_credentials(peer.remote_ufrag, peer.remote_pwd)
            if offering:
                await self._send(m.Process.SIGNALLING,
                                 m.LocalCandidates(self.sid, tuple(gathered)))
            await self.add_remote(peer.remote_candidates)
            local, remote = await new.connect(self.connect_timeout)
        except (TimeoutError, ConnectionError) as exc:
            self.liveness.handle(PathInput.CONNECT_FAILED)
            why = self.liveness.why or str(exc) or "no candidate pair connected"
            log.warning("call %s: ICE restart failed: %s", self.sid, why)
            self._next = None
            self._close_later(new)
            await self._transport_state(m.TransportState.FAILED, restart=True, reason=why)
            await self._send(m.Process.SIGNALLING, m.WorkerFailed(self.sid, "failed-transport"))
            return
        self.liveness.handle(PathInput.CONNECTED)
        log.info("call %s: ICE restarted (%s -> %s)", self.sid, local, remote)
        self.ice, self._next = new, None
        # Closing the old generation may mean TURN requests from an address that is
        # gone (retransmitted for many seconds): it ends on the side. The receive loop
        # may still wait on it (it may never signal its end): it reads from the new one
        # from now on, whatever the old one does on its way out.
        self._close_later(old)
        if self._receiver is not None:
            self._receiver.cancel()
        self._receiver = self._spawn(self._receive())
        await self._path_up(local, remote, restart=True)

    def _close_later(self, generation: IceTransport) -> None:
        self._tasks.append(asyncio.create_task(asyncio.wait_for(generation.close(), 30.0)))

    async def _path_up(self, local: str | None, remote: str | None,
                       restart: bool = False) -> None:
        """A path carries the call (first or after a restart): the addresses it stands
        on are watched from now on; ``transport.state`` says connected."""
        self._addresses = host_addresses()
        self._pair_types = (local, remote)
        await self._transport_state(m.TransportState.CONNECTED, local, remote,
                                    encryption=self._encryption, restart=restart)

    async def _watch(self) -> None:
        """Restart when an address the call used disappears. Never for silence: a
        peer that is muted or on hold sends nothing (XEP-0167 §7) and many peers
        (Dino 0.4) cannot follow a restart; whether the path still works is for
        consent freshness to say (RFC 7675, see _receive)."""
        while True:
            await asyncio.sleep(WATCH_INTERVAL)
            if self._restart is not None and not self._restart.done():
                continue
            gone = self._addresses - host_addresses(max_age=WATCH_INTERVAL / 2)
            if gone:
                log.info("call %s: local address %s gone: restarting ICE", self.sid,
                         ", ".join(sorted(gone)))
                self._addresses -= gone
                self.restart(cause=PathInput.ADDRESS_GONE)

    # --- media ----------------------------------------------------------------------

    async def _clock(self) -> None:
        assert self.codec is not None and self.source is not None and self.sink is not None
        loop = asyncio.get_running_loop()
        deadline = loop.time()
        talkspurt = True  # RFC 3551 §4.1: the marker bit starts each talkspurt
        while True:
            frame = self.source.read()
            if self.muted or self.held:
                # XEP-0167 §7: muted is "temporarily not sending media". The clock runs
                # on (the timestamp keeps the sampling time); sequence numbers count
                # packets sent, so the peer sees a pause, not a loss.
                talkspurt = True
            else:
                await self._send_frame(frame, marker=talkspurt)
                talkspurt = False
            self.timestamp = (self.timestamp + self.codec.timestamp_step) & 0xFFFFFFFF
            self.sink.write(self._playout(loop.time()))
            deadline += FRAME_SECONDS
            delay = deadline - loop.time()
            if delay < -0.2:  # the loop stalled: skip ahead instead of bursting
                deadline = loop.time()
                delay = 0
                overloaded()
            await asyncio.sleep(max(0.0, delay))

    async def _send_frame(self, frame: bytes, marker: bool) -> None:
        """One 20 ms frame, encoded, protected and sent at the current timestamp."""
        assert self.codec is not None
        payload = self.codec.encode(frame)
        packet = RtpPacket(self.codec.payload_type, self.sequence, self.timestamp,
                           self.ssrc, payload, marker=marker)
        self.sequence = (self.sequence + 1) & 0xFFFF
        data = packet.encode()
        if self.srtp is not None:
            data = self.srtp.protect(data)
        try:
            await self.ice.send(data)
            if self._send_times is not None:
                self._send_times.append(time.monotonic())
            self.sent_packets += 1
            self.sent_octets += len(payload)
        except ConnectionError:
            pass

    def _playout(self, now: float) -> bytes:
        assert self.codec is not None
        item = self.jitter.pop(now)
        if isinstance(item, Played):
            try:
                return self.codec.decode(item.payload)
            except Exception:
                return self.codec.conceal(None)
        if isinstance(item, Concealed):
            return self.codec.conceal(item.next_payload)
        return SILENCE

    async def _receive(self) -> None:
        while True:
            try:
                data = await self.ice.recv()
            except ConnectionError:
                if self._closed:
                    return
                if self._restart is None or self._restart.done():
                    # The connection ended under us: consent to send was lost (RFC 7675,
                    # aioice's checks every ~5 s, ~30 s without an answer) or the peer
                    # closed. A new generation, or the call ends failed-transport.
                    log.info("call %s: the ICE connection ended: restarting ICE", self.sid)
                    self.restart(cause=PathInput.CONSENT_LOST)
                if self._restart is not None and not self._restart.done():
                    await asyncio.wait({self._restart})  # its end respawns this loop
                    return
                await asyncio.sleep(0.5)
                continue
            if len(data) > MAX_DATAGRAM:
                self.dropped_packets += 1
                continue
            try:
                await self._on_datagram(data, time.monotonic())
            except DATAGRAM_ERRORS as exc:
                # Anyone who can reach the port can send anything: count it and go
                # on; it never ends the call.
                self.dropped_packets += 1
                log.debug("call %s: dropped a datagram of %d bytes: %r", self.sid, len(data),
                          exc)

    async def _on_datagram(self, data: bytes, now: float) -> None:
        """One datagram from the ICE pair: DTLS, SRTP/SRTCP or plain RTP/RTCP (RFC 7983
        demultiplexing). Raises one of DATAGRAM_ERRORS when it is not acceptable."""
        assert self.codec is not None and self.reception is not None
        if self.srtp is not None:
            if is_dtls(data):
                # A retransmitted flight: the peer lost our last one, answer again.
                for datagram in self.srtp.receive(data):
                    await self.ice.send(datagram)
                return
            # Not authentic, replayed or malformed: dropped, never played.
            data = self.srtp.unprotect(data, rtcp=is_rtcp(data))
        if is_rtcp(data):
            self._on_rtcp(data, now)
            return
        packet = RtpPacket.decode(data)
        if packet.payload_type != self.codec.payload_type:
            self.dropped_packets += 1
            return
        self.received_octets += len(packet.payload)
        self.remote_ssrc = packet.ssrc
        extended = self.reception.update(packet.sequence, packet.timestamp, now)
        if extended is not None:
            self.jitter.push(extended, packet.payload, now)
        await self._media_flowing()

    async def _media_flowing(self) -> None:
        if not self._flowing:
            self._flowing = True
            await self._send(m.Process.SIGNALLING, m.MediaFlowing(self.sid))

    def _on_rtcp(self, data: bytes, now: float) -> None:
        for packet in decode_rtcp(data):
            if isinstance(packet, SenderReport):
                self._last_sr = (ntp_middle(packet.ntp_timestamp), now)
            reports = packet.reports if isinstance(packet, SenderReport | ReceiverReport) else ()
            for block in reports:
                if block.ssrc != self.ssrc:
                    continue
                change = self.loss_protection.on_report(block.fraction_lost, now)
                if change is not None and self.codec is not None:
                    self.codec.expect_loss(change)
                if block.last_sr:
                    # RFC 3550 §6.4.1: RTT = A - LSR - DLSR, in 1/65536 s.
                    arrival = ntp_middle(ntp_timestamp(time.time()))
                    rtt = (arrival - block.last_sr - block.delay_since_last_sr) & 0xFFFFFFFF
                    if rtt < 65536 * 10:
                        self.rtt_ms = rtt * 1000 / 65536

    async def _report(self) -> None:
        assert self.codec is not None and self.reception is not None
        while True:
            await asyncio.sleep(REPORT_INTERVAL)
            blocks: tuple[ReportBlock, ...] = ()
            if self.remote_ssrc is not None:
                lsr, dlsr = 0, 0
                if self._last_sr is not None:
                    lsr = self._last_sr[0]
                    dlsr = int((time.monotonic() - self._last_sr[1]) * 65536)
                blocks = (ReportBlock(
                    self.remote_ssrc, self.reception.interval_fraction_lost(),
                    max(-(1 << 23), min((1 << 23) - 1, self.reception.lost)),
                    self.reception.extended_max, int(self.reception.jitter), lsr, dlsr),)
            sr = SenderReport(self.ssrc, ntp_timestamp(time.time()), self.timestamp,
                              self.sent_packets, self.sent_octets, blocks)
            report = encode_rtcp(sr)
            if self.srtp is not None:
                report = self.srtp.protect(report, rtcp=True)
            with contextlib.suppress(ConnectionError):
                await self.ice.send(report)
            await self._send(m.Process.SUPERVISOR, m.MediaStatsEvent(
                time.time(), self.sid, self.sent_packets, self.reception.received,
                max(0, self.reception.lost), round(self.reception.jitter_ms(), 2),
                None if self.rtt_ms is None else round(self.rtt_ms, 2),
                self.codec.name, self.jitter.stats.concealed, self.dropped_packets,
                self.sent_octets, self.received_octets, self.peer_muted, self.peer_held,
                self.muted, self.held))
