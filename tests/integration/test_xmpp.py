"""The agent as other XMPP entities see it: disco/caps, errors for bad Jingle IQs,
STARTTLS, reconnection, and the ring timeout."""

from __future__ import annotations

import asyncio
import tempfile
import time
from pathlib import Path

import pytest
import slixmpp
from slixmpp.exceptions import IqError

from scripts.local_prosody import LocalProsody
from scripts.raw_xmpp import login
from signalling.jingle import namespaces as ns
from tests.integration.conftest import USERS, Agent

pytestmark = pytest.mark.prosody


def _raw(prosody: LocalProsody, user: str, scenario) -> object:
    """Run ``scenario(client)`` with a plain slixmpp client logged in as ``user``."""

    async def main() -> object:
        client = await login(prosody, user)
        try:
            return await scenario(client)
        finally:
            client.disconnect()

    return asyncio.run(main())


def _jingle_iq(client, to: str, xml: str):
    iq = client.make_iq_set(ito=to)
    iq.xml.append(slixmpp.xmlstream.ET.fromstring(xml))
    return iq


async def _error_of(iq) -> tuple[str, set[str]]:
    try:
        await iq.send(timeout=5)
    except IqError as exc:
        errors = exc.iq.xml.findall("{jabber:client}error")
        assert len(errors) == 1, "exactly one <error/> in the stream's namespace"
        return errors[0].get("type"), {child.tag.rpartition("}")[2] for child in errors[0]}
    return "result", set()


def test_disco_advertises_jingle_features(prosody, start_agent):
    alice = start_agent("alice")

    async def scenario(client):
        info = await client.plugin["xep_0030"].get_info(jid=alice.full, timeout=5)
        return set(info["disco_info"]["features"])

    features = _raw(prosody, "dave", scenario)
    assert {ns.JINGLE, ns.RTP, ns.RTP_AUDIO, ns.ICE_UDP} <= features


def test_bad_jingle_iqs_get_the_right_errors(prosody, pair):
    alice, bob = pair
    sid = alice.client.call(bob.bare)
    bob.state(sid, "RECEIVEDINITIATE")

    async def scenario(client):
        results = {}
        results["malformed"] = await _error_of(_jingle_iq(
            client, bob.full, "<jingle xmlns='urn:xmpp:jingle:1' action='session-initiate'/>"))
        results["unknown action"] = await _error_of(_jingle_iq(
            client, bob.full, "<jingle xmlns='urn:xmpp:jingle:1' action='dance' sid='x'/>"))
        results["unknown sid"] = await _error_of(_jingle_iq(
            client, bob.full,
            "<jingle xmlns='urn:xmpp:jingle:1' action='session-info' sid='nope'/>"))
        results["third party"] = await _error_of(_jingle_iq(
            client, bob.full,
            f"<jingle xmlns='urn:xmpp:jingle:1' action='session-terminate' sid='{sid}'>"
            "<reason><success/></reason></jingle>"))
        return results

    results = _raw(prosody, "dave", scenario)
    assert results["malformed"][1] == {"bad-request", "text"}
    assert "bad-request" in results["unknown action"][1]
    assert results["unknown sid"] == ("cancel", {"item-not-found", "unknown-session", "text"})
    assert results["third party"][1] >= {"item-not-found", "unknown-session"}
    # The third party did not touch the session.
    assert [s["state"] for s in bob.client.sessions()] == ["RECEIVEDINITIATE"]
    alice.client.hangup(sid)
    bob.state(sid, "DEINIT")


def test_unanswered_call_times_out_on_both_sides(start_agent):
    alice = start_agent("alice", extra="[jingle]\nring_timeout = 1.5\n")
    bob = start_agent("bob")
    from tests.integration.conftest import make_ready

    make_ready(alice, bob)
    sid = alice.client.call(bob.bare)
    bob.state(sid, "RECEIVEDINITIATE")
    assert alice.state(sid, "DEINIT", timeout=10)["reason"] == "timeout"
    assert bob.state(sid, "RECEIVEDTERMINATE")["reason"] == "timeout"


@pytest.fixture
def own_server():
    """A Prosody of this test's own, to restart or to run with TLS."""
    servers = []

    def make(tls: bool = False) -> LocalProsody:
        data = Path(tempfile.mkdtemp(prefix="pj-own-"))
        server = LocalProsody(data, tls=tls)
        server.configure(USERS)
        server.start()
        servers.append(server)
        return server

    yield make
    for server in servers:
        server.stop()


def test_starttls_login(own_server, folder):
    server = own_server(tls=True)
    agent = Agent(server, "alice", folder, env={"PYJINGLE_ACCOUNT_TLS": "optional"})
    try:
        agent.wait_connected()
        assert agent.client.status()["encrypted"] is True
    finally:
        agent.stop()


def test_plaintext_stream_is_reported_unencrypted(start_agent):
    assert start_agent("alice").client.status()["encrypted"] is False


def test_reconnects_after_the_server_drops_the_stream(own_server, folder):
    server = own_server()
    agent = Agent(server, "alice", folder)
    try:
        agent.wait_connected()
        server.stop()
        agent.watch.wait_for(10, event="connection.state", state="disconnected")
        assert agent.client.status()["connected"] is False
        server.start()
        agent.watch.wait_for(20, event="connection.state", state="connected")
        deadline = time.monotonic() + 5
        while not agent.client.status()["connected"] and time.monotonic() < deadline:
            time.sleep(0.1)
        assert agent.client.status()["connected"] is True
    finally:
        agent.stop()


def test_unreachable_transport_fails_and_never_pretends(prosody, start_agent):
    """A raw Jingle responder accepts with a candidate nobody answers on: the call
    ends with failed-transport and never reports INPROGRESS. What the responder
    received before accepting carried no address of the caller."""
    alice = start_agent("alice", extra="[ice]\nconnect_timeout = 3\n"
                                       "[media]\nencryption = \"optional\"\n")
    seen: list = []

    async def scenario(client):
        client.send_presence()
        accepted = asyncio.Event()

        def on_jingle(iq):
            jingle = iq.xml.find(f"{{{ns.JINGLE}}}jingle")
            seen.append(slixmpp.xmlstream.tostring(iq.xml))
            iq.reply().send()
            if jingle.get("action") != "session-initiate":
                return
            content = jingle.find(f"{{{ns.JINGLE}}}content")
            accept = client.make_iq_set(ito=iq["from"])
            accept.xml.append(slixmpp.xmlstream.ET.fromstring(
                f"<jingle xmlns='{ns.JINGLE}' action='session-accept' sid='{jingle.get('sid')}'"
                f" initiator='{jingle.get('initiator')}' responder='{client.boundjid}'>"
                f"<content creator='initiator' name='{content.get('name')}'>"
                f"<description xmlns='{ns.RTP}' media='audio'>"
                "<payload-type id='111' name='opus' clockrate='48000' channels='2'/>"
                f"</description><transport xmlns='{ns.ICE_UDP}' ufrag='dave'"
                " pwd='davedavedavedavedave12'><candidate component='1' foundation='1'"
                " generation='0' id='c1' ip='127.0.0.1' network='0' port='9'"
                " priority='2130706431' protocol='udp' type='host'/></transport>"
                "</content></jingle>"))
            accept.send()
            accepted.set()

        from slixmpp.xmlstream.handler import Callback
        from slixmpp.xmlstream.matcher import MatchXPath

        client.register_handler(Callback("j", MatchXPath(
            f"{{jabber:client}}iq/{{{ns.JINGLE}}}jingle"), on_jingle))
        await asyncio.sleep(0.5)  # presence reaches alice
        sid = await asyncio.get_running_loop().run_in_executor(
            None, alice.client.call, f"dave@{prosody.domain}/raw")
        await asyncio.wait_for(accepted.wait(), 10)
        end = await asyncio.get_running_loop().run_in_executor(
            None, lambda: alice.state(sid, "DEINIT", timeout=20))
        return sid, end

    sid, end = _raw(prosody, "dave", scenario)
    assert end["reason"] == "failed-transport"
    assert alice.watch.wait_for(2, event="transport.state", sid=sid, state="failed")
    assert not [e for e in alice.watch.seen if e.get("state") == "INPROGRESS"]
    initiate = next(x for x in seen if "session-initiate" in x)
    assert "<candidate" not in initiate and "ufrag=" in initiate


def test_no_common_codec_ends_the_call_failed_application(prosody, start_agent):
    """A caller offering only G.729 (XEP-0167 example payload): bob's accept fails,
    and the caller gets session-terminate with failed-application."""
    bob = start_agent("bob", extra="[media]\nencryption = \"optional\"\n")
    received: list[str] = []

    async def scenario(client):
        from slixmpp.xmlstream.handler import Callback
        from slixmpp.xmlstream.matcher import MatchXPath

        client.send_presence()
        terminated = asyncio.Event()

        def on_jingle(iq):
            received.append(iq.xml.find(f"{{{ns.JINGLE}}}jingle").get("action"))
            iq.reply().send()
            if received[-1] == "session-terminate":
                reason = iq.xml.find(f"{{{ns.JINGLE}}}jingle/{{{ns.JINGLE}}}reason")
                received.append(reason[0].tag.rpartition("}")[2])
                terminated.set()

        client.register_handler(Callback("j", MatchXPath(
            f"{{jabber:client}}iq/{{{ns.JINGLE}}}jingle"), on_jingle))
        initiate = _jingle_iq(client, bob.full,
            f"<jingle xmlns='{ns.JINGLE}' action='session-initiate' sid='g729only'"
            f" initiator='{client.boundjid}'><content creator='initiator' name='voice'>"
            f"<description xmlns='{ns.RTP}' media='audio'>"
            "<payload-type id='18' name='G729'/></description>"
            f"<transport xmlns='{ns.ICE_UDP}' ufrag='dave' pwd='davedavedavedavedave12'/>"
            "</content></jingle>")
        await initiate.send(timeout=5)
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(None, lambda: bob.state("g729only", "RECEIVEDINITIATE"))

        def accept():
            from control.client import ControlFailed

            try:
                bob.client.accept("g729only")
            except ControlFailed as exc:
                return exc.code
            return "accepted"

        code = await loop.run_in_executor(None, accept)
        await asyncio.wait_for(terminated.wait(), 10)
        return code

    code = _raw(prosody, "dave", scenario)
    assert code == "failed-application"
    assert received[-2:] == ["session-terminate", "failed-application"]
    assert bob.state("g729only", "DEINIT")["reason"] == "failed-application"
