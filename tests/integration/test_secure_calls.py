"""Encrypted calls end to end (XEP-0320 DTLS-SRTP): what the events say, what the
wire carries, and a peer whose certificate is not the one it signalled."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import struct
import threading
import time

import aioice
import numpy as np
import opuslib
import pytest
import slixmpp
from slixmpp.xmlstream.handler import Callback
from slixmpp.xmlstream.matcher import MatchXPath

from media_worker.dtls_srtp import Certificate, DtlsError, DtlsSrtp, is_dtls
from media_worker.ice import from_info, to_info
from scripts.raw_xmpp import login
from signalling.call_sessions import candidate_from_bus, candidate_to_bus
from signalling.jingle import namespaces as ns
from signalling.jingle.ice_udp import IceUdpTransport, parse_transport
from tests.integration.conftest import make_ready

pytestmark = pytest.mark.prosody
ETH_P_ALL = 0x0003


class Capture:
    """Every UDP datagram on the loopback interface while it runs (AF_PACKET, root)."""

    def __init__(self) -> None:
        try:
            self.sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.ntohs(ETH_P_ALL))
        except PermissionError:
            pytest.skip("capturing packets needs root (AF_PACKET)")
        self.sock.bind(("lo", 0))
        self.sock.settimeout(0.2)
        self.payloads: list[bytes] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                frame, (_, _, pkttype, _, _) = self.sock.recvfrom(65535)
            except TimeoutError:
                continue
            if pkttype == socket.PACKET_OUTGOING:
                continue  # lo shows each packet twice
            ip = frame[14:]
            if len(ip) >= 48 and ip[0] >> 4 == 6 and ip[6] == socket.IPPROTO_UDP:
                header = 40  # aioice pairs IPv6 host candidates too
            elif len(ip) >= 28 and ip[0] >> 4 == 4 and ip[9] == socket.IPPROTO_UDP:
                header = (ip[0] & 0x0F) * 4
            else:
                continue
            length = struct.unpack("!H", ip[header + 4:header + 6])[0]
            self.payloads.append(bytes(ip[header + 8:header + length]))

    def stop(self) -> list[bytes]:
        self._stop.set()
        self._thread.join()
        self.sock.close()
        return self.payloads


def opus_packets(payloads: list[bytes]) -> dict[int, list[bytes]]:
    """RTP-looking datagrams with payload type 111, by SSRC (headers are never encrypted)."""
    streams: dict[int, list[bytes]] = {}
    for data in payloads:
        if len(data) > 12 and data[0] == 0x80 and data[1] & 0x7F == 111:
            streams.setdefault(struct.unpack("!I", data[8:12])[0], []).append(data[12:])
    return streams


def heard_tone(payloads: list[bytes]) -> float | None:
    """Decode payloads as plain Opus; the dominant frequency, or None if most of them
    are not Opus at all."""
    decoder = opuslib.Decoder(48000, 1)
    pcm = []
    for payload in payloads[20:120]:
        with contextlib.suppress(opuslib.OpusError):
            pcm.append(np.frombuffer(decoder.decode(payload, 960), dtype=np.int16))
    if len(pcm) < 50:
        return None
    samples = np.concatenate(pcm).astype(float)
    spectrum = np.abs(np.fft.rfft(samples * np.hanning(len(samples))))
    return float(np.argmax(spectrum) * 48000 / len(samples))


def call_and_capture(alice, bob, seconds: float = 3.0) -> tuple[str, list[bytes]]:
    capture = Capture()
    try:
        sid = alice.client.call(bob.bare)
        bob.state(sid, "RECEIVEDINITIATE")
        bob.client.accept(sid)
        alice.state(sid, "INPROGRESS", timeout=15)
        time.sleep(seconds)
        alice.client.hangup(sid)
        alice.state(sid, "DEINIT")
    finally:
        payloads = capture.stop()
    return sid, payloads


def tone_pair(start_agent, encryption: str):
    extra = f'[media]\nencryption = "{encryption}"\n'
    alice = start_agent("alice", extra=f'[audio]\ninput = "tone:440"\noutput = "null"\n{extra}')
    bob = start_agent("bob", extra=f'[audio]\ninput = "tone:660"\noutput = "null"\n{extra}')
    make_ready(alice, bob)
    return alice, bob


def test_encrypted_call_reports_srtp_and_the_wire_carries_no_plain_rtp(start_agent):
    alice, bob = tone_pair(start_agent, "required")
    sid, payloads = call_and_capture(alice, bob)
    for agent in (alice, bob):
        connected = agent.watch.wait_for(5, event="transport.state", sid=sid, state="connected")
        assert connected["encryption"] == "dtls-srtp"
    assert any(is_dtls(p) for p in payloads), "a DTLS handshake crossed the wire"
    streams = opus_packets(payloads)
    assert len(streams) >= 2 and all(len(s) > 100 for s in streams.values())
    # Neither stream decodes as the tone its sender plays: the payload is encrypted.
    for s in streams.values():
        tone = heard_tone(s)
        assert tone is None or min(abs(tone - 440), abs(tone - 660)) > 20, tone


def test_plain_call_when_configured_says_so_and_the_tone_is_readable(start_agent):
    """The contrast that proves the check above: with encryption off the same
    capture decodes to the tones."""
    alice, bob = tone_pair(start_agent, "off")
    sid, payloads = call_and_capture(alice, bob)
    connected = alice.watch.wait_for(5, event="transport.state", sid=sid, state="connected")
    assert connected["encryption"] == "none"
    tones = sorted(round(heard_tone(s) or 0) for s in opus_packets(payloads).values())
    assert len(tones) == 2, tones
    assert any(abs(t - 440) <= 5 for t in tones) and any(abs(t - 660) <= 5 for t in tones)


def _jingle(client, to: str, xml: str):
    iq = client.make_iq_set(ito=to)
    iq.xml.append(slixmpp.xmlstream.ET.fromstring(xml))
    return iq


def test_certificate_not_matching_the_fingerprint_ends_the_call_security_error(
        prosody, start_agent):
    """A raw caller signals one certificate's fingerprint and presents another in the
    DTLS handshake: bob's agent ends the call with security-error."""
    bob = start_agent("bob", extra="[policy]\nauto_accept_calls = \"all\"\n"
                                   "[audio]\ninput = \"silence\"\noutput = \"null\"\n")
    signalled, presented = Certificate.generate(), Certificate.generate()
    sid = "mitm1"
    received: list[str] = []

    async def scenario(client):
        client.send_presence()
        ice = aioice.Connection(ice_controlling=True, components=1)
        answer: asyncio.Future[IceUdpTransport] = asyncio.get_running_loop().create_future()
        remote: asyncio.Queue = asyncio.Queue()
        terminated = asyncio.Event()

        def on_jingle(iq):
            jingle = iq.xml.find(f"{{{ns.JINGLE}}}jingle")
            action = jingle.get("action")
            received.append(action)
            iq.reply().send()
            transport = jingle.find(f"{{{ns.JINGLE}}}content/{{{ns.ICE_UDP}}}transport")
            if transport is not None:
                parsed = parse_transport(transport)
                if action == "session-accept" and not answer.done():
                    answer.set_result(parsed)
                for candidate in parsed.candidates:
                    remote.put_nowait(candidate)
            if action == "session-terminate":
                reason = jingle.find(f"{{{ns.JINGLE}}}reason")
                received.append(reason[0].tag.rpartition("}")[2])
                terminated.set()

        client.register_handler(Callback("j", MatchXPath(
            f"{{jabber:client}}iq/{{{ns.JINGLE}}}jingle"), on_jingle))
        await _jingle(client, bob.full,
            f"<jingle xmlns='{ns.JINGLE}' action='session-initiate' sid='{sid}'"
            f" initiator='{client.boundjid}'><content creator='initiator' name='voice'>"
            f"<description xmlns='{ns.RTP}' media='audio'>"
            "<payload-type id='111' name='opus' clockrate='48000' channels='2'/></description>"
            f"<transport xmlns='{ns.ICE_UDP}' ufrag='{ice.local_username}'"
            f" pwd='{ice.local_password}'><fingerprint xmlns='{ns.DTLS}' hash='sha-256'"
            f" setup='actpass'>{signalled.fingerprint()}</fingerprint></transport>"
            "</content></jingle>").send(timeout=5)
        accepted = await asyncio.wait_for(answer, 10)
        assert accepted.fingerprint is not None and accepted.fingerprint.setup == "active"
        ice.remote_username, ice.remote_password = accepted.ufrag, accepted.pwd
        await ice.gather_candidates()
        ours = IceUdpTransport(ice.local_username, ice.local_password, tuple(
            candidate_from_bus(to_info(c)) for c in ice.local_candidates))
        info = slixmpp.xmlstream.ET.fromstring(
            f"<jingle xmlns='{ns.JINGLE}' action='transport-info' sid='{sid}'>"
            "<content creator='initiator' name='voice'/></jingle>")
        info[0].append(ours.to_element())
        iq = client.make_iq_set(ito=bob.full)
        iq.xml.append(info)
        await iq.send(timeout=5)
        await asyncio.sleep(1.0)
        while not remote.empty():
            await ice.add_remote_candidate(from_info(candidate_to_bus(remote.get_nowait())))
        await ice.add_remote_candidate(None)
        await asyncio.wait_for(ice.connect(), 10)
        # Bob answered 'active': it is the DTLS client, we are the server, with the
        # certificate we did not signal.
        dtls = DtlsSrtp(presented, client=False, remote_hash="sha-256",
                        remote_fingerprint=accepted.fingerprint.value)

        async def serve():
            while True:
                data = await ice.recv()
                if is_dtls(data):
                    with contextlib.suppress(DtlsError):
                        for datagram in dtls.receive(data):
                            await ice.send(datagram)

        server = asyncio.ensure_future(serve())
        try:
            await asyncio.wait_for(terminated.wait(), 15)
        finally:
            server.cancel()
            await ice.close()

    async def main():
        client = await login(prosody, "dave")
        try:
            await scenario(client)
        finally:
            client.disconnect()

    asyncio.run(main())
    assert received[-2:] == ["session-terminate", "security-error"]
    assert bob.state(sid, "DEINIT")["reason"] == "security-error"
    assert not [e for e in bob.watch.seen if e.get("state") == "INPROGRESS"]


def test_unencrypted_offer_is_refused_when_encryption_is_required(prosody, start_agent):
    bob = start_agent("bob")
    received: list[str] = []

    async def main():
        client = await login(prosody, "dave")
        terminated = asyncio.Event()

        def on_jingle(iq):
            jingle = iq.xml.find(f"{{{ns.JINGLE}}}jingle")
            iq.reply().send()
            if jingle.get("action") == "session-terminate":
                received.append(jingle.find(f"{{{ns.JINGLE}}}reason")[0].tag.rpartition("}")[2])
                terminated.set()

        client.register_handler(Callback("j", MatchXPath(
            f"{{jabber:client}}iq/{{{ns.JINGLE}}}jingle"), on_jingle))
        try:
            await _jingle(client, bob.full,
                f"<jingle xmlns='{ns.JINGLE}' action='session-initiate' sid='plain1'"
                f" initiator='{client.boundjid}'><content creator='initiator' name='voice'>"
                f"<description xmlns='{ns.RTP}' media='audio'>"
                "<payload-type id='111' name='opus' clockrate='48000' channels='2'/>"
                f"</description><transport xmlns='{ns.ICE_UDP}' ufrag='dave'"
                " pwd='davedavedavedavedave12'/></content></jingle>").send(timeout=5)
            await asyncio.wait_for(terminated.wait(), 10)
        finally:
            client.disconnect()

    asyncio.run(main())
    assert received == ["security-error"]
    assert bob.state("plain1", "DEINIT")["reason"] == "security-error"
