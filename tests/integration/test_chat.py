"""Chat through nginx on the real local cluster: real time, events, history, resume."""

from __future__ import annotations

import secrets

import anyio
import pytest

from tests.helpers import chat_client, contiguous
from tuitalk.client.session import ClientSession
from tuitalk.launcher.cluster import LocalCluster

pytestmark = [pytest.mark.anyio, pytest.mark.integration]


def room_name() -> str:
    return "t" + secrets.token_hex(4)


async def test_two_clients_on_different_backends_chat_in_real_time(cluster: LocalCluster) -> None:
    room = room_name()
    async with chat_client(cluster.url, "alice", name="alice") as a:
        await a.wait_connected()
        # least_conn spreads connections: open clients until one lands elsewhere.
        async with chat_client(cluster.url, "bob", name="bob") as b:
            await b.wait_connected()
            if b.backend == a.backend:
                async with chat_client(cluster.url, "bob2", name="bob") as b2:
                    await b2.wait_connected()
                    assert b2.backend != a.backend
                    await _converse(a, b2, room)
            else:
                await _converse(a, b, room)


async def _converse(a, b, room: str) -> None:  # type: ignore[no-untyped-def]
    a.driver.join(room)
    await a.wait_joined(room)
    b.driver.join(room)
    await b.wait_joined(room)
    t0 = anyio.current_time()
    a.say(room, "hello from alice")
    await b.wait_texts(room, ["hello from alice"], timeout=5)
    latency = anyio.current_time() - t0
    assert latency < 2.0  # generous: real time, not a benchmark
    b.say(room, "hi alice")
    await a.wait_texts(room, ["hi alice"])
    # Join, nick and leave are sequenced room events both sides see in the same order.
    b.driver.nick("robert")
    await a.wait_for(lambda: any(m.kind == "nick" and m.name == "robert" for m in a.shown(room)))
    b.driver.leave(room)
    await a.wait_for(lambda: any(m.kind == "leave" for m in a.shown(room)))
    kinds = [m.kind for m in a.shown(room)]
    assert kinds == ["join", "join", "text", "text", "nick", "leave"]
    assert contiguous(a.shown(room))
    # Both saw the common part identically (epoch, seq, id).
    common = [(m.epoch, m.seq, m.id) for m in b.shown(room)]
    assert common == [(m.epoch, m.seq, m.id) for m in a.shown(room)][1 : 1 + len(common)]


async def test_history_pages_back_over_1000_messages_without_gap(cluster: LocalCluster) -> None:
    room = room_name()
    n = 1100
    async with chat_client(cluster.url, "writer", name="writer") as w:
        w.driver.join(room)
        await w.wait_joined(room)
        ids = [w.say(room, f"line {i}") for i in range(n)]
        await w.wait_acked(ids, timeout=60)
    # The test cluster keeps 300 entries per stream, so most pages come from PostgreSQL.
    await anyio.sleep(1.0)
    async with chat_client(cluster.url, "reader", name="reader", history_limit=100) as r:
        r.driver.join(room)
        await r.wait_joined(room)
        loaded = []
        more = True
        while more:
            pages_before = sum(1 for e in r.events if type(e).__name__ == "HistoryLoaded")
            assert r.driver.load_history(room)
            await r.wait_for(
                lambda n=pages_before: sum(
                    1 for e in r.events if type(e).__name__ == "HistoryLoaded") > n,
                10, "history page")
            pages = [e for e in r.events if type(e).__name__ == "HistoryLoaded"]
            loaded = [m for e in reversed(pages) for m in e.messages]  # oldest page first
            more = r.session.rooms[room].more_history
        seqs = [m.seq for m in loaded]
        assert seqs == list(range(1, len(seqs) + 1))
        texts = [m.text for m in loaded if m.kind == "text"]
        assert texts == [f"line {i}" for i in range(n)]


async def test_killed_client_resumes_by_cursor_and_gets_exactly_what_it_missed(
    cluster: LocalCluster,
) -> None:
    room = room_name()
    async with chat_client(cluster.url, "sender", name="sender") as s:
        s.driver.join(room)
        await s.wait_joined(room)
        async with chat_client(cluster.url, "victim", name="victim") as v:
            v.driver.join(room)
            await v.wait_joined(room)
            first = [s.say(room, f"before {i}") for i in range(5)]
            await v.wait_texts(room, [f"before {i}" for i in range(5)])
            snapshot = v.session.snapshot()
            shown_before = v.shown(room)
            await v.driver.abort()
            v.driver.stop()
        missed = [s.say(room, f"missed {i}") for i in range(20)]
        await s.wait_acked(first + missed)
        # A new process would start from the saved state: the same token and cursors.
        async with chat_client(cluster.url, "victim2",
                               session=ClientSession.restore(snapshot)) as v2:
            await v2.wait_texts(room, [f"missed {i}" for i in range(20)])
            got = v2.shown(room)
            assert [m.text for m in got] == [f"missed {i}" for i in range(20)]
            assert got[0].seq == shown_before[-1].seq + 1
            assert contiguous(shown_before + got)
            assert v2.session.raw_duplicates == 0
            assert v2.session.user == snapshot["user"]


async def test_leave_and_rejoin_at_once_keeps_receiving(cluster: LocalCluster) -> None:
    """The backend drops its subscription when the last local member leaves and takes it
    again at once: the late "sunsubscribe" reply must not be mistaken for a lost slot."""
    room = room_name()
    async with chat_client(cluster.url, "talker", name="talker") as t, \
            chat_client(cluster.url, "flipper", name="flipper") as f:
        t.driver.join(room)
        await t.wait_joined(room)
        for _ in range(5):
            f.driver.join(room)
            await f.wait_joined(room)
            f.driver.leave(room)
            await f.wait_for(lambda: room not in f.session.rooms, 5, "left")
        f.driver.join(room)
        await f.wait_joined(room)
        t0 = anyio.current_time()
        t.say(room, "are you there")
        await f.wait_texts(room, ["are you there"], timeout=5)
        assert anyio.current_time() - t0 < 1.5  # live, not found by a periodic check
