"""In-band blocks and their acknowledgements cross the bus in batches: what is
queued for one destination leaves as one message when it says one thing."""

from __future__ import annotations

import asyncio

import zmq
import zmq.asyncio
from hypothesis import given
from hypothesis import strategies as st

from bus import messages as m
from bus.link import ProcessLink


def _merge_all(messages: list[m.Message]) -> list[m.Message]:
    out: list[m.Message] = []
    for message in messages:
        merged = m.coalesce(out[-1], message) if out else None
        if merged is None:
            out.append(message)
        else:
            out[-1] = merged
    return out


@given(st.integers(0, 0xFFFF), st.lists(st.integers(1, 5), min_size=1, max_size=20))
def test_consecutive_blocks_become_one_message_in_order(first_seq, sizes):
    """However the blocks were split, merging gives them back in order, numbered on
    from the first (modulo 65536), in as few messages as the byte cap allows."""
    blocks = [bytes([i % 256]) * 10 for i in range(sum(sizes))]
    messages, seq, at = [], first_seq, 0
    for size in sizes:
        messages.append(m.IbbChunk("s", seq, tuple(blocks[at:at + size])))
        seq, at = (seq + size) & 0xFFFF, at + size
    merged = _merge_all(messages)
    assert len(merged) == 1
    assert merged[0] == m.IbbChunk("s", first_seq, tuple(blocks))


@given(st.integers(0, 0xFFFF), st.lists(st.integers(1, 8), min_size=1, max_size=20))
def test_consecutive_acks_add_up(first_seq, counts):
    acks, seq = [], first_seq
    for count in counts:
        acks.append(m.IbbAck("s", seq, count))
        seq = (seq + count) & 0xFFFF
    assert _merge_all(acks) == [m.IbbAck("s", first_seq, sum(counts))]


def test_what_does_not_follow_is_not_merged():
    assert m.coalesce(m.IbbAck("s", 1), m.IbbAck("t", 2)) is None  # another stream
    assert m.coalesce(m.IbbAck("s", 1), m.IbbAck("s", 3)) is None  # a gap
    assert m.coalesce(m.IbbChunk("s", 1, (b"a",)), m.IbbChunk("s", 1, (b"b",))) is None
    assert m.coalesce(m.IbbAck("s", 1), m.IbbChunk("s", 2, (b"b",))) is None
    assert m.coalesce(m.SessionClosed("s"), m.SessionClosed("s")) is None
    big = b"x" * (m.MAX_BATCH_BYTES // 2 + 1)
    assert m.coalesce(m.IbbChunk("s", 1, (big,)), m.IbbChunk("s", 2, (big,))) is None


def test_a_link_sends_queued_acks_as_one_message_and_keeps_the_order():
    """A real link and hub (ZeroMQ inproc): acks posted back to back leave merged;
    a message between them, or one for another destination, is not jumped over."""

    async def scenario() -> list[tuple[str, m.Message]]:
        ctx = zmq.asyncio.Context()
        hub = ctx.socket(zmq.ROUTER)
        hub.bind("inproc://hub")
        link = ProcessLink(ctx, "inproc://hub", m.Process.TRANSFER, heartbeat_interval=5,
                           heartbeat_timeout=10, exit_when_orphaned=False)
        posted = [m.IbbAck("s", 0), m.IbbAck("s", 1), m.IbbAck("s", 2),
                  m.SessionClosed("x"), m.IbbAck("s", 3), m.IbbAck("s", 4)]
        for message in posted:
            link.post(m.Process.SIGNALLING, message)
        link.post(m.Process.SUPERVISOR, m.IbbAck("s", 5))
        running = asyncio.create_task(link.run(_ignore))
        got: list[tuple[str, m.Message]] = []
        while len(got) < 5:
            _identity, destination, frame = await hub.recv_multipart()
            message = m.decode(frame)
            if not isinstance(message, m.Heartbeat):
                got.append((destination.decode(), message))
        await hub.send_multipart([b"transfer", b"supervisor", m.encode(m.Shutdown("done"))])
        await asyncio.wait_for(running, 5)
        await link.close()
        hub.close(0)
        ctx.term()
        return got

    got = asyncio.run(scenario())
    assert isinstance(got[0][1], m.Hello)
    assert got[1:] == [("signalling", m.IbbAck("s", 0, 3)),
                       ("signalling", m.SessionClosed("x")),
                       ("signalling", m.IbbAck("s", 3, 2)),
                       ("supervisor", m.IbbAck("s", 5))]


async def _ignore(_source: str, _message: m.Message) -> None:
    pass
