"""Clients chat through the Docker deployment's nginx while containers are killed
(``container.kill()``): nothing acknowledged is lost, nothing shows twice."""

from __future__ import annotations

import time
from contextlib import AsyncExitStack
from typing import Any

import anyio
import pytest

from chaos.platforms.docker import DockerPlatform
from tests.docker.support import room_name, wait_archived
from tests.helpers import ChatClient, chat_client, contiguous
from tuitalk.client import events as ev

pytestmark = [pytest.mark.anyio, pytest.mark.docker]


async def _on_other_backend(url: str, other: ChatClient, label: str,
                            stack: AsyncExitStack) -> ChatClient:
    """Open clients until one is on a different backend than ``other``."""
    for i in range(4):
        c = await stack.enter_async_context(chat_client(url, f"{label}{i}", name=label))
        await c.wait_connected()
        if c.backend != other.backend:
            return c
    raise AssertionError("least_conn never placed a client on another backend")


async def _talk(client: ChatClient, room: str, prefix: str, duration_s: float,
                ids: list[str], every_s: float = 0.05) -> None:
    """Send a numbered message every ``every_s``; ids are appended as they are sent."""
    end = time.monotonic() + duration_s
    i = 0
    while time.monotonic() < end:
        ids.append(client.say(room, f"{prefix} {i}"))
        i += 1
        await anyio.sleep(every_s)


def _triples(client: ChatClient, room: str) -> list[tuple[str, int, str]]:
    return [(m.epoch, m.seq, m.id) for m in client.shown(room)]


def _assert_exactly_once(receiver: ChatClient, sender: ChatClient, room: str,
                         ids: list[str]) -> None:
    shown = receiver.shown(room)
    assert contiguous(shown), "shown messages skip a seq"
    shown_ids = [m.id for m in shown]
    assert len(shown_ids) == len(set(shown_ids)), "a message was shown twice"
    acked = sender.acked()
    missing = [i for i in ids if i in acked and i not in set(shown_ids)]
    assert not missing, f"{len(missing)} acknowledged messages never shown"
    by_id = {m.id: m for m in shown}
    for i in ids:
        assert (by_id[i].epoch, by_id[i].seq) == (acked[i].epoch, acked[i].seq)


async def test_backend_container_killed_mid_conversation_loses_nothing(
    platform: DockerPlatform, measure: Any,
) -> None:
    """Two people talk in turns; the backend of one of them is killed (SIGKILL to its
    container) in the middle. Both end with exactly the archive's (epoch, seq, id) list."""
    room = room_name()
    async with AsyncExitStack() as stack:
        alice = await stack.enter_async_context(chat_client(platform.url, "alice", name="a"))
        await alice.wait_connected()
        bob = await _on_other_backend(platform.url, alice, "bob", stack)
        for c in (alice, bob):
            c.driver.join(room)
            await c.wait_joined(room)
        said: dict[str, list[str]] = {"alice": [], "bob": []}
        victim = alice.backend
        async with anyio.create_task_group() as tg:
            tg.start_soon(_talk, alice, room, "alice", 4.0, said["alice"])
            tg.start_soon(_talk, bob, room, "bob", 4.0, said["bob"])
            await anyio.sleep(1.5)
            before = len(alice.events)
            t_kill = time.monotonic()
            platform.kill(victim)
            assert not platform.alive(victim)
            await alice.wait_for(
                lambda: alice.session.connected and alice.backend != victim
                and any(isinstance(e, ev.MessageShown) for e in alice.events[before:]),
                10, "alice resumed on another backend")
            resumed = time.monotonic() - t_kill
        await alice.wait_acked(said["alice"], timeout=20)
        await bob.wait_acked(said["bob"], timeout=20)
        texts = [f"{who} {i}" for who, ids in said.items() for i in range(len(ids))]
        for c in (alice, bob):
            await c.wait_texts(room, texts, timeout=20)
        _assert_exactly_once(bob, alice, room, said["alice"])
        _assert_exactly_once(alice, bob, room, said["bob"])
        n = alice.shown(room)[-1].seq  # alice joined first: she saw seq 1..n
        server = wait_archived(platform, room, n)
        assert _triples(alice, room) == server
        assert _triples(bob, room) == server[-len(bob.shown(room)):]
        measure("backend container.kill() -> client resumed on another backend", resumed)
        assert resumed < 5.0
    t_start = time.monotonic()
    platform.start(victim)
    measure("killed backend container started and ready again", time.monotonic() - t_start)


async def test_redis_master_container_killed_acked_messages_delivered_once(
    platform: DockerPlatform, measure: Any,
) -> None:
    """The Redis master of the room's slot is killed while one client sends and another
    listens: sends wait through the failover, then flow; every acknowledged message is
    delivered exactly once; the old master comes back as a replica."""
    room = room_name("r")
    async with AsyncExitStack() as stack:
        receiver = await stack.enter_async_context(chat_client(platform.url, "recv", name="r"))
        await receiver.wait_connected()
        sender = await _on_other_backend(platform.url, receiver, "send", stack)
        for c in (receiver, sender):
            c.driver.join(room)
            await c.wait_joined(room)
        master = platform.redis_master_for_room(room)
        ids: list[str] = []
        async with anyio.create_task_group() as tg:
            tg.start_soon(_talk, sender, room, "x", 7.0, ids, 0.02)
            await anyio.sleep(1.0)
            t_kill = time.monotonic()
            platform.kill(master)
            acked_at_kill = set(sender.acked())
            first_after = len(ids)
            await sender.wait_for(lambda: any(i in sender.acked() for i in ids[first_after:]),
                                  15, "acks after the kill")
            assert not set(ids[first_after:]) & acked_at_kill
            flowing = time.monotonic() - t_kill
        promoted = platform.redis_master_for_room(room)
        await sender.wait_acked(ids, timeout=30)
        await receiver.wait_texts(room, [f"x {i}" for i in range(len(ids))], timeout=30)
        _assert_exactly_once(receiver, sender, room, ids)
        n = receiver.shown(room)[-1].seq
        assert max(s for _, s, _ in wait_archived(platform, room, n)) == n
        measure("redis master container.kill() -> sends acknowledged again", flowing)
        assert flowing < 10.0
        assert promoted != master
    t_start = time.monotonic()
    platform.start(master)  # waits for the takeover, then for a healthy cluster
    measure("killed redis master back (as a replica), cluster healthy", time.monotonic() - t_start)
    assert platform.redis.node(master).role() == "slave"
    assert platform.redis_master_for_room(room) == promoted
