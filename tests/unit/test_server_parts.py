"""Ring buffer overflow policy, rate limits, identity tokens, epoch history."""

from __future__ import annotations

import anyio
import pytest

from tuitalk.bus.entries import Epochs, decode_live, decode_stream_entry
from tuitalk.bus.keys import RoomKeys, key_slot
from tuitalk.server.identity import hash_secret, new_identity, parse_token, suggest_name, verify
from tuitalk.server.ratelimit import AbuseMeter, TokenBucket
from tuitalk.server.ringbuffer import RingBuffer


def test_ring_buffer_refuses_on_overflow_instead_of_dropping() -> None:
    rb = RingBuffer(max_items=3, max_bytes=100)
    assert all(rb.push(f"f{i}") for i in range(3))
    assert not rb.push("one too many")
    assert rb.overflowed
    assert len(rb) == 3


def test_ring_buffer_byte_bound() -> None:
    rb = RingBuffer(max_items=100, max_bytes=10)
    assert rb.push("12345")
    assert not rb.push("123456")


@pytest.mark.anyio
async def test_ring_buffer_batches_and_wait_space() -> None:
    rb = RingBuffer(max_items=4, max_bytes=1000)
    for i in range(4):
        rb.push(str(i))
    async with anyio.create_task_group() as tg:
        waited = anyio.Event()

        async def waiter() -> None:
            await rb.wait_space(2)
            waited.set()

        tg.start_soon(waiter)
        await anyio.sleep(0.01)
        assert not waited.is_set()
        assert await rb.get_batch(3) == ["0", "1", "2"]
        with anyio.fail_after(1):
            await waited.wait()
    rb.close()
    assert await rb.get_batch() == ["3"]
    assert await rb.get_batch() == []
    assert not rb.push("after close")


def test_ring_buffer_rejects_bad_bounds() -> None:
    with pytest.raises(ValueError, match="positive"):
        RingBuffer(0, 10)


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def test_token_bucket() -> None:
    b = TokenBucket(rate_per_s=2, burst=2, now=0.0)
    assert b.take(0.0) and b.take(0.0)
    assert not b.take(0.0)
    assert b.take(0.5)  # one token refilled


def test_abuse_meter_window_and_weights() -> None:
    a = AbuseMeter(max_errors=3, window_s=10)
    assert not any(a.record(t) for t in (0, 1, 2))
    assert a.record(3)
    a2 = AbuseMeter(max_errors=3, window_s=10)
    assert not any(a2.record(0, 0.1) for _ in range(29))
    a3 = AbuseMeter(max_errors=2, window_s=1)
    a3.record(0)
    a3.record(0)
    assert not a3.record(5)  # old errors left the window


def test_identity_tokens() -> None:
    user, token = new_identity()
    parsed = parse_token(token)
    assert parsed is not None and parsed[0] == user
    assert len(parsed[1]) >= 43  # 256 bits, urlsafe base64
    assert verify(parsed[1], hash_secret(parsed[1]))
    assert not verify("wrong", hash_secret(parsed[1]))
    for bad in (None, "", "nodot", "zz.short", "g" * 16 + "." + "x" * 40):
        assert parse_token(bad) is None
    assert "-" in suggest_name(user)


def test_epochs_continuation_rules() -> None:
    e = Epochs.parse("a:1,b:11,junk,c:21")
    assert e.current == "c"
    assert e.last_seq_of("a") == 10 and e.last_seq_of("c") is None
    assert e.can_continue("a", 10) and not e.can_continue("a", 11)
    assert e.can_continue("c", 500)
    assert not e.can_continue("zzz", 1)
    assert Epochs.parse(None).current is None


def test_room_keys_share_one_slot() -> None:
    k = RoomKeys("lobby")
    slots = {key_slot(x) for x in (k.meta, k.stream, k.members, k.channel, k.lease, k.joins,
                                   k.dedup("u", "id12345678"))}
    assert slots == {k.slot}


def test_entry_decoding() -> None:
    msg = decode_live("r", '["e1", 5, "id", "u", "n", "me", "waves", 123]')
    assert (msg.epoch, msg.seq, msg.kind, msg.ts) == ("e1", 5, "me", 123)
    assert decode_live("r", '["e1", 5, "id", "u", "n", "weird", "x", 1]').kind == "text"
    entry = ("7-0", ["e", "e1", "i", "x", "u", "u1", "n", "nm", "k", "text", "x", "t", "ts", "9"])
    m = decode_stream_entry("r", entry)
    assert (m.seq, m.text, m.ts) == (7, "t", 9)
