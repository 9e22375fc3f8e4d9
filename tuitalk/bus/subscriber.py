"""Sharded pub/sub: one connection per Redis master, carrying this backend's room channels.

A backend subscribes to a room's shard channel once, however many of its clients are in
the room. Channels are grouped by the master that owns their slot; each group rides one
connection (a :class:`_Link`). Pub/sub is at-most-once, so the subscriber's job is less to
never miss a message than to *notice* when it may have: every time a channel is
(re)confirmed, :attr:`ShardedSubscriber.on_subscribed` fires and the room feed checks its
position against the stream (gap-fill).

Failure handling, each measured or reported to happen (``reference/realtime.md`` §0, §7):

- connection error (master killed): the link dies, its channels are reported lost, the
  slot map is refreshed and the channels go to the new master;
- unsolicited ``sunsubscribe`` (graceful failover, slot migration): the channel is
  reported lost and re-placed after a map refresh;
- silence (master frozen, or a half-open TCP connection): a link that has heard nothing for
  ``probe_interval_s`` sends PING; no PONG within ``probe_timeout_s`` kills the link;
- a map change noticed elsewhere (a publish got MOVED): the next reconcile moves channels.
"""

from __future__ import annotations

import contextlib
import logging
import random
import time
from collections.abc import Callable
from typing import Any, Final

import anyio
from anyio.abc import TaskGroup, TaskStatus
from redis.asyncio.connection import Connection
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import RedisError

from tuitalk.bus.keys import key_slot
from tuitalk.bus.topology import NodeAddr, Topology
from tuitalk.errors import BusUnavailable

__all__ = ["ShardedSubscriber"]

log = logging.getLogger("tuitalk.bus")

#: Pause after a link dies before the next reconcile, so that a node that refuses
#: connections during a failover is not hammered. Jittered between 0 and this.
_RELINK_BACKOFF_S: Final = 0.2


class _Link:
    """One pub/sub connection to one node, and the channels confirmed on it."""

    def __init__(self, owner: ShardedSubscriber, node: NodeAddr) -> None:
        self.owner = owner
        self.node = node
        self.conn = Connection(
            host=node.host,
            port=node.port,
            decode_responses=True,
            # RESP2: subscribe confirmations and messages arrive as plain replies that
            # read_response returns (under RESP3 they are push frames it swallows).
            protocol=2,
            socket_timeout=owner.probe_timeout_s,
            socket_connect_timeout=owner.connect_timeout_s,
            retry=Retry(NoBackoff(), 0),
        )
        self.confirmed: set[str] = set()
        self.requested: set[str] = set()
        #: SUNSUBSCRIBEs we sent and whose reply has not come yet: their replies are ours,
        #: not a sign that the slot moved (a channel dropped and re-added at once sees
        #: "sunsubscribe" after it is requested again).
        self.unsubscribing: dict[str, int] = {}
        self.dead = False
        self.connected = anyio.Event()
        self._send_lock = anyio.Lock()
        self._cancel = anyio.CancelScope()

    async def run(self) -> None:
        """Connect and read until the link dies or is closed; then report the loss."""
        with self._cancel:
            try:
                await self.conn.connect()  # type: ignore[no-untyped-call]
                self.connected.set()
                await self._read_loop()
            except (RedisError, OSError) as exc:
                self.owner.on_event("sub_link_error", {"node": self.node.name,
                                                       "error": type(exc).__name__})
        self.dead = True
        self.connected.set()
        lost = self.confirmed | self.requested
        self.confirmed.clear()
        self.requested.clear()
        with anyio.CancelScope(shield=True), contextlib.suppress(RedisError, OSError):
            await self.conn.disconnect(nowait=True)
        self.owner._link_died(self, lost)

    def close(self) -> None:
        self._cancel.cancel()

    async def _read_loop(self) -> None:
        owner = self.owner
        ping_sent: float | None = None
        while True:
            msg = await self.conn.read_response(timeout=owner.probe_interval_s)
            now = time.monotonic()
            if msg is None:
                if ping_sent is not None and now - ping_sent > owner.probe_timeout_s:
                    owner.on_event("sub_probe_timeout", {"node": self.node.name})
                    return
                if ping_sent is None:
                    ping_sent = now
                    await self._send("PING")
                continue
            ping_sent = None
            kind = msg[0] if isinstance(msg, list) and msg else None
            if kind == "smessage":
                owner.on_message(str(msg[1]), str(msg[2]))
            elif kind == "ssubscribe":
                ch = str(msg[1])
                if ch in self.requested:
                    self.confirmed.add(ch)
                    owner.on_subscribed(ch)
            elif kind == "sunsubscribe":
                ch = str(msg[1])
                if self.unsubscribing.get(ch):
                    self.unsubscribing[ch] -= 1
                    if not self.unsubscribing[ch]:
                        del self.unsubscribing[ch]
                    continue
                was = ch in self.confirmed
                self.confirmed.discard(ch)
                if ch in self.requested:
                    # We did not ask for this: the slot moved (failover or migration).
                    self.requested.discard(ch)
                    owner.on_event("sub_unsolicited_sunsubscribe",
                                   {"node": self.node.name, "channel": ch})
                    if was:
                        owner.on_lost(ch)
                    owner.request_refresh()
            elif kind == "pong" or msg == "PONG":
                pass

    async def _send(self, *args: Any) -> None:
        async with self._send_lock:
            await self.conn.send_command(*args)

    async def want(self, channels: set[str]) -> None:
        """Subscribe to what is new in ``channels`` and unsubscribe from what is gone."""
        await self.connected.wait()
        if self.dead:
            return
        add = channels - self.requested
        drop = self.requested - channels
        # One channel per command: SSUBSCRIBE requires all its channels in one slot.
        for ch in sorted(add):
            self.requested.add(ch)
            await self._send("SSUBSCRIBE", ch)
        for ch in sorted(drop):
            self.requested.discard(ch)
            self.confirmed.discard(ch)
            self.unsubscribing[ch] = self.unsubscribing.get(ch, 0) + 1
            await self._send("SUNSUBSCRIBE", ch)


class ShardedSubscriber:
    """Keeps this backend subscribed to the shard channels in :meth:`add`.

    Callbacks run in the subscriber's tasks and must not block:

    - ``on_message(channel, payload)`` for every message,
    - ``on_subscribed(channel)`` each time a channel is confirmed (first time and after
      every re-subscription): the caller must then check for missed messages,
    - ``on_lost(channel)`` when a confirmed subscription ended without our asking.
    """

    def __init__(
        self,
        topology: Topology,
        *,
        on_message: Callable[[str, str], None],
        on_subscribed: Callable[[str], None],
        on_lost: Callable[[str], None],
        probe_interval_s: float = 1.0,
        probe_timeout_s: float = 1.0,
        connect_timeout_s: float = 0.5,
        check_interval_s: float = 2.0,
    ) -> None:
        self.topology = topology
        self.on_message = on_message
        self.on_subscribed = on_subscribed
        self.on_lost = on_lost
        self.on_event: Callable[[str, dict[str, Any]], None] = lambda _e, _f: None
        self.probe_interval_s = probe_interval_s
        self.probe_timeout_s = probe_timeout_s
        self.connect_timeout_s = connect_timeout_s
        self.check_interval_s = check_interval_s
        self._desired: set[str] = set()
        self._links: dict[NodeAddr, _Link] = {}
        self._wake = anyio.Event()
        self._refresh_wanted = False
        self._tg: TaskGroup | None = None
        self.relinks = 0

    # -- API ---------------------------------------------------------------------------------

    def add(self, channel: str) -> None:
        if channel not in self._desired:
            self._desired.add(channel)
            self._wake.set()

    def remove(self, channel: str) -> None:
        if channel in self._desired:
            self._desired.discard(channel)
            self._wake.set()

    def request_refresh(self) -> None:
        self._refresh_wanted = True
        self._wake.set()

    def confirmed(self, channel: str) -> bool:
        return any(channel in link.confirmed for link in self._links.values())

    def links(self) -> dict[str, int]:
        """Node name -> number of confirmed channels (for /metrics and tests)."""
        return {n.name: len(link.confirmed) for n, link in self._links.items()}

    async def run(self, *, task_status: TaskStatus[None] = anyio.TASK_STATUS_IGNORED) -> None:
        async with anyio.create_task_group() as tg:
            self._tg = tg
            task_status.started()
            try:
                await self._reconcile_loop()
            finally:
                for link in list(self._links.values()):
                    link.close()

    # -- internals ---------------------------------------------------------------------------

    def _link_died(self, link: _Link, lost: set[str]) -> None:
        if self._links.get(link.node) is link:
            del self._links[link.node]
        for ch in lost:
            if ch in self._desired:
                self.on_lost(ch)
        self.relinks += 1
        self._refresh_wanted = True
        self._wake.set()

    async def _reconcile_loop(self) -> None:
        last_check = time.monotonic()
        failures = 0
        while True:
            with anyio.move_on_after(self.check_interval_s):
                await self._wake.wait()
            self._wake = anyio.Event()
            now = time.monotonic()
            periodic = now - last_check >= self.check_interval_s
            if self._refresh_wanted or periodic:
                self._refresh_wanted = False
                last_check = now
                try:
                    await self.topology.refresh()
                except BusUnavailable:
                    failures += 1
                    await anyio.sleep(random.uniform(0, _RELINK_BACKOFF_S * min(failures, 5)))
                    self._refresh_wanted = True
                    self._wake.set()
                    continue
            failures = 0
            await self._reconcile()

    async def _reconcile(self) -> None:
        plan: dict[NodeAddr, set[str]] = {}
        for ch in self._desired:
            try:
                node = self.topology.master_for_slot(key_slot(ch))
            except BusUnavailable:
                self._refresh_wanted = True
                continue
            plan.setdefault(node, set()).add(ch)
        # Links to nodes that no longer own any of our channels: close them (their channels,
        # if still desired, are in another link's plan and will be confirmed there).
        for node, link in list(self._links.items()):
            if node not in plan:
                moved = link.confirmed & self._desired
                del self._links[node]
                link.close()
                for ch in moved:
                    self.on_lost(ch)
        assert self._tg is not None
        for node, chans in plan.items():
            existing = self._links.get(node)
            if existing is None or existing.dead:
                link = _Link(self, node)
                self._links[node] = link
                self._tg.start_soon(link.run)
            else:
                link = existing
            # A channel confirmed on one link but planned on another moved: report it.
            for other in self._links.values():
                if other is not link:
                    for ch in chans & other.confirmed:
                        other.confirmed.discard(ch)
                        other.requested.discard(ch)
                        self.on_lost(ch)
            try:
                with anyio.fail_after(self.connect_timeout_s + self.probe_timeout_s):
                    await link.want(chans)
            except (TimeoutError, RedisError, OSError):
                link.close()
