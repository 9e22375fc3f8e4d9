"""Kill, freeze and stop parts of the real cluster while clients chat; nothing is lost."""

from __future__ import annotations

import secrets
import time

import anyio
import pytest

from tests.helpers import ChatClient, chat_client, contiguous
from tuitalk.client import events as ev
from tuitalk.launcher.cluster import LocalCluster

pytestmark = [pytest.mark.anyio, pytest.mark.integration]


def room_name() -> str:
    return "f" + secrets.token_hex(4)


async def _on_other_backend(url: str, other: ChatClient, label: str, stack) -> ChatClient:  # type: ignore[no-untyped-def]
    """Open clients until one is on a different backend than ``other``."""
    for i in range(4):
        c = await stack.enter_async_context(chat_client(url, f"{label}{i}", name=label))
        await c.wait_connected()
        if c.backend != other.backend:
            return c
    raise AssertionError("least_conn never placed a client on another backend")


async def _send_loop(client: ChatClient, room: str, prefix: str, duration_s: float,
                     ids: list[str], every_s: float = 0.02) -> None:
    """Send a numbered message every ``every_s``; ids are appended as they are sent."""
    end = time.monotonic() + duration_s
    i = 0
    while time.monotonic() < end:
        ids.append(client.say(room, f"{prefix} {i}"))
        i += 1
        await anyio.sleep(every_s)


def _assert_exactly_once(receiver: ChatClient, sender: ChatClient, room: str,
                         ids: list[str]) -> None:
    shown = receiver.shown(room)
    assert contiguous(shown), "shown messages skip a seq"
    shown_ids = [m.id for m in shown]
    assert len(shown_ids) == len(set(shown_ids)), "a message was shown twice"
    acked = sender.acked()
    missing = [i for i in ids if i in acked and i not in set(shown_ids)]
    assert not missing, f"{len(missing)} acknowledged messages never shown"
    # every acked message's (epoch, seq) is the one the receiver showed
    by_id = {m.id: m for m in shown}
    for i in ids:
        if i in acked:
            assert (by_id[i].epoch, by_id[i].seq) == (acked[i].epoch, acked[i].seq)


async def _archived(cluster: LocalCluster, room: str, n: int, timeout: float = 20.0) -> int:
    assert cluster.pg is not None
    deadline = time.monotonic() + timeout
    count = 0
    while time.monotonic() < deadline:
        count = int(cluster.pg.query(f"SELECT count(*) FROM messages WHERE room = '{room}'"))
        if count >= n:
            return count
        await anyio.sleep(0.2)
    return count


async def test_backend_sigkill_client_reconnects_elsewhere_and_loses_nothing(
    healed: LocalCluster, measure,  # type: ignore[no-untyped-def]
) -> None:
    cluster = healed
    room = room_name()
    from contextlib import AsyncExitStack

    async with AsyncExitStack() as stack:
        victim = await stack.enter_async_context(chat_client(cluster.url, "victim", name="v"))
        await victim.wait_connected()
        sender = await _on_other_backend(cluster.url, victim, "sender", stack)
        victim.driver.join(room)
        await victim.wait_joined(room)
        sender.driver.join(room)
        await sender.wait_joined(room)
        target = victim.backend
        async with anyio.create_task_group() as tg:
            ids: list[str] = []

            tg.start_soon(_send_loop, sender, room, "m", 4.0, ids)
            await anyio.sleep(1.0)
            before = len(victim.events)
            t_kill = time.monotonic()
            cluster.kill(target)
            # Resumed = reconnected to another backend and showing live messages again.
            await victim.wait_for(lambda: victim.session.connected and victim.backend != target
                                  and any(isinstance(e, ev.MessageShown)
                                          for e in victim.events[before:]), 10, "resume")
            resumed = time.monotonic() - t_kill
        await sender.wait_acked(ids, timeout=20)
        await victim.wait_texts(room, [f"m {i}" for i in range(len(ids))], timeout=20)
        _assert_exactly_once(victim, sender, room, ids)
        measure("backend SIGKILL -> client resumed on another backend", resumed)
        assert resumed < 5.0
        n = victim.shown(room)[-1].seq  # the victim joined first: it saw seq 1..n
        assert await _archived(cluster, room, n) == n


async def test_redis_master_sigkill_during_send_loop(healed: LocalCluster, measure) -> None:  # type: ignore[no-untyped-def]
    cluster = healed
    room = room_name()
    from contextlib import AsyncExitStack

    async with AsyncExitStack() as stack:
        receiver = await stack.enter_async_context(chat_client(cluster.url, "recv", name="r"))
        await receiver.wait_connected()
        sender = await _on_other_backend(cluster.url, receiver, "send", stack)
        receiver.driver.join(room)
        await receiver.wait_joined(room)
        sender.driver.join(room)
        await sender.wait_joined(room)
        master = cluster.redis_master_for_room(room)
        ids: list[str] = []
        async with anyio.create_task_group() as tg:
            tg.start_soon(_send_loop, sender, room, "x", 7.0, ids)
            await anyio.sleep(1.0)
            for node in cluster.redis.nodes:
                if node is not master and node.process.alive():
                    node.command("CONFIG", "RESETSTAT")
            t_kill = time.monotonic()
            cluster.kill(master.name)
            acked_at_kill = set(sender.acked())
            # Sends flow again = the first message sent after the kill is acknowledged.
            first_after = len(ids)
            await sender.wait_for(
                lambda: any(i in sender.acked() for i in ids[first_after:]),
                15, "acks after kill")
            assert not set(ids[first_after:]) & acked_at_kill
            flowing = time.monotonic() - t_kill
        await sender.wait_acked(ids, timeout=30)
        await receiver.wait_texts(room, [f"x {i}" for i in range(len(ids))], timeout=30)
        _assert_exactly_once(receiver, sender, room, ids)
        measure("redis master SIGKILL -> sends acknowledged again", flowing)
        assert flowing < 10.0
        n = receiver.shown(room)[-1].seq
        assert await _archived(cluster, room, n, timeout=30) == n
        promoted = cluster.redis_master_for_room(room)
        assert promoted.name != master.name
        # Its old master is dead, so the promoted one has no replica: a WAIT there would
        # block every publish for its whole timeout. The bus sends none.
        waits = promoted.info("commandstats").get("cmdstat_wait", {})
        assert not waits or waits.get("calls") == 0, waits


async def test_postgres_stopped_chat_continues_then_archive_catches_up(
    healed: LocalCluster,
) -> None:
    cluster = healed
    assert cluster.pg is not None
    room = room_name()
    async with chat_client(cluster.url, "a", name="a") as a, \
            chat_client(cluster.url, "b", name="b") as b:
        a.driver.join(room)
        await a.wait_joined(room)
        b.driver.join(room)
        await b.wait_joined(room)
        cluster.stop_node("postgres")
        ids = [a.say(room, f"while down {i}") for i in range(50)]
        await a.wait_acked(ids)
        await b.wait_texts(room, [f"while down {i}" for i in range(50)])
        # Recent history comes from the stream while the archive is down.
        b.driver.load_history(room)
        await b.wait_for(lambda: any(isinstance(e, ev.HistoryLoaded) for e in b.events), 10)
        n = a.shown(room)[-1].seq
        cluster.start_node("postgres")
        assert await _archived(cluster, room, n, timeout=30) == n
        dup = cluster.pg.query(
            f"SELECT count(*) FROM (SELECT msg_id FROM messages WHERE room = '{room}'"
            " GROUP BY msg_id HAVING count(*) > 1) d")
        assert dup == "0"


async def test_graceful_backend_stop_sends_1012_and_clients_rehome_at_once(
    healed: LocalCluster, measure,  # type: ignore[no-untyped-def]
) -> None:
    cluster = healed
    room = room_name()
    async with chat_client(cluster.url, "c", name="c") as c:
        c.driver.join(room)
        await c.wait_joined(room)
        target = c.backend
        t0 = time.monotonic()
        cluster.stop_node(target)
        await c.wait_for(lambda: c.driver.last_close_code == 1012, 5, "close 1012")
        await c.wait_for(lambda: c.session.connected and c.backend != target, 5, "re-home")
        measure("graceful stop: close 1012 -> welcome from another backend", c.outage_s())
        assert c.outage_s() < 1.0
        del t0
        c.say(room, "after restart")
        await c.wait_texts(room, ["after restart"])


async def test_frozen_backend_is_left_within_the_heartbeat_timeout(
    healed: LocalCluster, measure,  # type: ignore[no-untyped-def]
) -> None:
    cluster = healed
    room = room_name()
    async with chat_client(cluster.url, "f", name="f") as c, \
            chat_client(cluster.url, "g", name="g") as other:
        c.driver.join(room)
        await c.wait_joined(room)
        other.driver.join(room)
        await other.wait_joined(room)
        target = c.backend
        t0 = time.monotonic()
        cluster.freeze(target)
        try:
            await c.wait_for(lambda: c.session.connected and c.backend != target, 10, "re-home")
            took = time.monotonic() - t0
            if other.backend == target:
                await other.wait_for(lambda: other.session.connected
                                     and other.backend != target, 10, "re-home other")
            i = other.say(room, "after the freeze")
            await c.wait_texts(room, ["after the freeze"])
            del i
        finally:
            cluster.thaw(target)
        measure("backend frozen -> client re-homed (dead after 3.5 s of silence)", took)
        assert took < c.session.dead_after_s + 1.5
