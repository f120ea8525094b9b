"""Bad input on the control socket: ok false with a code, and the agent keeps serving."""

import msgpack
import pytest
import zmq

from control import protocol as cp

pytestmark = pytest.mark.prosody


@pytest.fixture
def alice(start_agent):
    return start_agent("alice")


@pytest.mark.parametrize("frame, code", [
    (b"\x00\xffnot msgpack", "bad-request"),
    (msgpack.packb([1, 2, 3]), "bad-request"),
    (msgpack.packb({"v": 1, "id": "1", "cmd": "fly", "args": {}}), "unknown-command"),
    (msgpack.packb({"v": 1, "id": "2", "cmd": "call", "args": {}}), "bad-request"),
    (msgpack.packb({"v": 1, "id": "3", "cmd": "call", "args": {"to": 5}}), "bad-request"),
    (msgpack.packb({"v": 1, "id": "4", "cmd": "mute", "args": {"sid": "x", "muted": "yes"}}),
     "bad-request"),
    (msgpack.packb({"v": 2, "id": "5", "cmd": "status", "args": {}}), "bad-request"),
    (msgpack.packb({"v": 1, "id": "6", "cmd": "reject", "args": {"sid": "x", "reason": "meh"}}),
     "bad-request"),
    (msgpack.packb({"v": 1, "id": "7", "cmd": "status", "args": {"extra": 1}}), "bad-request"),
    (msgpack.packb({"v": 1, "id": "8", "cmd": "hangup", "args": {"sid": "nope"}}),
     "unknown-session"),
])
def test_bad_requests_get_ok_false(alice, frame, code):
    reply = alice.client.send_raw(frame)
    assert reply.ok is False and reply.code == code and reply.message
    assert alice.client.status()["connected"] is True


def test_reply_keeps_the_request_id(alice):
    reply = alice.client.send_raw(msgpack.packb({"v": 1, "id": "abc", "cmd": "fly"}))
    assert reply.id == "abc"


def test_req_socket_and_multipart_garbage(alice):
    ctx = zmq.Context.instance()
    req = ctx.socket(zmq.REQ)
    req.setsockopt(zmq.LINGER, 0)
    req.connect(alice.commands)
    req.send(cp.encode_request("r1", "status", {}))
    assert req.poll(5000)
    reply = cp.decode_reply(req.recv())
    assert reply.ok and reply.id == "r1" and reply.result["jid"] == alice.full
    req.close()
    dealer = ctx.socket(zmq.DEALER)
    dealer.setsockopt(zmq.LINGER, 0)
    dealer.connect(alice.commands)
    dealer.send_multipart([b"", b"", b"\x93"])
    assert dealer.poll(5000)
    assert cp.decode_reply(dealer.recv_multipart()[-1]).code == "bad-request"
    dealer.close()
    assert alice.client.status()["connected"] is True


def test_status_shape(alice):
    status = alice.client.status()
    assert status["jid"] == alice.full and status["connected"] is True
    assert set(status["workers"]) == {"signalling", "media", "transfer"}
    for worker in status["workers"].values():
        assert worker["alive"] is True and worker["pid"] > 0 and worker["restarts"] == 0
    assert status["sessions"] == []
