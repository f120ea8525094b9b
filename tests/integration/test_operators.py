"""What an operator and a user of the command line meet: login failures that say why,
the agent's and the CLI's own options, paths, pipes, a second playground, jingle top."""

from __future__ import annotations

import fcntl
import os
import subprocess
import sys
import time

import pytest

from control import protocol as cp
from control.client import ControlFailed
from scripts.agents import Agent, call_in_progress
from scripts.local_prosody import free_port
from tests.integration.conftest import ROOT, make_ready

pytestmark = pytest.mark.prosody
QUIET = '[audio]\ninput = "silence"\noutput = "null"\n'
JINGLE = [sys.executable, "-m", "control.cli"]


def _failing_agent(prosody, folder, env=None, tls="off"):
    agent = Agent(prosody, "carol", folder, extra=QUIET, env=env, tls=tls)
    deadline = time.monotonic() + 20
    status: dict = {}
    while time.monotonic() < deadline:
        try:
            status = agent.client.status()
            if status.get("last_error"):
                break
        except Exception:
            pass
        time.sleep(0.2)
    return agent, status


@pytest.mark.parametrize("case, env, tls, says, key", [
    ("wrong password", {"PYJINGLE_ACCOUNT_PASSWORD": "wrong"}, "off",
     "authentication failed", "account.password"),
    ("unreachable", {"PYJINGLE_ACCOUNT_PORT": "PORT"}, "off",
     "cannot reach the server", "account.port"),
    ("tls mismatch", {}, "required", "TLS is required but the server offered none",
     "account.tls"),
])
def test_a_login_that_cannot_work_says_why(prosody, folder, case, env, tls, says, key):
    env = {k: (str(free_port()) if v == "PORT" else v) for k, v in env.items()}
    agent, status = _failing_agent(prosody, folder, env, tls)
    try:
        assert status["connected"] is False
        assert says in status["last_error"] and key in status["last_error"], status
        assert status["version"]
        log = agent.log_text()
        errors = [line for line in log.splitlines() if " ERROR " in line and says in line]
        assert len(errors) == 1, log  # once per cause, not at every retry
        event = agent.watch.wait_for(5, event="connection.state", state="disconnected")
        assert event.get("reason")
    finally:
        agent.stop()


def test_check_reports_every_problem_and_the_example_passes(tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text('[account]\njid = "not a jid"\npasword = "x"\nport = "http"\n'
                   '[polcy]\nx = 1\n[policy]\nauto_accept_call = "all"\n')
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYJINGLE_")}
    run = subprocess.run([sys.executable, "-m", "supervisor", "--config", str(bad), "--check"],
                         cwd=ROOT, capture_output=True, text=True, timeout=30,
                         env=env | {"PYJINGLE_ACOUNT_SERVER": "x"})
    assert run.returncode == 2
    lines = run.stderr.strip().splitlines()
    for expected in ("account.pasword: unknown key (did you mean password?)",
                     "[polcy]: unknown section (did you mean policy?)",
                     "policy.auto_accept_call: unknown key (did you mean auto_accept_calls?)",
                     "PYJINGLE_ACOUNT_SERVER: not a pyjingle variable (did you mean "
                     "PYJINGLE_ACCOUNT_SERVER?)",
                     "account.jid: 'not a jid' is not a JID", "account.port: expected an integer"):
        assert any(expected in line for line in lines), (expected, lines)
    example = tmp_path / "example.toml"
    example.write_text(subprocess.run(
        [sys.executable, "-m", "supervisor", "--example-config"], cwd=ROOT, capture_output=True,
        text=True, check=True).stdout)
    run = subprocess.run([sys.executable, "-m", "supervisor", "--config", str(example),
                          "--check"], cwd=ROOT, capture_output=True, text=True, timeout=30,
                         env=env)
    assert run.returncode == 0, run.stderr
    assert "valid" in run.stdout


def test_versions():
    from bus.version import version

    for command in ([sys.executable, "-m", "supervisor", "--version"], [*JINGLE, "--version"]):
        run = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=30)
        assert run.returncode == 0 and version() in run.stdout, run


def test_the_cli_resolves_paths_where_it_runs(start_agent, folder, tmp_path):
    alice = start_agent("alice", extra=QUIET)
    bob = start_agent("bob", extra=QUIET)
    make_ready(alice, bob)
    elsewhere = tmp_path / "work"
    (elsewhere / "docs").mkdir(parents=True)
    (elsewhere / "docs" / "note.txt").write_text("relative to where jingle runs\n")
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYJINGLE_")}
    env["PYTHONPATH"] = str(ROOT)
    sent = subprocess.run([*JINGLE, "--agent", str(alice.config), "send", bob.bare,
                           "docs/note.txt", "--no-wait"], cwd=elsewhere, capture_output=True,
                          text=True, timeout=30, env=env)
    assert sent.returncode == 0, sent.stderr
    sid = __import__("json").loads(sent.stdout)["sid"]
    offer = bob.state(sid, "RECEIVEDINITIATE")
    assert offer["file"] == {"name": "note.txt", "size": 29, "hash": "sha-256"} or \
        offer["file"]["name"] == "note.txt"
    assert [s["file"]["name"] for s in bob.client.sessions() if s["sid"] == sid] == ["note.txt"]
    accepted = subprocess.run([*JINGLE, "--agent", str(bob.config), "accept", sid, "--dir",
                               "inbox", "--wait"], cwd=elsewhere, capture_output=True, text=True,
                              timeout=60, env=env)
    assert accepted.returncode == 0, accepted.stderr
    assert (elsewhere / "inbox" / "note.txt").read_text() == "relative to where jingle runs\n"


def test_pipes_bad_endpoints_and_no_agent_end_without_a_traceback(start_agent, folder):
    alice = start_agent("alice", extra=QUIET)
    bob = start_agent("bob", extra=QUIET)
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYJINGLE_")}
    env["PYTHONPATH"] = str(ROOT)
    pipeline = subprocess.Popen(
        f"{sys.executable} -m control.cli --agent {alice.config} events | head -1",
        shell=True, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
    deadline = time.monotonic() + 30
    while pipeline.poll() is None and time.monotonic() < deadline:
        # Calls and hang-ups: events for the pipe, until its CLI (slow to start on a
        # loaded machine) has subscribed and taken one.
        make_ready(alice, bob)
        time.sleep(0.3)
    out, err = pipeline.communicate(timeout=30)
    assert out.count(b"\n") == 1 and b'"event"' in out
    assert b"Traceback" not in err, err
    for args, code in (((*JINGLE, "--control", "bogus", "--events", "bogus", "status"), 2),
                       ((*JINGLE, "--control", f"ipc://{folder}/none", "--events",
                         f"ipc://{folder}/none-ev", "events"), 3),
                       ((*JINGLE, "--agent", str(folder / "missing.toml"), "status"), 2)):
        started = time.monotonic()
        run = subprocess.run(args, cwd=ROOT, capture_output=True, text=True, timeout=30,
                             env=env)
        assert run.returncode == code, run
        assert "Traceback" not in run.stderr and len(run.stderr.strip().splitlines()) == 1, run
        assert time.monotonic() - started < 10
    unreadable = folder / "secret.toml"
    unreadable.write_text("[account]\n")
    unreadable.chmod(0)
    if os.geteuid() != 0:
        run = subprocess.run([*JINGLE, "--agent", str(unreadable), "status"], cwd=ROOT,
                             capture_output=True, text=True, timeout=30, env=env)
        assert run.returncode == 2 and "not readable" in run.stderr


def test_calling_yourself_or_a_stranger_says_which(start_agent, prosody):
    alice = start_agent("alice", extra=QUIET)
    with pytest.raises(ControlFailed) as own:
        alice.client.call(alice.full)
    assert own.value.code == cp.BAD_REQUEST and "itself" in own.value.message
    with pytest.raises(ControlFailed) as stranger:
        alice.client.call(f"eve@{prosody.domain}")
    assert stranger.value.code == cp.NOT_FOUND and "not one of your contacts" in \
        stranger.value.message
    with pytest.raises(ControlFailed) as offline:
        alice.client.call(f"carol@{prosody.domain}")
    assert offline.value.code == cp.NOT_FOUND and "offline" in offline.value.message


def test_a_second_playground_is_refused_and_the_first_keeps_its_folder(tmp_path):
    folder = tmp_path / "pg"
    folder.mkdir()
    (folder / "alice.toml").write_text("# the running playground's\n")
    with open(f"{folder}.lock", "w") as held:
        fcntl.flock(held, fcntl.LOCK_EX)
        held.write("4242\n")
        held.flush()
        run = subprocess.run(["bash", "scripts/playground.sh"], cwd=ROOT, capture_output=True,
                             text=True, timeout=60, env=os.environ | {"PLAYGROUND_DIR":
                                                                      str(folder)})
    assert run.returncode == 2 and "already running" in run.stderr and "4242" in run.stderr
    assert (folder / "alice.toml").exists()


def test_jingle_top_shows_a_call(start_agent, folder):
    alice = start_agent("alice", extra='[audio]\ninput = "tone:440"\noutput = "null"\n')
    bob = start_agent("bob", extra='[audio]\ninput = "tone:660"\noutput = "null"\n')
    make_ready(alice, bob)
    sid = call_in_progress(alice, bob)
    time.sleep(0.5)
    assert [(s["sid"], s.get("worker")) for s in alice.client.sessions()] == [(sid, "media")]
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYJINGLE_")}
    env["PYTHONPATH"] = str(ROOT)
    top = subprocess.run([*JINGLE, "--agent", str(alice.config), "top", "--once",
                          "--interval", "3.5"], cwd=ROOT, capture_output=True, text=True,
                         timeout=60, env=env)
    alice.client.hangup(sid)
    assert top.returncode == 0, top.stderr
    screen = top.stdout
    for expected in (alice.full, "connected", bob.bare, "INPROGRESS", "opus", "ice-udp",
                     "dtls-srtp", "signalling", "media", "transfer"):
        assert expected in screen, (expected, screen)
    call_line = next(line for line in screen.splitlines() if bob.bare in line)
    numbers = [cell.strip() for cell in call_line.split("│")[6:11]]
    assert all(n not in ("", "-") for n in numbers[:5]), call_line  # RTT .. out kb/s
    assert float(numbers[3]) > 10 and float(numbers[4]) > 10  # tens of kb/s each way
