"""File transfer end to end: XEP-0234 over direct XEP-0260 SOCKS5, hash-verified."""

import hashlib
import os
from pathlib import Path

import pytest

from control.client import ControlFailed

pytestmark = pytest.mark.prosody


def sha256(path):
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while chunk := fh.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


@pytest.fixture
def file_pair(start_agent, folder):
    from scripts.agents import make_ready

    alice = start_agent("alice")
    bob = start_agent("bob", extra=f'[transfer]\ndownload_dir = "{folder}/bob-downloads"\n')
    make_ready(alice, bob)
    return alice, bob


def test_20mb_over_direct_socks5_arrives_verified(file_pair, folder):
    alice, bob = file_pair
    source = folder / "random.bin"
    source.write_bytes(os.urandom(20 * 1024 * 1024))
    sid = alice.client.send_file(bob.bare, str(source), description="twenty megabytes")
    offer = bob.state(sid, "RECEIVEDINITIATE")
    assert offer["kind"] == "file" and offer["direction"] == "incoming"
    bob.client.accept(sid)
    connected = bob.watch.wait_for(10, event="transport.state", sid=sid, state="connected")
    assert connected["method"] == "s5b"
    done = bob.watch.wait_for(30, event="transfer.complete", sid=sid)
    assert done["verified"] is True and done["size"] == 20 * 1024 * 1024
    assert done["sha256"] == sha256(source)
    assert done["path"] == str(folder / "bob-downloads" / "random.bin")
    assert sha256(done["path"]) == sha256(source)
    sent = alice.watch.wait_for(10, event="transfer.complete", sid=sid)
    assert sent["verified"] is True and sent["name"] == "random.bin"
    assert alice.state(sid, "DEINIT")["reason"] == "success"
    assert bob.state(sid, "DEINIT")["reason"] == "success"
    progress = [e for e in bob.watch.seen if e.get("event") == "transfer.progress"]
    assert progress and all(e["size"] == 20 * 1024 * 1024 for e in progress)
    assert not list((folder / "bob-downloads").glob("*.part"))


def test_rejected_offer_writes_nothing(file_pair, folder):
    alice, bob = file_pair
    source = folder / "secret.txt"
    source.write_text("not for you")
    sid = alice.client.send_file(bob.bare, str(source))
    bob.state(sid, "RECEIVEDINITIATE")
    bob.client.reject(sid)
    assert alice.state(sid, "DEINIT")["reason"] == "decline"
    assert not (folder / "bob-downloads").exists() or not any(
        (folder / "bob-downloads").iterdir())


def test_hostile_name_lands_inside_the_download_dir(file_pair, folder):
    alice, bob = file_pair
    source = folder / "payload"
    source.write_bytes(b"root:x:0:0::/root:/bin/sh\n")
    sid = alice.client.send_file(bob.bare, str(source), name="../../etc/passwd")
    bob.state(sid, "RECEIVEDINITIATE")
    bob.client.accept(sid)
    done = bob.watch.wait_for(15, event="transfer.complete", sid=sid)
    assert done["path"] == str(folder / "bob-downloads" / "passwd")
    assert done["verified"] is True


def test_same_name_twice_is_never_overwritten(file_pair, folder):
    alice, bob = file_pair
    for i, content in enumerate((b"first", b"second")):
        source = folder / f"v{i}"
        source.write_bytes(content)
        sid = alice.client.send_file(bob.bare, str(source), name="notes.txt")
        bob.state(sid, "RECEIVEDINITIATE")
        bob.client.accept(sid)
        bob.watch.wait_for(15, event="transfer.complete", sid=sid)
        bob.state(sid, "DEINIT")
    downloads = folder / "bob-downloads"
    assert (downloads / "notes.txt").read_bytes() == b"first"
    assert (downloads / "notes (2).txt").read_bytes() == b"second"


def test_send_to_offline_contact_is_not_found(file_pair, folder):
    alice, _ = file_pair
    source = folder / "x"
    source.write_bytes(b"x")
    with pytest.raises(ControlFailed) as info:
        alice.client.send_file("carol@localhost", str(source))
    assert info.value.code == "not-found"


def test_cli_send_waits_and_exits_zero_when_verified(file_pair, folder):
    """`jingle send` follows the transfer to its end (auto-accept on bob's side)."""
    import subprocess
    import sys
    import threading

    alice, bob = file_pair
    source = folder / "cli.bin"
    source.write_bytes(os.urandom(512 * 1024))

    def accept_when_offered():
        offer = bob.watch.wait_for(15, event="session.state", state="RECEIVEDINITIATE",
                                   kind="file")
        bob.client.accept(offer["sid"])

    helper = threading.Thread(target=accept_when_offered)
    helper.start()
    proc = subprocess.run([sys.executable, "-m", "control.cli", "--agent", str(alice.config),
                           "send", bob.bare, str(source)], capture_output=True, text=True,
                          timeout=60)
    helper.join()
    assert proc.returncode == 0, proc.stderr
    lines = [line for line in proc.stdout.splitlines() if line.strip()]
    assert '"sid"' in lines[0] and '"verified": true' in lines[-1]
    missing = subprocess.run([sys.executable, "-m", "control.cli", "--agent",
                              str(alice.config), "send", bob.bare, str(folder / "nope")],
                             capture_output=True, text=True, timeout=30)
    assert missing.returncode == 1 and missing.stderr.startswith("jingle: bad-request")


def test_relay_only_goes_through_the_servers_proxy(start_agent, folder):
    """policy.relay_only: no direct candidate is offered or dialled; the bytes go
    through Prosody's mod_proxy65 (XEP-0065), activated by its owner."""
    from scripts.agents import make_ready

    relay = '[policy]\nrelay_only = true\n'
    alice = start_agent("alice", extra=relay)
    bob = start_agent("bob", extra=relay + f'[transfer]\ndownload_dir = "{folder}/dl"\n')
    make_ready(alice, bob)
    source = folder / "via-proxy.bin"
    source.write_bytes(os.urandom(20 * 1024 * 1024))
    sid = alice.client.send_file(bob.bare, str(source))
    bob.state(sid, "RECEIVEDINITIATE")
    bob.client.accept(sid)
    for agent in (alice, bob):
        connected = agent.watch.wait_for(15, event="transport.state", sid=sid,
                                         state="connected")
        assert connected["method"] == "s5b" and "proxy" in (connected["local"],
                                                             connected["remote"])
    done = bob.watch.wait_for(60, event="transfer.complete", sid=sid)
    assert done["verified"] is True and sha256(done["path"]) == sha256(source)
    alice.state(sid, "DEINIT")


def test_killed_receiving_worker_resumes_with_a_range(start_agent, folder):
    """bob's transfer worker dies half-way; alice offers the file again; bob's agent
    accepts from the partial file (XEP-0234 range); the whole file verifies."""
    import signal
    import time

    from scripts.agents import make_ready

    alice = start_agent("alice", extra="[transfer]\nmax_rate = 8000000\n")
    bob = start_agent("bob", extra=f'[transfer]\ndownload_dir = "{folder}/dl"\n')
    make_ready(alice, bob)
    source = folder / "big.bin"
    size = 20 * 1024 * 1024
    source.write_bytes(os.urandom(size))

    sid = alice.client.send_file(bob.bare, str(source))
    bob.state(sid, "RECEIVEDINITIATE")
    bob.client.accept(sid)
    while True:
        progress = bob.watch.wait_for(10, event="transfer.progress", sid=sid)
        if progress["bytes"] > size // 4:
            break
    os.kill(bob.client.status()["workers"]["transfer"]["pid"], signal.SIGKILL)
    assert bob.state(sid, "DEINIT")["reason"] == "failed-application"
    alice.state(sid, "DEINIT", timeout=15)
    partial = folder / "dl" / "big.bin.part"
    have = partial.stat().st_size
    assert size // 4 < have < size
    bob.watch.wait_for(5, event="worker.state", worker="transfer", state="restarted")
    time.sleep(0.3)

    again = alice.client.send_file(bob.bare, str(source))
    bob.state(again, "RECEIVEDINITIATE")
    bob.client.accept(again)
    first = bob.watch.wait_for(10, event="transfer.progress", sid=again)
    assert first["bytes"] >= have  # it started from the partial file, not from zero
    done = bob.watch.wait_for(30, event="transfer.complete", sid=again)
    assert done["verified"] is True and done["path"] == str(folder / "dl" / "big.bin")
    assert sha256(done["path"]) == sha256(source)
    assert not partial.exists()


def test_in_band_when_socks5_is_disabled(start_agent, folder):
    """transfer.transports = ["ibb"]: the offer itself is XEP-0261; blocks go through
    the XMPP stream with flow control and arrive byte-identical."""
    from scripts.agents import make_ready

    ibb_only = '[transfer]\ntransports = ["ibb"]\n'
    alice = start_agent("alice", extra=ibb_only)
    bob = start_agent("bob", extra=f'[transfer]\ntransports = ["ibb"]\n'
                                    f'download_dir = "{folder}/dl"\n')
    make_ready(alice, bob)
    source = folder / "in-band.bin"
    source.write_bytes(os.urandom(20 * 1024 * 1024))
    sid = alice.client.send_file(bob.bare, str(source))
    bob.state(sid, "RECEIVEDINITIATE")
    bob.client.accept(sid)
    connected = bob.watch.wait_for(10, event="transport.state", sid=sid, state="connected")
    assert connected["method"] == "ibb"
    done = bob.watch.wait_for(120, event="transfer.complete", sid=sid)
    assert done["verified"] is True and sha256(done["path"]) == sha256(source)
    alice.state(sid, "DEINIT", timeout=15)


def test_falls_back_to_in_band_when_no_socks5_candidate_works(folder):
    """A server without a bytestreams proxy and relay-only agents: no SOCKS5 candidate
    exists on either side, both report candidate-error, the initiator replaces the
    transport with IBB (XEP-0260 §2.6) and the file still arrives verified."""
    import shutil
    import tempfile
    from pathlib import Path

    from scripts.agents import USERS, Agent, make_ready
    from scripts.local_prosody import LocalProsody

    data = Path(tempfile.mkdtemp(prefix="pj-noproxy-"))
    server = LocalProsody(data, proxy65=False)
    server.configure(USERS)
    server.start()
    agents = []
    try:
        alice = Agent(server, "alice", folder, extra="[policy]\nrelay_only = true\n")
        bob = Agent(server, "bob", folder, extra=f"[policy]\nrelay_only = true\n"
                                                  f'[transfer]\ndownload_dir = "{folder}/dl"\n')
        agents = [alice, bob]
        for agent in agents:
            agent.wait_connected()
        make_ready(alice, bob)
        source = folder / "fallback.bin"
        source.write_bytes(os.urandom(2 * 1024 * 1024))
        sid = alice.client.send_file(bob.bare, str(source))
        bob.state(sid, "RECEIVEDINITIATE")
        bob.client.accept(sid)
        failed = alice.watch.wait_for(10, event="transport.state", sid=sid, state="failed")
        assert failed["method"] == "s5b"
        connected = bob.watch.wait_for(10, event="transport.state", sid=sid, state="connected")
        assert connected["method"] == "ibb"
        done = bob.watch.wait_for(60, event="transfer.complete", sid=sid)
        assert done["verified"] is True and sha256(done["path"]) == sha256(source)
        alice.state(sid, "DEINIT", timeout=15)
    finally:
        for agent in agents:
            agent.stop()
        server.stop()
        shutil.rmtree(data, ignore_errors=True)


def test_offer_hashed_with_sha3_is_verified_with_sha3(prosody, start_agent, folder):
    """A raw peer offers a file carrying only a sha3-256 hash (XEP-0300) over IBB; bob's
    agent verifies with that algorithm and keeps the file."""
    import asyncio
    import base64
    import hashlib

    from scripts.raw_xmpp import login
    from signalling.jingle import namespaces as ns

    bob = start_agent("bob", extra=f'[transfer]\ndownload_dir = "{folder}/dl"\n')
    payload = os.urandom(50_000)
    digest = base64.b64encode(hashlib.sha3_256(payload).digest()).decode()

    async def scenario():
        from slixmpp.xmlstream import ET
        from slixmpp.xmlstream.handler import Callback
        from slixmpp.xmlstream.matcher import MatchXPath

        client = await login(prosody, "dave")
        client.send_presence()
        accepted = asyncio.Event()

        def on_jingle(iq):
            iq.reply().send()
            if iq.xml.find(f"{{{ns.JINGLE}}}jingle").get("action") == "session-accept":
                accepted.set()

        client.register_handler(Callback("j", MatchXPath(
            f"{{jabber:client}}iq/{{{ns.JINGLE}}}jingle"), on_jingle))
        iq = client.make_iq_set(ito=bob.full)
        iq.xml.append(ET.fromstring(
            f"<jingle xmlns='{ns.JINGLE}' action='session-initiate' sid='sha3'"
            f" initiator='{client.boundjid}'><content creator='initiator' name='f'"
            f" senders='initiator'><description xmlns='{ns.FILE_TRANSFER}'><file>"
            f"<name>sha3.bin</name><size>{len(payload)}</size>"
            f"<hash xmlns='{ns.HASHES}' algo='sha3-256'>{digest}</hash></file></description>"
            f"<transport xmlns='{ns.IBB}' sid='ib1' block-size='4096'/></content></jingle>"))
        await iq.send(timeout=5)
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(None, lambda: bob.state("sha3", "RECEIVEDINITIATE"))
        await loop.run_in_executor(None, bob.client.accept, "sha3")
        await asyncio.wait_for(accepted.wait(), 10)
        ibb = "http://jabber.org/protocol/ibb"
        open_iq = client.make_iq_set(ito=bob.full)
        ET.SubElement(open_iq.xml, f"{{{ibb}}}open",
                      {"sid": "ib1", "block-size": "4096", "stanza": "iq"})
        await open_iq.send(timeout=5)
        for seq, offset in enumerate(range(0, len(payload), 4096)):
            data = client.make_iq_set(ito=bob.full)
            el = ET.SubElement(data.xml, f"{{{ibb}}}data", {"sid": "ib1", "seq": str(seq)})
            el.text = base64.b64encode(payload[offset:offset + 4096]).decode()
            await data.send(timeout=5)
        return await loop.run_in_executor(
            None, lambda: bob.watch.wait_for(20, event="transfer.complete", sid="sha3"))

    done = asyncio.run(scenario())
    assert done["verified"] is True
    assert Path(done["path"]).read_bytes() == payload


@pytest.mark.parametrize("transports", ['["s5b", "ibb"]', '["ibb"]'])
def test_request_a_shared_file(start_agent, folder, transports):
    """XEP-0234 §5: alice asks bob for a file; bob sends it from transfer.shared_dir."""
    from scripts.agents import make_ready

    shared = folder / "shared"
    shared.mkdir()
    wanted = shared / "report.pdf"
    wanted.write_bytes(os.urandom(3 * 1024 * 1024))
    (folder / "secret.txt").write_text("outside the shared folder")
    alice = start_agent("alice", extra=f'[transfer]\ntransports = {transports}\n'
                                        f'download_dir = "{folder}/alice-dl"\n')
    bob = start_agent("bob", extra=f'[transfer]\ntransports = {transports}\n'
                                    f'shared_dir = "{shared}"\n')
    make_ready(alice, bob)

    sid = alice.client.request_file(bob.bare, "report.pdf")
    request = bob.state(sid, "RECEIVEDINITIATE")
    assert request["kind"] == "file"
    bob.client.accept(sid)
    done = alice.watch.wait_for(30, event="transfer.complete", sid=sid)
    assert done["verified"] is True and done["size"] == wanted.stat().st_size
    assert sha256(done["path"]) == sha256(wanted)
    assert done["path"] == str(folder / "alice-dl" / "report.pdf")
    assert alice.state(sid, "DEINIT")["reason"] == "success"

    for name in ("missing.bin", "../secret.txt"):
        sid = alice.client.request_file(bob.bare, name)
        bob.state(sid, "RECEIVEDINITIATE")
        with pytest.raises(ControlFailed) as info:
            bob.client.accept(sid)
        assert info.value.code == "not-found"
        assert alice.state(sid, "DEINIT")["reason"] == "cancel"


def test_offer_over_the_size_limit_is_refused_on_arrival(start_agent, folder):
    from scripts.agents import make_ready

    alice = start_agent("alice")
    bob = start_agent("bob", extra=f'[transfer]\nmax_size = 1000\ndownload_dir = "{folder}/dl"\n')
    make_ready(alice, bob)
    source = folder / "big.bin"
    source.write_bytes(b"x" * 1001)
    sid = alice.client.send_file(bob.bare, str(source))
    assert alice.state(sid, "RECEIVEDREJECT")["reason"] == "decline"
    assert bob.state(sid, "DEINIT")["reason"] == "decline"
    assert not (folder / "dl").exists() or not any((folder / "dl").iterdir())
