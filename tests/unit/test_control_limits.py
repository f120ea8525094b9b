"""The control wire format refuses what would cost the agent more than a request is
worth, before building it, and names what was wrong."""

import msgpack
import pytest

from control import protocol as cp


def _req(**fields):
    return msgpack.packb({"v": 1, "id": "r1", **fields})


@pytest.mark.parametrize("frame", [
    msgpack.packb({"v": 1, "id": "r", "cmd": "status", "args": {f"k{i}": i for i in range(100)}}),
    msgpack.packb({"v": 1, "id": "r", "cmd": "call", "args": {"to": list(range(1000))}}),
    msgpack.packb({"v": 1, "id": "r", "cmd": "call", "args": {"to": "x" * 20_000}}),
    b"\x00" * (cp.MAX_FRAME + 1),
    msgpack.packb([[[[[[1]]]]]] * 100),
])
def test_oversized_or_too_wide_frames_are_bad_requests(frame):
    with pytest.raises(cp.ControlError) as refused:
        cp.parse_request(frame)
    assert refused.value.code == cp.BAD_REQUEST


def test_a_bad_request_carries_the_id_once_it_could_be_read():
    with pytest.raises(cp.ControlError) as refused:
        cp.parse_request(_req(cmd="call", args={"to": 5}))
    assert refused.value.req_id == "r1" and "'to'" in refused.value.message
    with pytest.raises(cp.ControlError) as refused:
        cp.parse_request(_req(cmd="nope"))
    assert (refused.value.code, refused.value.req_id) == (cp.UNKNOWN_COMMAND, "r1")


def test_contact_commands_take_a_jid():
    assert cp.parse_request(_req(cmd="contacts")).cmd == "contacts"
    for verb in ("approve", "deny", "add", "remove"):
        assert cp.parse_request(_req(cmd=verb, args={"jid": "eve@x"})).args == {"jid": "eve@x"}
        with pytest.raises(cp.ControlError):
            cp.parse_request(_req(cmd=verb, args={}))
