"""Which Redis master owns which slot, and one connection pool per node.

We keep our own slot map instead of relying on ``redis.asyncio.RedisCluster``'s, because
the delivery contract needs control over *when* the map is refreshed and over which
connection a command runs on (``WAIT`` only covers writes made on the same connection).
Measured on this machine (``reference/spikes.md`` §2): a sharded subscriber whose client
never refreshes its map stays deaf after a failover, so every error path here refreshes.

Refreshes are single-flight and rate-limited: many callers failing at once during a
failover share one ``CLUSTER SLOTS`` round trip.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Final

import anyio
from redis.asyncio import Redis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import RedisError

from tuitalk.bus.keys import SLOTS
from tuitalk.errors import BusUnavailable

__all__ = ["NodeAddr", "Topology"]

log = logging.getLogger("tuitalk.bus")

#: Shortest interval between two slot map refreshes. During a failover every publish and
#: every subscriber fails at once; without a floor they would hammer the survivors.
MIN_REFRESH_INTERVAL_S: Final = 0.1
#: How long one node may take to answer CLUSTER SLOTS before we ask the next.
SLOTS_TIMEOUT_S: Final = 0.3


@dataclass(frozen=True, slots=True, order=True)
class NodeAddr:
    host: str
    port: int

    @property
    def name(self) -> str:
        return f"{self.host}:{self.port}"

    @classmethod
    def parse(cls, text: str) -> NodeAddr:
        host, _, port = text.rpartition(":")
        return cls(host or "127.0.0.1", int(port))


class Topology:
    """The slot map of one Redis Cluster, refreshed on demand.

    Call :meth:`refresh` once before use, and again whenever a command on a node fails
    with a connection error, a timeout or a redirection.
    """

    def __init__(
        self,
        seeds: Sequence[NodeAddr],
        *,
        socket_timeout_s: float = 1.0,
        connect_timeout_s: float = 0.5,
        max_connections_per_node: int = 64,
        address_map: dict[NodeAddr, NodeAddr] | None = None,
    ) -> None:
        if not seeds:
            raise ValueError("at least one seed node is required")
        #: Where to really connect for a node the cluster reports (a fault proxy in front of
        #: it in chaos runs). Remapping on the client keeps the cluster bus and replication
        #: direct, so a network fault between backends and Redis does not also cut the
        #: replicas off their masters.
        self.address_map = dict(address_map or {})
        self._seeds = [self.address_map.get(s, s) for s in seeds]
        self._socket_timeout_s = socket_timeout_s
        self._connect_timeout_s = connect_timeout_s
        self._max_connections = max_connections_per_node
        self._slots: list[NodeAddr | None] = [None] * SLOTS
        self._replicas: dict[NodeAddr, list[NodeAddr]] = {}
        self._clients: dict[NodeAddr, Redis] = {}
        self._refresh_lock = anyio.Lock()
        self._last_refresh = 0.0
        #: Increases on every refresh that changed the map; subscribers compare it.
        self.version = 0
        self._changed = anyio.Event()

    # -- reading the map ------------------------------------------------------------------

    def master_for_slot(self, slot: int) -> NodeAddr:
        """Return the master serving ``slot``. Raises BusUnavailable if none is known."""
        node = self._slots[slot]
        if node is None:
            raise BusUnavailable(f"no master known for slot {slot}")
        return node

    def masters(self) -> list[NodeAddr]:
        return sorted({n for n in self._slots if n is not None})

    def replicas_of(self, master: NodeAddr) -> list[NodeAddr]:
        return list(self._replicas.get(master, []))

    def known_nodes(self) -> list[NodeAddr]:
        nodes = set(self.masters())
        for reps in self._replicas.values():
            nodes.update(reps)
        return sorted(nodes)

    async def wait_changed(self) -> None:
        """Block until the next refresh that changes the slot map."""
        await self._changed.wait()

    # -- clients ------------------------------------------------------------------------------

    def client(self, node: NodeAddr) -> Redis:
        """The connection pool for ``node`` (created on first use).

        Retries are disabled: a failed command surfaces at once so the caller refreshes
        the map and goes to the right node, instead of retrying a dead one.
        """
        c = self._clients.get(node)
        if c is None:
            c = Redis(
                host=node.host,
                port=node.port,
                decode_responses=True,
                # RESP2 explicitly: redis-py 8 defaults to RESP3, whose push frames our
                # pipelines and the sharded subscriber do not expect.
                protocol=2,
                socket_timeout=self._socket_timeout_s,
                socket_connect_timeout=self._connect_timeout_s,
                retry=Retry(NoBackoff(), 0),
                max_connections=self._max_connections,
                health_check_interval=0,
            )
            self._clients[node] = c
        return c

    async def aclose(self) -> None:
        clients, self._clients = self._clients, {}
        for c in clients.values():
            with anyio.CancelScope(shield=True), contextlib.suppress(RedisError, OSError):
                await c.aclose()

    # -- refreshing ---------------------------------------------------------------------------

    async def refresh(self, *, force: bool = False, failed: NodeAddr | None = None) -> None:
        """Reload the slot map from the first node that answers ``CLUSTER SLOTS``.

        ``failed`` names a node that just failed a command: its replicas are asked first,
        because the one that wins the failover election knows the new map before anyone.
        Raises BusUnavailable when no known node answers.
        """
        started = time.monotonic()
        async with self._refresh_lock:
            # Someone refreshed while we waited for the lock: their map is fresh enough.
            if not force and self._last_refresh >= started:
                return
            wait = self._last_refresh + MIN_REFRESH_INTERVAL_S - time.monotonic()
            if wait > 0 and not force:
                await anyio.sleep(wait)
            candidates = self._candidates(failed)
            errors: list[str] = []
            for node in candidates:
                raw = None
                try:
                    # A healthy node answers in milliseconds; a frozen one never does, and
                    # must not hold up the refresh for a whole socket timeout.
                    with anyio.move_on_after(SLOTS_TIMEOUT_S):
                        raw = await self.client(node).execute_command(  # type: ignore[no-untyped-call]
                            "CLUSTER", "SLOTS"
                        )
                except (RedisError, OSError) as exc:
                    errors.append(f"{node.name}: {type(exc).__name__}")
                    continue
                if raw is None:
                    errors.append(f"{node.name}: no answer in {SLOTS_TIMEOUT_S}s")
                    continue
                self._apply(raw)
                self._last_refresh = time.monotonic()
                return
            self._last_refresh = time.monotonic()
            raise BusUnavailable("no Redis node answered CLUSTER SLOTS: " + "; ".join(errors))

    def _candidates(self, failed: NodeAddr | None = None) -> list[NodeAddr]:
        # The failed node's replicas first (see refresh), then masters, replicas, seeds.
        first = self.replicas_of(failed) if failed is not None else []
        out: list[NodeAddr] = []
        for n in [*first, *self.masters(), *self.known_nodes(), *self._seeds]:
            if n == failed:
                continue
            if n not in out:
                out.append(n)
        return out

    def _apply(self, raw: Any) -> None:
        slots: list[NodeAddr | None] = [None] * SLOTS
        replicas: dict[NodeAddr, list[NodeAddr]] = {}
        for entry in raw:
            start, end = int(entry[0]), int(entry[1])
            nodes = [self._map(NodeAddr(_host(n[0]), int(n[1]))) for n in entry[2:] if n and n[0]]
            if not nodes:
                continue
            master = nodes[0]
            replicas[master] = nodes[1:]
            for s in range(start, end + 1):
                slots[s] = master
        if slots != self._slots or replicas != self._replicas:
            before = self.masters()
            self._slots = slots
            self._replicas = replicas
            self.version += 1
            log.info(
                "topology changed version=%d masters=%s previous=%s",
                self.version,
                ",".join(n.name for n in self.masters()),
                ",".join(n.name for n in before),
            )
            changed, self._changed = self._changed, anyio.Event()
            changed.set()


    def _map(self, node: NodeAddr) -> NodeAddr:
        return self.address_map.get(node, node)


def _host(raw: Any) -> str:
    host = raw.decode() if isinstance(raw, bytes) else str(raw)
    # A node that does not know its own address reports "" (handled above) or "?".
    return host if host not in ("", "?") else "127.0.0.1"
