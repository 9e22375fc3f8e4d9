"""Drives the room feeds of one backend from the sharded subscriber (the I/O adapter).

One :class:`~tuitalk.server.feeds.RoomFeed` per room with local members, one shard
subscription per feed. Each committed message is encoded once and handed to every local
connection in the room, which decides (per its
:class:`~tuitalk.server.delivery.RoomDelivery`) whether to send it.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable
from typing import Any, Protocol

import anyio
from anyio.abc import TaskGroup, TaskStatus

from tuitalk.bus.cluster import ClusterBus
from tuitalk.bus.entries import Epochs, decode_live
from tuitalk.bus.keys import RoomKeys
from tuitalk.bus.subscriber import ShardedSubscriber
from tuitalk.errors import BusUnavailable, StoreError
from tuitalk.logs import log_event
from tuitalk.protocol import Msg, encode
from tuitalk.server.feeds import RoomFeed, Step
from tuitalk.server.history import read_range
from tuitalk.server.metrics import Metrics
from tuitalk.store.db import Store

__all__ = ["FeedHub", "Subscriber"]

log = logging.getLogger("tuitalk.server")

#: Largest fill read in one go; a longer gap is filled in several reads.
FILL_BATCH = 500


class Subscriber(Protocol):
    """What the hub needs from a local connection."""

    def deliver(self, room: str, msg: Msg, text: str, epochs: Epochs) -> None: ...


class FeedHub:
    def __init__(
        self,
        bus: ClusterBus,
        store: Store | None,
        metrics: Metrics,
        *,
        position_check_s: float = 2.0,
        probe_interval_s: float = 1.0,
        probe_timeout_s: float = 1.0,
    ) -> None:
        self.bus = bus
        self.store = store
        self.metrics = metrics
        self.position_check_s = position_check_s
        self.feeds: dict[str, RoomFeed] = {}
        self.members: dict[str, set[Subscriber]] = {}
        self._ready: dict[str, anyio.Event] = {}
        self._busy: set[str] = set()
        self._again: set[str] = set()
        self._fills: dict[str, tuple[int, int]] = {}
        self._tg: TaskGroup | None = None
        self.subscriber = ShardedSubscriber(
            bus.topology,
            on_message=self._on_message,
            on_subscribed=self._on_subscribed,
            on_lost=self._on_lost,
            probe_interval_s=probe_interval_s,
            probe_timeout_s=probe_timeout_s,
            connect_timeout_s=bus.config.connect_timeout_s,
        )
        self.subscriber.on_event = self._sub_event
        #: Called for each emitted message (tests and load probes hook here).
        self.on_emit: Callable[[Msg], None] = lambda _m: None

    async def run(self, *, task_status: TaskStatus[None] = anyio.TASK_STATUS_IGNORED) -> None:
        async with anyio.create_task_group() as tg:
            self._tg = tg
            await tg.start(self.subscriber.run)
            tg.start_soon(self._position_loop)
            task_status.started()

    # -- membership of local connections ---------------------------------------------------

    async def attach(self, room: str, sub: Subscriber, timeout_s: float = 10.0) -> RoomFeed:
        """Add ``sub`` to ``room``'s local members; return the feed once it is ready.

        Raises BusUnavailable if the subscription is not confirmed in ``timeout_s``.
        """
        self.members.setdefault(room, set()).add(sub)
        feed = self.feeds.get(room)
        if feed is None:
            feed = RoomFeed(room)
            self.feeds[room] = feed
            self._ready[room] = anyio.Event()
            self.subscriber.add(RoomKeys(room).channel)
            self.metrics.feeds.set(len(self.feeds))
        if not feed.ready:
            with anyio.move_on_after(timeout_s):
                await self._ready[room].wait()
            if not feed.ready:
                self.detach(room, sub)
                raise BusUnavailable(f"room {room}: subscription not confirmed")
        return feed

    def detach(self, room: str, sub: Subscriber) -> None:
        subs = self.members.get(room)
        if subs is None:
            return
        subs.discard(sub)
        if not subs:
            del self.members[room]
            self.feeds.pop(room, None)
            self._ready.pop(room, None)
            self.subscriber.remove(RoomKeys(room).channel)
            self.metrics.feeds.set(len(self.feeds))

    def feed(self, room: str) -> RoomFeed | None:
        return self.feeds.get(room)

    # -- subscriber callbacks (synchronous, must not block) ---------------------------------

    def _on_message(self, channel: str, payload: str) -> None:
        room = _room_of(channel)
        feed = self.feeds.get(room) if room else None
        if feed is None or room is None:
            return
        try:
            msg = decode_live(room, payload)
        except (ValueError, KeyError, TypeError):
            log_event("bad_live_payload", room=room)
            return
        self._apply(feed, feed.on_live(msg))

    def _on_subscribed(self, channel: str) -> None:
        room = _room_of(channel)
        if room and room in self.feeds:
            self._schedule_check(room)

    def _on_lost(self, channel: str) -> None:
        room = _room_of(channel)
        if room and room in self.feeds:
            self.metrics.rehomes.inc()
            log_event("subscription_lost", room=room)

    def _sub_event(self, event: str, fields: dict[str, Any]) -> None:
        log_event(event, **fields)

    # -- feed steps ---------------------------------------------------------------------------

    def _apply(self, feed: RoomFeed, step: Step) -> None:
        for msg in step.emit:
            self._fanout(feed, msg)
        if step.fill is not None:
            self.metrics.gap_fills.inc()
            log_event("gap_fill", room=feed.room, after=step.fill[0], upto=step.fill[1])
            self._fills[feed.room] = step.fill
            self._schedule_check(feed.room)
        if step.refresh:
            self._schedule_check(feed.room)
        if feed.ready:
            ev = self._ready.get(feed.room)
            if ev is not None and not ev.is_set():
                ev.set()

    def _fanout(self, feed: RoomFeed, msg: Msg) -> None:
        text = encode(msg)  # once per message per backend, not per connection
        self.metrics.fanout_latency.observe(max(0.0, time.time() - msg.ts / 1000))
        self.on_emit(msg)
        for sub in list(self.members.get(feed.room, ())):
            sub.deliver(feed.room, msg, text, feed.epochs)

    def _schedule_check(self, room: str) -> None:
        """Run one check/fill job for ``room`` (single-flight per room)."""
        if room in self._busy:
            self._again.add(room)
            return
        if self._tg is None:
            return
        self._busy.add(room)
        self._tg.start_soon(self._job, room)

    async def _job(self, room: str) -> None:
        attempt = 0
        try:
            while room in self.feeds:
                feed = self.feeds[room]
                self._again.discard(room)
                fill = self._fills.pop(room, None)
                try:
                    if fill is not None:
                        msgs = await read_range(self.bus, self.store, room, fill[0], fill[1],
                                                FILL_BATCH)
                        self._apply(feed, feed.on_filled(msgs))
                    else:
                        state = await self.bus.room_state(room)
                        self._apply(feed, feed.on_position(state))
                except (BusUnavailable, StoreError) as exc:
                    feed.on_fill_failed()
                    log_event("feed_check_failed", room=room, error=type(exc).__name__)
                    attempt += 1
                    await anyio.sleep(random.uniform(0, min(1.0, 0.05 * 2**attempt)))
                    self._again.add(room)
                if room not in self._again and room not in self._fills:
                    break
        finally:
            self._busy.discard(room)

    async def _position_loop(self) -> None:
        """Catch messages whose live copy was lost while the subscription looked fine."""
        while True:
            await anyio.sleep(self.position_check_s)
            for room in list(self.feeds):
                self._schedule_check(room)


def _room_of(channel: str) -> str | None:
    # "{r:<room>}:c"
    if channel.startswith("{r:") and channel.endswith("}:c"):
        return channel[3:-3]
    return None
