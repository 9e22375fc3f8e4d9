"""The Redis Cluster bus: sequencing, reading and small state, with failover handling.

Every room operation runs on the master that owns the room's slot, as one pipeline on one
connection (:meth:`ClusterBus.on_slot`). Errors that a failover causes (connection lost,
timeout, MOVED, CLUSTERDOWN, READONLY, TRYAGAIN) refresh the slot map and retry until the
operation's deadline; then :class:`~tuitalk.errors.BusUnavailable` says "try later".

Publishing (the heart of the delivery contract)::

    EVALSHA publish.lua  --+  one pipeline, one connection: WAIT covers the script's writes
    WAIT 1 <wait_ms>     --+
    EVALSHA commit.lua       fan out everything up to the replicated seq, in order

A message is committed (fanned out, archived, readable) only once a replica holds it, or
once the shard has no replica at all and another node confirms the master still owns the
slot ("degraded": the ack says ``replicas=0``). A WAIT that times out while the master
believes it has a replica means a partition or a frozen peer: the write stays uncommitted,
the caller retries (the dedup key makes that safe) and the client keeps it in its outbox.
"""

from __future__ import annotations

import contextlib
import logging
import random
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from importlib import resources
from typing import Any, Final

import anyio
from redis.exceptions import (
    AskError,
    ClusterDownError,
    MovedError,
    NoScriptError,
    ReadOnlyError,
    RedisError,
    ResponseError,
    TryAgainError,
)

from tuitalk.bus.entries import Epochs, RoomState, decode_stream_entry
from tuitalk.bus.keys import ROOMS_KEY, RoomKeys, UserKeys, key_slot
from tuitalk.bus.topology import NodeAddr, Topology
from tuitalk.errors import BusError, BusUnavailable
from tuitalk.protocol import Msg

__all__ = ["BusConfig", "ClusterBus", "PublishResult"]

log = logging.getLogger("tuitalk.bus")

_REDIRECTS: Final = (MovedError, AskError, ClusterDownError, TryAgainError, ReadOnlyError)
#: A command pending this long may be stuck on a frozen node: start watching the slot map.
WATCH_AFTER_S: Final = 0.15
WATCH_EVERY_S: Final = 0.15


@dataclass(frozen=True, slots=True)
class BusConfig:
    seeds: tuple[NodeAddr, ...]
    #: How long WAIT may block for a replica. Healthy replication acks in ~0.3 ms here
    #: (spikes.md §2); 250 ms rides out a busy replica without stalling a room for long.
    wait_replica_ms: int = 250
    #: Deadline of one publish, all retries included. Past it the client is told
    #: ``unavailable`` and its outbox resends later. A failover here takes 2-3 s.
    publish_timeout_s: float = 8.0
    read_timeout_s: float = 5.0
    socket_timeout_s: float = 1.0
    connect_timeout_s: float = 0.5
    #: Recent events kept per room stream; older history comes from PostgreSQL.
    stream_soft_max: int = 10_000
    #: Stream length past which unarchived events are trimmed anyway (PostgreSQL down for
    #: very long); bounds Redis memory at the cost of archive completeness.
    stream_hard_max: int = 200_000
    dedup_ttl_s: int = 86_400
    #: Reported node address -> address to connect to (fault proxies in chaos runs).
    address_map: tuple[tuple[NodeAddr, NodeAddr], ...] = ()


@dataclass(frozen=True, slots=True)
class PublishResult:
    status: str  # "ok" | "dup" | "noop" | "not_member"
    epoch: str
    seq: int
    replicas: int
    ts: int


def _load_script(name: str) -> str:
    return resources.files("tuitalk.bus").joinpath("lua", name).read_text()


class _Script:
    def __init__(self, name: str) -> None:
        import hashlib

        self.name = name
        self.source = _load_script(name)
        self.sha = hashlib.sha1(self.source.encode()).hexdigest()

    def call(self, keys: Sequence[str], args: Sequence[Any]) -> tuple[Any, ...]:
        return ("EVALSHA", self.sha, len(keys), *keys, *args)


class ClusterBus:
    """Room sequencing and reads on a Redis Cluster. See the module docstring."""

    def __init__(self, config: BusConfig, topology: Topology | None = None) -> None:
        self.config = config
        self.topology = topology or Topology(
            config.seeds,
            socket_timeout_s=config.socket_timeout_s,
            connect_timeout_s=config.connect_timeout_s,
            address_map=dict(config.address_map),
        )
        self._publish = _Script("publish.lua")
        self._commit = _Script("commit.lua")
        self._archived = _Script("archived.lua")
        self._lease = _Script("lease.lua")
        self._scripts = (self._publish, self._commit, self._archived, self._lease)
        #: Per master: did its last publish report connected replicas? Decides whether
        #: the pipeline carries a WAIT (a WAIT with no replica blocks for its full timeout).
        self._has_replicas: dict[NodeAddr, bool] = {}
        #: Called with (event, fields) for every notable bus event; metrics hook in here.
        self.on_event: Callable[[str, dict[str, Any]], None] = lambda _e, _f: None

    async def start(self) -> None:
        """Load the slot map. Retries until the cluster answers or the read timeout passes."""
        deadline = time.monotonic() + self.config.read_timeout_s
        while True:
            try:
                await self.topology.refresh(force=True)
                return
            except BusUnavailable:
                if time.monotonic() > deadline:
                    raise
                await anyio.sleep(0.2)

    async def aclose(self) -> None:
        await self.topology.aclose()

    # -- pinned pipelines with failover handling -----------------------------------------

    async def _run(self, node: NodeAddr, commands: Sequence[tuple[Any, ...]]) -> list[Any]:
        client = self.topology.client(node)
        async with client.pipeline(transaction=False) as pipe:
            for cmd in commands:
                pipe.execute_command(*cmd)
            results: list[Any] = await pipe.execute(raise_on_error=False)
        return results

    async def _run_watched(
        self, slot: int, node: NodeAddr, commands: Sequence[tuple[Any, ...]]
    ) -> list[Any]:
        """Run ``commands`` on ``node``, but give up as soon as ``slot`` moves elsewhere.

        A frozen master accepts connections but answers nothing, so a command would wait
        for the whole socket timeout even after its replica took over. While a command is
        pending past :data:`WATCH_AFTER_S`, the slot map is re-read every
        :data:`WATCH_EVERY_S`; if the slot has a new master, the command is abandoned
        (its outcome is unknown, which the callers' dedup keys make safe to retry).
        """
        results: list[Any] | None = None
        try:
            async with anyio.create_task_group() as tg:

                async def watch() -> None:
                    await anyio.sleep(WATCH_AFTER_S)
                    while True:
                        with contextlib.suppress(BusUnavailable):
                            await self.topology.refresh(failed=node)
                        if self._node_hint(slot) not in (node, None):
                            tg.cancel_scope.cancel()
                            return
                        await anyio.sleep(WATCH_EVERY_S)

                tg.start_soon(watch)
                results = await self._run(node, commands)
                tg.cancel_scope.cancel()
        except BaseExceptionGroup as group:
            # Only the command can fail (the watcher swallows its errors): unwrap it so
            # that callers see the plain Redis error they classify.
            if len(group.exceptions) == 1 and isinstance(group.exceptions[0], Exception):
                raise group.exceptions[0] from None
            raise
        if results is None:
            self.on_event("bus_abandoned", {"slot": slot, "node": node.name})
            raise BusUnavailable(f"slot {slot} moved away from {node.name} mid-command")
        return results

    async def _load_scripts(self, node: NodeAddr) -> None:
        client = self.topology.client(node)
        for s in self._scripts:
            await client.execute_command("SCRIPT", "LOAD", s.source)  # type: ignore[no-untyped-call]

    async def on_slot(
        self,
        slot: int,
        commands: Sequence[tuple[Any, ...]] | Callable[[NodeAddr], Sequence[tuple[Any, ...]]],
        *,
        timeout_s: float,
    ) -> tuple[NodeAddr, list[Any]]:
        """Run ``commands`` as one pipeline on the master of ``slot``; return node, results.

        ``commands`` may be a function of the node that will run them (called again for
        each attempt): what to send can depend on which master the slot has by then.
        Retries across failovers until ``timeout_s`` has passed, then raises
        BusUnavailable. Results that are plain command errors (not redirections) are
        returned as exception objects for the caller to judge.
        """
        started = time.monotonic()
        deadline = started + timeout_s
        attempt = 0
        node: NodeAddr | None = None
        while True:
            try:
                node = None
                node = self.topology.master_for_slot(slot)
                cmds = commands(node) if callable(commands) else commands
                results = await self._run_watched(slot, node, cmds)
                if any(isinstance(r, NoScriptError) for r in results):
                    # A promoted replica has an empty script cache.
                    await self._load_scripts(node)
                    results = await self._run_watched(slot, node, cmds)
                for r in results:
                    if isinstance(r, _REDIRECTS):
                        raise r
                if attempt:
                    self.on_event("bus_recovered", {
                        "slot": slot, "node": node.name, "attempts": attempt,
                        "waited_s": round(time.monotonic() - started, 3)})
                return node, results
            except (RedisError, OSError, BusUnavailable) as exc:
                if isinstance(exc, ResponseError) and not isinstance(exc, _REDIRECTS):
                    raise BusError(f"redis refused a command: {exc}") from exc
                if time.monotonic() >= deadline:
                    raise BusUnavailable(f"slot {slot}: {type(exc).__name__}: {exc}") from exc
                self.on_event("bus_retry", {"slot": slot, "error": type(exc).__name__})
                # Full jitter, 25 ms doubling to 200 ms: a failover takes ~2-3 s here and
                # writes should resume within a few tens of ms of the promotion.
                await anyio.sleep(random.uniform(0, min(0.2, 0.025 * 2**attempt)))
                attempt += 1
                with contextlib.suppress(BusUnavailable):
                    await self.topology.refresh(failed=node)

    async def on_key(self, key: str, *cmd: Any, timeout_s: float | None = None) -> Any:
        """Run one command on the master owning ``key``; raise a returned error."""
        _, (result,) = await self.on_slot(
            key_slot(key), [cmd], timeout_s=timeout_s or self.config.read_timeout_s
        )
        if isinstance(result, Exception):
            raise BusError(f"redis refused {cmd[0]}: {result}") from result
        return result

    # -- publishing ------------------------------------------------------------------------

    async def publish(
        self,
        room: str,
        *,
        user: str,
        msg_id: str,
        name: str,
        kind: str,
        text: str,
        floor: Callable[[], Awaitable[int]] | None = None,
    ) -> PublishResult:
        """Sequence one event in ``room`` and return once it is committed.

        Idempotent per ``(user, msg_id)``: a repeat returns the original epoch/seq with
        status ``dup``. Status ``noop`` is a join of a member, ``not_member`` a say or leave
        of a non-member (nothing was written). ``floor`` supplies the seq to continue from
        when the room has no meta (new room, or its shard lost its data).

        Raises BusUnavailable when no commit happened before the publish deadline.
        """
        keys = RoomKeys(room)
        cfg = self.config
        deadline = time.monotonic() + cfg.publish_timeout_s
        floor_seq = -1
        wrote = False  # a round of this call wrote the event (later rounds see "dup")
        script_keys = (keys.meta, keys.stream, keys.members, keys.dedup(user, msg_id),
                       keys.joins)
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise BusUnavailable(f"room {room}: publish not replicated in time")
            args = (user, msg_id, name, kind, text, floor_seq,
                    cfg.stream_soft_max, cfg.stream_hard_max, cfg.dedup_ttl_s)
            call = self._publish.call(script_keys, args)

            def build(node: NodeAddr, call: tuple[Any, ...] = call) -> list[tuple[Any, ...]]:
                # Decided per attempt, for the master that runs it: during a failover the
                # first attempt may aim at the old master and a retry at the promoted one.
                # Unknown node (first write, or just promoted): no WAIT in this round; if
                # the script reports replicas, the dedup round that follows carries the
                # WAIT. A WAIT on a master without replicas blocks for its whole timeout.
                if self._has_replicas.get(node, False):
                    return [call, ("WAIT", 1, cfg.wait_replica_ms)]
                return [call]

            node, results = await self.on_slot(keys.slot, build, timeout_s=remaining)
            with_wait = len(results) > 1
            res = results[0]
            if isinstance(res, Exception):
                raise BusError(f"publish script failed: {res}") from res
            status, epoch, seq = str(res[0]), str(res[1]), int(res[2])
            nrep, ts = int(res[3]), int(res[4])
            if status == "no_meta":
                floor_seq = max(0, await floor()) if floor is not None else 0
                continue
            if status == "not_member":
                return PublishResult(status, epoch, seq, 0, ts)
            if status == "ok":
                wrote = True
            elif status == "dup" and wrote:
                status = "ok"
            if self._has_replicas.get(node) != (nrep > 0):
                self.on_event("replicas_changed", {"node": node.name, "replicas": nrep})
            self._has_replicas[node] = nrep > 0
            if status == "noop":
                return PublishResult(status, epoch, seq, nrep, ts)
            if nrep > 0:
                if not with_wait:
                    # A replica came back since our hint said none: run again (the dedup
                    # path rewrites, so the WAIT of the next round covers this write).
                    continue
                acked = results[1]
                replicas = int(acked) if not isinstance(acked, Exception) else 0
                if replicas == 0:
                    # The master thinks it has a replica but none confirmed: a partition or
                    # a frozen peer. Do not commit; retry (the dedup path) until deadline.
                    self.on_event("wait_timeout", {"room": room, "node": node.name})
                    await anyio.sleep(0.05)
                    continue
            else:
                replicas = 0
                if not await self._confirm_owner(keys, node):
                    self.on_event("degraded_unconfirmed", {"room": room, "node": node.name,
                                                           "t": round(time.time(), 3)})
                    await anyio.sleep(0.1)
                    with contextlib.suppress(BusUnavailable):
                        await self.topology.refresh()
                    continue
                self.on_event("degraded_commit", {"room": room, "node": node.name,
                                                  "log": False})
            await self._commit_upto(keys, seq, node, deadline)
            return PublishResult(status, epoch, seq, replicas, ts)

    def _node_hint(self, slot: int) -> NodeAddr | None:
        try:
            return self.topology.master_for_slot(slot)
        except BusUnavailable:
            return None

    async def _commit_upto(
        self, keys: RoomKeys, seq: int, node: NodeAddr, deadline: float
    ) -> None:
        cmd = self._commit.call((keys.meta, keys.stream, keys.channel), (seq,))
        remaining = max(0.1, deadline - time.monotonic())
        committed_on, (res,) = await self.on_slot(keys.slot, [cmd], timeout_s=remaining)
        if isinstance(res, Exception):
            raise BusError(f"commit script failed: {res}") from res
        if committed_on != node:
            # The slot moved between the write and the commit. The write was replicated
            # (or confirmed), so the new master holds it and committed it just now.
            self.on_event("commit_moved", {"room": keys.room, "from": node.name,
                                           "to": committed_on.name})

    async def _confirm_owner(self, keys: RoomKeys, node: NodeAddr) -> bool:
        """Ask another node whether ``node`` still owns the room's slot.

        Used before committing a write no replica confirmed: a master that was frozen past
        a failover may not yet know it was replaced. Another node answers a keyed command
        for the slot with MOVED to the owner it knows.
        """
        others = [n for n in self.topology.known_nodes() if n != node]
        random.shuffle(others)
        for other in others[:3]:
            answered = False
            try:
                with anyio.move_on_after(0.3):  # a frozen node must not stall the commit
                    await self.topology.client(other).execute_command(  # type: ignore[no-untyped-call]
                        "EXISTS", keys.meta
                    )
                    answered = True
            except MovedError as moved:
                owner = NodeAddr(str(moved.host), int(moved.port))
                return self.topology.address_map.get(owner, owner) == node
            except (RedisError, OSError):
                continue
            if answered:
                return False  # it served the key itself: it owns the slot, not `node`
        # No other node known or reachable: a single-master cluster has nobody to ask,
        # anything else is a partition, where committing unconfirmed writes is unsafe.
        return not others

    # -- reads ------------------------------------------------------------------------------

    async def room_state(self, room: str) -> RoomState:
        keys = RoomKeys(room)
        raw = await self.on_key(keys.meta, "HMGET", keys.meta, "epoch", "seq", "commit",
                                "arch", "epochs")
        epoch, seq, commit, arch, epochs = raw
        if epoch is None:
            return RoomState(False, "", 0, 0, 0, Epochs(()))
        return RoomState(
            True, str(epoch), int(seq or 0), int(commit or 0), int(arch or 0),
            Epochs.parse(epochs),
        )

    async def members(self, room: str) -> dict[str, str]:
        keys = RoomKeys(room)
        raw = await self.on_key(keys.members, "HGETALL", keys.members)
        return dict(raw or {})

    async def join_point(self, room: str, user: str) -> tuple[str, int] | None:
        """``(epoch, seq)`` of the user's join event in ``room``, if a member."""
        keys = RoomKeys(room)
        raw = await self.on_key(keys.joins, "HGET", keys.joins, user)
        if not raw:
            return None
        epoch, _, seq = str(raw).rpartition(":")
        return (epoch, int(seq)) if seq.isdigit() else None

    async def is_member(self, room: str, user: str) -> bool:
        keys = RoomKeys(room)
        return bool(await self.on_key(keys.members, "HEXISTS", keys.members, user))

    async def read_after(self, room: str, after: int, upto: int, count: int) -> list[Msg]:
        """Committed events with ``after < seq <= upto``, oldest first, at most ``count``."""
        if upto <= after:
            return []
        keys = RoomKeys(room)
        raw = await self.on_key(keys.stream, "XRANGE", keys.stream, after + 1, upto,
                                "COUNT", count)
        return [decode_stream_entry(room, e) for e in raw or []]

    async def read_before(self, room: str, before: int | None, upto: int, limit: int) -> list[Msg]:
        """Up to ``limit`` committed events with ``seq < before``, oldest first."""
        keys = RoomKeys(room)
        top = upto if before is None else min(upto, before - 1)
        if top < 1:
            return []
        raw = await self.on_key(keys.stream, "XREVRANGE", keys.stream, top, "-",
                                "COUNT", limit)
        return [decode_stream_entry(room, e) for e in reversed(raw or [])]

    async def first_seq(self, room: str) -> int | None:
        """Seq of the oldest event still in the stream, or None if the stream is empty."""
        keys = RoomKeys(room)
        raw = await self.on_key(keys.stream, "XRANGE", keys.stream, "-", "+", "COUNT", 1)
        if not raw:
            return None
        return decode_stream_entry(room, raw[0]).seq

    async def set_archived(self, room: str, seq: int) -> int:
        keys = RoomKeys(room)
        return int(await self.on_key(keys.meta, *self._archived.call((keys.meta,), (seq,))))

    async def take_lease(self, room: str, owner: str, ttl_ms: int) -> bool:
        """Take or renew the archiver lease of ``room`` for ``owner``."""
        keys = RoomKeys(room)
        call = self._lease.call((keys.lease,), (owner, ttl_ms))
        return bool(await self.on_key(keys.lease, *call))

    # -- rooms registry and users --------------------------------------------------------------

    async def register_room(self, room: str) -> None:
        await self.on_key(ROOMS_KEY, "SADD", ROOMS_KEY, room)

    async def all_rooms(self) -> set[str]:
        return set(await self.on_key(ROOMS_KEY, "SMEMBERS", ROOMS_KEY) or ())

    async def get_user(self, user: str) -> dict[str, str]:
        k = UserKeys(user)
        return dict(await self.on_key(k.profile, "HGETALL", k.profile) or {})

    async def put_user(self, user: str, **fields: str | int) -> None:
        k = UserKeys(user)
        flat: list[Any] = []
        for f, v in fields.items():
            flat += [f, v]
        await self.on_key(k.profile, "HSET", k.profile, *flat)

    async def user_rooms(self, user: str) -> set[str]:
        k = UserKeys(user)
        return set(await self.on_key(k.rooms, "SMEMBERS", k.rooms) or ())

    async def add_user_room(self, user: str, room: str) -> None:
        k = UserKeys(user)
        await self.on_key(k.rooms, "SADD", k.rooms, room)

    async def remove_user_room(self, user: str, room: str) -> None:
        k = UserKeys(user)
        await self.on_key(k.rooms, "SREM", k.rooms, room)
