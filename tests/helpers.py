"""A test chat client: the real client core on the asyncio driver, with waiting helpers."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import anyio

from tuitalk.client import events as ev
from tuitalk.client.aio import AsyncDriver
from tuitalk.client.session import ClientSession
from tuitalk.protocol import Msg


class ChatClient:
    def __init__(self, url: str, session: ClientSession, label: str = "") -> None:
        self.label = label
        self.session = session
        self.events: list[ev.Event] = []
        self.stamps: list[float] = []  # monotonic time each event arrived
        self.driver = AsyncDriver(url, session, on_events=self._on_events)
        self._changed = anyio.Event()

    def _on_events(self, events: list[ev.Event]) -> None:
        self.events.extend(events)
        now = time.monotonic()
        self.stamps.extend(now for _ in events)
        self._changed.set()

    # -- views of what was shown ------------------------------------------------------------

    def shown(self, room: str, kinds: tuple[str, ...] | None = None) -> list[Msg]:
        out = [e.msg for e in self.events if isinstance(e, ev.MessageShown) and e.msg.room == room]
        if kinds is not None:
            out = [m for m in out if m.kind in kinds]
        return out

    def texts(self, room: str) -> list[str]:
        return [m.text for m in self.shown(room, ("text", "me"))]

    def acked(self) -> dict[str, ev.Acked]:
        return {e.id: e for e in self.events if isinstance(e, ev.Acked)}

    def outage_s(self) -> float:
        """Length of the last disconnection: from losing the connection to welcome."""
        lost = back = None
        for e, t in zip(self.events, self.stamps, strict=True):
            if isinstance(e, ev.StateChanged) and e.state == "reconnecting" and back is None:
                lost = t if lost is None else lost
            if isinstance(e, ev.StateChanged) and e.state == "connected" and lost is not None:
                back = t
        if lost is None or back is None:
            raise AssertionError(f"{self.label}: no reconnection recorded")
        return back - lost

    @property
    def backend(self) -> str:
        return self.session.backend

    # -- waiting ------------------------------------------------------------------------------

    async def wait_for(self, pred: Callable[[], Any], timeout: float = 10.0, what: str = "") -> Any:
        deadline = time.monotonic() + timeout
        while True:
            value = pred()
            if value:
                return value
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise AssertionError(f"{self.label}: timed out waiting for {what or pred}")
            self._changed = anyio.Event()
            with anyio.move_on_after(min(remaining, 0.1)):
                await self._changed.wait()

    async def wait_connected(self, timeout: float = 10.0) -> None:
        await self.wait_for(lambda: self.session.connected, timeout, "connected")

    async def wait_joined(self, room: str, timeout: float = 10.0) -> None:
        await self.wait_for(
            lambda: room in self.session.rooms and self.session.rooms[room].joined
            and not self.session.rooms[room].held,
            timeout, f"joined {room}",
        )

    async def wait_texts(self, room: str, texts: list[str], timeout: float = 15.0) -> None:
        want = set(texts)
        await self.wait_for(lambda: want <= set(self.texts(room)), timeout,
                            f"{len(want)} texts in {room}")

    async def wait_acked(self, ids: list[str], timeout: float = 20.0) -> None:
        want = set(ids)
        await self.wait_for(lambda: want <= set(self.acked()), timeout, f"{len(want)} acks")

    def say(self, room: str, text: str) -> str:
        return self.driver.say(room, text)


@asynccontextmanager
async def chat_client(
    url: str, label: str = "", session: ClientSession | None = None, **kwargs: Any
) -> AsyncIterator[ChatClient]:
    client = ChatClient(url, session or ClientSession(**kwargs), label)
    async with anyio.create_task_group() as tg:
        tg.start_soon(client.driver.run)
        try:
            yield client
        finally:
            client.driver.stop()
            await client.driver.abort()
            tg.cancel_scope.cancel()


def contiguous(msgs: list[Msg]) -> bool:
    seqs = [m.seq for m in msgs]
    return seqs == list(range(seqs[0], seqs[0] + len(seqs))) if seqs else True
