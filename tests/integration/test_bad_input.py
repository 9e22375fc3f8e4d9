"""Hostile and broken input: every bad frame gets its error code, nothing else notices."""

from __future__ import annotations

import json
import secrets
import sys
import time
import urllib.request
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager

import anyio
import pytest
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

from tests.helpers import chat_client
from tuitalk.launcher.cluster import LocalCluster
from tuitalk.launcher.process import ManagedProcess
from tuitalk.protocol import MAX_FRAME_BYTES, CloseCode, ErrorCode

pytestmark = [pytest.mark.anyio, pytest.mark.integration]


@asynccontextmanager
async def raw(url: str, hello: bool = True, **kwargs: object) -> AsyncIterator[ClientConnection]:
    ws = await connect(url, compression=None, ping_interval=None, **kwargs)  # type: ignore[arg-type]
    try:
        if hello:
            await ws.send(json.dumps({"t": "hello", "v": 1, "name": "fuzz"}))
            assert json.loads(await ws.recv())["t"] == "welcome"
        yield ws
    finally:
        await ws.close()


async def next_error(ws: ClientConnection) -> dict[str, str]:
    with anyio.fail_after(5):
        while True:
            frame = json.loads(await ws.recv())
            if frame["t"] == "error":
                return frame


CASES = [
    ("{not json", ErrorCode.BAD_JSON),
    ('["an", "array"]', ErrorCode.BAD_JSON),
    ('{"t": "teleport"}', ErrorCode.UNKNOWN_TYPE),
    ('{"no": "type"}', ErrorCode.BAD_FRAME),
    (b"\x00\x01binary", ErrorCode.BINARY_FRAME),
    ('{"t": "ping", "pad": "' + "x" * (MAX_FRAME_BYTES + 10) + '"}', ErrorCode.TOO_LARGE),
    ('{"t": "join", "room": "../../etc/passwd"}', ErrorCode.BAD_ROOM),
    ('{"t": "join", "room": "' + "r" * 40 + '"}', ErrorCode.BAD_ROOM),
    ('{"t": "nick", "name": "evil\\u202eeman"}', ErrorCode.BAD_NAME),
    ('{"t": "nick", "name": "\\u001b]0;pwned\\u0007"}', ErrorCode.BAD_NAME),
    ('{"t": "nick", "name": ""}', ErrorCode.BAD_NAME),
    ('{"t": "say", "room": "lobby", "id": "x", "text": "hi"}', ErrorCode.BAD_ID),
    ('{"t": "say", "room": "nowhere", "id": "abcdefgh", "text": "hi"}', ErrorCode.NOT_MEMBER),
    ('{"t": "hello", "v": 1}', ErrorCode.DUP_HELLO),
    ('{"t": "history", "room": "lobby", "limit": 100000}', ErrorCode.BAD_FRAME),
]


async def test_each_bad_frame_gets_its_error_code_and_others_notice_nothing(
    cluster: LocalCluster,
) -> None:
    room = "b" + secrets.token_hex(4)
    async with chat_client(cluster.url, "bystander", name="bystander") as by, \
            chat_client(cluster.url, "talker", name="talker") as talk:
        by.driver.join(room)
        await by.wait_joined(room)
        talk.driver.join(room)
        await talk.wait_joined(room)
        for i, (frame, code) in enumerate(CASES):
            async with raw(cluster.url) as ws:
                await ws.send(frame)
                err = await next_error(ws)
                assert err["code"] == code, (frame[:60], err)
                # The connection survives a single bad frame.
                await ws.send('{"t": "ping"}')
                with anyio.fail_after(5):
                    assert json.loads(await ws.recv())["t"] == "pong"
            talk.say(room, f"still here {i}")
        await by.wait_texts(room, [f"still here {i}" for i in range(len(CASES))])
        assert by.session.reconnects == 0 and talk.session.reconnects == 0


async def test_frames_before_hello_are_refused(cluster: LocalCluster) -> None:
    async with raw(cluster.url, hello=False) as ws:
        await ws.send('{"t": "join", "room": "lobby"}')
        assert (await next_error(ws))["code"] == ErrorCode.NO_HELLO


async def test_persistent_garbage_is_closed_with_1008_and_backend_stays_up(
    cluster: LocalCluster,
) -> None:
    async with chat_client(cluster.url, "calm", name="calm") as calm:
        await calm.wait_connected()
        async with raw(cluster.url) as ws:
            with pytest.raises(ConnectionClosed) as info:
                for _ in range(1000):
                    await ws.send("garbage")
                with anyio.fail_after(5):
                    while True:
                        await ws.recv()
            assert info.value.rcvd is not None
            assert info.value.rcvd.code == CloseCode.POLICY_VIOLATION
        room = "c" + secrets.token_hex(4)
        calm.driver.join(room)
        await calm.wait_joined(room)
        calm.say(room, "unaffected")
        await calm.wait_texts(room, ["unaffected"])
        assert all(b.ready() for b in cluster.backends)


async def test_frame_beyond_transport_cap_closes_with_1009(cluster: LocalCluster) -> None:
    async with raw(cluster.url) as ws:
        with pytest.raises(ConnectionClosed) as info:
            await ws.send("x" * (2 * 1024 * 1024))
            with anyio.fail_after(5):
                while True:
                    await ws.recv()
        assert info.value.rcvd is not None
        assert info.value.rcvd.code == CloseCode.MESSAGE_TOO_BIG


# -- limits that need a backend with small settings ---------------------------------------


@pytest.fixture
def strict_backend(cluster: LocalCluster) -> Iterator[str]:
    """One extra backend on the shared Redis, with tight limits and an Origin allowlist."""
    port = cluster.ports.port()
    proc = ManagedProcess(
        "strict",
        [sys.executable, "-m", "tuitalk", "serve", "--name", "strict", "--port", str(port),
         "--redis", cluster.redis_seeds, "--max-conns-per-ip", "3", "--rate", "5",
         "--burst", "5", "--origins", "http://good.example", "--ring-frames", "64",
         "--heartbeat", "60"],
        log_path=cluster.spec.base / "backends" / "strict.log",
    )
    proc.start()
    try:
        from tuitalk.launcher.cluster import BackendProc

        b = BackendProc("strict", port, proc)
        deadline = time.monotonic() + 20
        while not b.ready():
            assert proc.alive(), proc.log_tail()
            assert time.monotonic() < deadline, "strict backend not ready"
            time.sleep(0.05)
        yield f"ws://127.0.0.1:{port}/ws"
        assert proc.alive(), "the strict backend died"
    finally:
        proc.stop()


async def test_connection_cap_per_address(strict_backend: str) -> None:
    conns = [await connect(strict_backend, ping_interval=None) for _ in range(3)]
    try:
        with pytest.raises(InvalidStatus) as info:
            await connect(strict_backend, ping_interval=None)
        assert info.value.response.status_code == 429
        # Behind nginx the cap counts X-Real-IP, not the proxy's address.
        other = await connect(strict_backend, ping_interval=None,
                              additional_headers={"X-Real-IP": "127.0.0.9"})
        await other.close()
    finally:
        for c in conns:
            await c.close()


async def test_origin_allowlist(strict_backend: str) -> None:
    with pytest.raises(InvalidStatus) as info:
        await connect(strict_backend, origin="http://evil.example", ping_interval=None)  # type: ignore[arg-type]
    assert info.value.response.status_code == 403
    ok = await connect(strict_backend, origin="http://good.example", ping_interval=None)  # type: ignore[arg-type]
    await ok.close()
    terminal = await connect(strict_backend, ping_interval=None)  # no Origin: not a browser
    await terminal.close()


async def test_rate_limit_answers_rate_limited(strict_backend: str) -> None:
    async with raw(strict_backend) as ws:
        for _ in range(12):
            await ws.send('{"t": "join", "room": "rl"}')
        codes = []
        with anyio.move_on_after(3):
            while len(codes) < 5:
                frame = json.loads(await ws.recv())
                if frame["t"] == "error":
                    codes.append(frame["code"])
        assert ErrorCode.RATE_LIMITED in codes


async def test_slow_consumer_is_closed_with_4008_not_silently_dropped(
    cluster: LocalCluster, strict_backend: str,
) -> None:
    room = "s" + secrets.token_hex(4)
    # The slow client reads nothing: websockets stops reading its socket after one queued
    # message, the kernel buffers fill, the backend's ring buffer (64 frames here) too.
    slow = await connect(strict_backend, ping_interval=None, max_queue=1, compression=None)
    await slow.send(json.dumps({"t": "hello", "v": 1, "name": "slow"}))
    await slow.send(json.dumps({"t": "join", "room": room}))
    async with chat_client(cluster.url, "fast", name="fast") as fast:
        fast.driver.join(room)
        await fast.wait_joined(room)
        await anyio.sleep(0.5)
        ids = [fast.say(room, f"{i} " + "x" * 3000) for i in range(1500)]
        metrics = strict_backend.replace("ws://", "http://").replace("/ws", "/metrics")

        def overflowed() -> bool:
            with urllib.request.urlopen(metrics, timeout=2) as r:
                return "tuitalk_ring_overflows_total 1.0" in r.read().decode()

        await fast.wait_for(overflowed, 60, "ring overflow")
        with pytest.raises(ConnectionClosed) as info:
            with anyio.fail_after(20):
                while True:
                    await slow.recv()
        assert info.value.rcvd is not None
        assert info.value.rcvd.code == CloseCode.SLOW_CONSUMER
        # The fast client and the room were not slowed down or disturbed.
        await fast.wait_acked(ids, timeout=60)
        await fast.wait_for(lambda: len(fast.texts(room)) == 1500, 30)
        assert fast.session.reconnects == 0
