"""One agent per configuration: the lock beside the control socket."""

import os

import pytest

from bus.config import load_config
from bus.curve import make_keys
from supervisor.lock import AgentLock, AlreadyRunning, lock_path


def test_the_second_holder_is_refused_with_the_first_ones_pid(tmp_path):
    path = tmp_path / "commands.lock"
    first = AgentLock(path)
    first.acquire()
    with pytest.raises(AlreadyRunning) as refused:
        AgentLock(path).acquire()  # another open file description: flock refuses it
    assert refused.value.pid == os.getpid()
    assert f"pid {os.getpid()}" in str(refused.value)
    first.release()
    again = AgentLock(path)
    again.acquire()  # released (as when the process dies): free again
    again.release()


def test_a_planted_link_is_not_followed(tmp_path):
    target = tmp_path / "victim"
    target.write_text("keep")
    (tmp_path / "commands.lock").symlink_to(target)
    with pytest.raises(OSError):
        AgentLock(tmp_path / "commands.lock").acquire()
    assert target.read_text() == "keep"


def test_the_lock_sits_beside_an_ipc_socket_or_in_the_runtime_folder(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(tmp_path))
    env = {"PYJINGLE_ACCOUNT_JID": "a@localhost", "PYJINGLE_ACCOUNT_PASSWORD": "x"}
    ipc = load_config(None, env | {"PYJINGLE_CONTROL_COMMANDS": f"ipc://{tmp_path}/c",
                                   "PYJINGLE_CONTROL_EVENTS": f"ipc://{tmp_path}/e"})
    assert lock_path(ipc) == tmp_path / "c.lock"
    env["PYJINGLE_CONTROL_CURVE_KEYS"] = str(make_keys(tmp_path / "keys"))
    tcp = load_config(None, env | {"PYJINGLE_CONTROL_COMMANDS": "tcp://127.0.0.1:5999",
                                   "PYJINGLE_CONTROL_EVENTS": "tcp://127.0.0.1:5998"})
    other = load_config(None, env | {"PYJINGLE_CONTROL_COMMANDS": "tcp://127.0.0.1:6000",
                                     "PYJINGLE_CONTROL_EVENTS": "tcp://127.0.0.1:5998"})
    assert lock_path(tcp) != lock_path(other)
    assert lock_path(tcp).parent == tmp_path / "pyjingle" / "a@localhost"
