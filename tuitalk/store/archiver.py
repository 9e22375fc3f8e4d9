"""Copies committed room events from the Redis streams into PostgreSQL.

Every backend runs one archiver; a per-room lease in Redis normally keeps one archiver per
room, but correctness never depends on it: inserts are idempotent on ``(room, epoch,
seq)``, so a message acknowledged by a backend that died a moment later is archived by
whichever backend holds the lease next. The room's ``arch`` watermark in Redis records
what is in PostgreSQL; streams are never trimmed past it (up to a hard cap), so while
PostgreSQL is down the streams hold everything and the archive catches up when it returns.
"""

from __future__ import annotations

import logging
import time
from collections import deque
from collections.abc import Callable
from typing import Final

import anyio
from anyio.abc import TaskStatus

from tuitalk.bus.cluster import ClusterBus
from tuitalk.errors import BusError, BusUnavailable, StoreError, StoreUnavailable
from tuitalk.store.db import Store

__all__ = ["Archiver"]

log = logging.getLogger("tuitalk.store")

#: Rows per INSERT. 500 keeps one round trip well under PostgreSQL's statement timeout.
BATCH: Final = 500
#: Pending user upserts kept while PostgreSQL is down; beyond it the oldest are dropped
#: (the users table is also filled from archived events, so this only loses token hashes
#: of users who never sent anything).
USER_QUEUE_MAX: Final = 10_000


class Archiver:
    def __init__(
        self,
        bus: ClusterBus,
        store: Store,
        owner: str,
        *,
        interval_s: float = 0.25,
        lease_ms: int = 5000,
        rooms_refresh_s: float = 2.0,
        on_event: Callable[[str, dict[str, object]], None] | None = None,
    ) -> None:
        self.bus = bus
        self.store = store
        self.owner = owner
        self.interval_s = interval_s
        self.lease_ms = lease_ms
        self.rooms_refresh_s = rooms_refresh_s
        self.on_event = on_event or (lambda _e, _f: None)
        self._rooms: set[str] = set()
        self._rooms_at = 0.0
        self._users: deque[tuple[str, str, str]] = deque(maxlen=USER_QUEUE_MAX)
        #: Sum over rooms of committed-but-not-archived messages, as of the last pass.
        self.lag = 0
        self.archived_total = 0
        self.store_up = False

    def queue_user(self, user: str, name: str, token_hash: str) -> None:
        self._users.append((user, name, token_hash))

    def note_room(self, room: str) -> None:
        """A room this backend wrote to: archive it on the next pass."""
        self._rooms.add(room)

    async def run(self, *, task_status: TaskStatus[None] = anyio.TASK_STATUS_IGNORED) -> None:
        task_status.started()
        while True:
            try:
                await self.pass_once()
            except (BusUnavailable, StoreUnavailable) as exc:
                self.on_event("archive_paused", {"error": type(exc).__name__})
            except (BusError, StoreError) as exc:
                log.warning("archive pass failed: %s", exc)
            await anyio.sleep(self.interval_s)

    async def pass_once(self) -> int:
        """Archive every room whose lease we get; return how many messages were new."""
        now = time.monotonic()
        if now - self._rooms_at >= self.rooms_refresh_s:
            self._rooms |= await self.bus.all_rooms()
            self._rooms_at = now
        await self._flush_users()
        new = 0
        lag = 0
        for room in sorted(self._rooms):
            try:
                state = await self.bus.room_state(room)
                if not state.exists or state.commit <= state.arch:
                    continue
                lag += state.commit - state.arch
                if not await self.bus.take_lease(room, self.owner, self.lease_ms):
                    continue
                done = await self._archive_room(room, state.arch, state.commit)
            except BusUnavailable:
                # One shard failing over must not stop archiving the others.
                continue
            new += done
            lag -= done
        self.lag = max(0, lag)
        self.store_up = True
        return new

    async def _archive_room(self, room: str, arch: int, commit: int) -> int:
        after = arch
        new = 0
        while after < commit:
            msgs = await self.bus.read_after(room, after, commit, BATCH)
            if not msgs:
                break
            if msgs[0].seq > after + 1:
                # Trimmed past the watermark: only happens beyond the hard stream cap.
                self.on_event("archive_gap", {"room": room, "from": after + 1,
                                              "to": msgs[0].seq - 1})
            try:
                new += await self.store.archive(msgs)
            except StoreUnavailable:
                self.store_up = False
                raise
            after = msgs[-1].seq
            await self.bus.set_archived(room, after)
        self.archived_total += new
        return new

    async def _flush_users(self) -> None:
        while self._users:
            user, name, th = self._users[0]
            try:
                await self.store.upsert_user(user, name, th)
            except StoreUnavailable:
                self.store_up = False
                raise
            self._users.popleft()
