"""Supervision: killed workers come back, their sessions end with DEINIT, nothing hangs or leaks."""

import os
import signal
import time

import pytest

from tests.integration.conftest import make_ready, pid_alive

pytestmark = pytest.mark.prosody


def _open_call(alice, bob):
    sid = alice.client.call(bob.bare)
    alice.state(sid, "SENTINITIATE")
    bob.state(sid, "RECEIVEDINITIATE")
    return sid


def _kill_and_watch(agent, worker):
    """kill -9 ``worker``; poll status throughout; the exited and restarted events."""
    old_pid = agent.client.status()["workers"][worker]["pid"]
    os.kill(old_pid, signal.SIGKILL)
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        status = agent.client.status()  # must answer throughout (ControlClient raises if not)
        w = status["workers"][worker]
        if w["alive"] and w["pid"] != old_pid:
            break
        time.sleep(0.05)
    exited = agent.watch.wait_for(5, event="worker.state", worker=worker, state="exited")
    restarted = agent.watch.wait_for(5, event="worker.state", worker=worker, state="restarted")
    assert exited["pid"] == old_pid and exited["exit_code"] == -signal.SIGKILL
    assert restarted["pid"] != old_pid
    assert restarted["ts"] - exited["ts"] < 2.0
    status = agent.client.status()["workers"][worker]
    assert status["alive"] and status["restarts"] == 1
    return restarted["pid"]


@pytest.fixture
def pair(start_agent):
    """Plain XEP-0166 calls: the session (and its media) exists from the first ring,
    so a worker crash has something to end. (A call still in its XEP-0353 phase
    holds no media yet and simply goes on.)"""
    plain = "[jingle]\nmessage_initiation = false\n"
    alice, bob = start_agent("alice", extra=plain), start_agent("bob", extra=plain)
    make_ready(alice, bob)
    return alice, bob


def test_media_worker_killed_ends_calls(pair):
    alice, bob = pair
    sid = _open_call(alice, bob)
    _kill_and_watch(alice, "media")
    assert alice.state(sid, "DEINIT")["reason"] == "failed-application"
    # The peer is told, so its session ends too instead of ringing on.
    assert bob.state(sid, "RECEIVEDTERMINATE")["reason"] == "failed-application"
    bob.state(sid, "DEINIT")
    # The restarted worker serves new calls.
    sid2 = _open_call(alice, bob)
    bob.client.accept(sid2)
    alice.state(sid2, "RECEIVEDACCEPT")
    alice.client.hangup(sid2)
    bob.state(sid2, "DEINIT")


def test_callee_media_worker_killed_ends_accepted_call(pair):
    alice, bob = pair
    sid = _open_call(alice, bob)
    bob.client.accept(sid)
    alice.state(sid, "RECEIVEDACCEPT")
    _kill_and_watch(bob, "media")
    assert bob.state(sid, "DEINIT")["reason"] == "failed-application"
    assert alice.state(sid, "DEINIT")["reason"] == "failed-application"


def test_transfer_worker_killed_leaves_calls_alone(pair):
    """Calls do not depend on the transfer worker; file sessions would end (no file
    transfer exists yet, see the file-transfer issue)."""
    alice, bob = pair
    sid = _open_call(alice, bob)
    _kill_and_watch(alice, "transfer")
    assert [s["sid"] for s in alice.client.sessions()] == [sid]
    alice.client.hangup(sid)
    bob.state(sid, "DEINIT")


def test_signalling_killed_ends_sessions_and_reconnects(pair):
    alice, bob = pair
    sid = _open_call(alice, bob)
    _kill_and_watch(alice, "signalling")
    deinit = alice.state(sid, "DEINIT")
    assert deinit["reason"] == "failed-application"
    alice.watch.wait_for(5, event="connection.state", state="disconnected")
    alice.watch.wait_for(10, event="connection.state", state="connected")
    # Bob sees Alice's old resource go offline: his side ends too.
    assert bob.state(sid, "DEINIT", timeout=15)["reason"] == "gone"
    assert alice.client.sessions() == []


def test_commands_answer_while_signalling_is_down(pair):
    alice, bob = pair
    pid = alice.client.status()["workers"]["signalling"]["pid"]
    os.kill(pid, signal.SIGSTOP)  # hung, not dead: the supervisor must still answer
    try:
        started = time.monotonic()
        from control.client import ControlFailed

        with pytest.raises(ControlFailed) as info:
            alice.client.call(bob.bare)
        assert info.value.code == "unavailable"
        assert time.monotonic() - started < 5.0
        assert alice.client.status()["jid"] == alice.full
        # The heartbeat timeout (2 s in these tests) declares it dead and restarts it.
        alice.watch.wait_for(10, event="worker.state", worker="signalling", state="restarted")
    finally:
        if pid_alive(pid):
            os.kill(pid, signal.SIGCONT)


def test_sigterm_stops_everything_quickly(start_agent):
    alice = start_agent("alice")
    pids = alice.pids()
    assert len(pids) == 4
    took = alice.stop()
    assert took < 5.0
    time.sleep(0.2)
    assert [p for p in pids if pid_alive(p)] == []


def test_supervisor_killed_leaves_no_orphans(start_agent):
    alice = start_agent("alice")
    pids = alice.pids()
    os.kill(alice.proc.pid, signal.SIGKILL)
    alice.proc.wait()
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and any(pid_alive(p) for p in pids[1:]):
        time.sleep(0.1)
    assert [p for p in pids[1:] if pid_alive(p)] == []


def test_systemd_notify_ready_and_watchdog(start_agent, folder):
    """Type=notify: READY=1 once serving, WATCHDOG=1 at half of WatchdogSec."""
    import socket

    path = str(folder / "notify")
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(path)
    sock.settimeout(10)
    try:
        alice = start_agent("alice", env={"NOTIFY_SOCKET": path, "WATCHDOG_USEC": "400000"})
        got = set()
        while not {"READY=1", "WATCHDOG=1"} <= got:
            got.add(sock.recv(256).decode())
        assert alice.client.status()["connected"]
    finally:
        sock.close()


def test_processes_started_on_their_own(prosody, folder):
    """bus.spawn leaves signalling out: it runs as its own unit and joins the hub."""
    import subprocess
    import sys

    from tests.integration.conftest import ROOT, Agent

    alice = Agent(prosody, "alice", folder, env={"PYJINGLE_BUS_SPAWN": "media,transfer"})
    own = None
    try:
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                if alice.client.status()["workers"]["media"]["alive"]:
                    break
            except Exception:
                pass
            time.sleep(0.1)
        assert alice.client.status()["workers"]["signalling"]["alive"] is False
        own = subprocess.Popen([sys.executable, "-m", "signalling", "--config",
                                str(alice.config)], cwd=ROOT,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        alice.wait_connected()
        started = alice.watch.wait_for(5, event="worker.state", worker="signalling",
                                       state="started")
        assert started["pid"] == own.pid
        assert alice.client.status()["workers"]["signalling"]["pid"] == own.pid
    finally:
        alice.stop()
        if own is not None:
            # Told to shut down by the supervisor, it exits on its own.
            assert own.wait(5) == 0


def test_a_starved_supervisor_loses_no_process_and_no_call(start_agent):
    """A supervisor that is alive but silent (here stopped; in life starved of CPU by
    real-time media workers on every core) for longer than the heartbeat timeout:
    its children wait for it instead of exiting, and once it runs again it does not
    hold their silence against them. The call goes on with the same processes."""
    alice = start_agent("alice")  # heartbeats every 0.2 s, timeout 2 s (scripts/agents.py)
    bob = start_agent("bob", '[policy]\nauto_accept_calls = "all"\n')
    make_ready(alice, bob)
    sid = alice.client.call(bob.bare)
    alice.state(sid, "INPROGRESS", timeout=15)
    pids = alice.pids()
    os.kill(alice.proc.pid, signal.SIGSTOP)
    time.sleep(4.5)  # over two heartbeat timeouts
    os.kill(alice.proc.pid, signal.SIGCONT)
    time.sleep(3.0)  # and more than one with the supervisor running again
    assert alice.pids() == pids
    assert all(pid_alive(p) for p in pids)
    assert [s["state"] for s in alice.client.sessions() if s["sid"] == sid] == ["INPROGRESS"]
    assert "supervisor silent" in alice.log_text() and "but alive" in alice.log_text()
    alice.client.hangup(sid)
    bob.state(sid, "DEINIT", timeout=10)
