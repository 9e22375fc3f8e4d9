"""One backend process: the WebSocket server and everything it owns.

Task tree (every task belongs to the task group of the object it lives with)::

    Backend.run
    ├── FeedHub.run ── ShardedSubscriber.run ── one _Link per Redis master
    │               └─ position loop, check/fill jobs
    ├── Archiver.run
    ├── metrics loop
    └── websockets server ── ClientConnection.serve per client (reader, ops, writer, ...)

HTTP on the same port: ``/healthz`` (process alive), ``/readyz`` (Redis reachable and
subscriber running; nginx and the launcher wait for it), ``/metrics`` (Prometheus).
On SIGTERM the backend closes every client with 1012 so they re-home at once.
"""

from __future__ import annotations

import contextlib
import logging
import signal
from collections import Counter
from http import HTTPStatus
from typing import Any

import anyio
from anyio.abc import TaskStatus
from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.datastructures import Headers
from websockets.http11 import Request, Response

from tuitalk.bus.cluster import BusConfig, ClusterBus, PublishResult
from tuitalk.errors import BusUnavailable, StoreError
from tuitalk.logs import log_event
from tuitalk.protocol import CloseCode
from tuitalk.server.config import ServerConfig
from tuitalk.server.connection import ClientConnection
from tuitalk.server.hub import FeedHub
from tuitalk.server.metrics import Metrics
from tuitalk.store.archiver import Archiver
from tuitalk.store.db import Store

__all__ = ["Backend", "main"]

log = logging.getLogger("tuitalk.server")


class Backend:
    def __init__(self, config: ServerConfig) -> None:
        self.config = config
        self.metrics = Metrics(config.name)
        self.bus = ClusterBus(
            BusConfig(
                seeds=config.redis_seeds,
                publish_timeout_s=config.publish_timeout_s,
                stream_soft_max=config.stream_soft_max,
                address_map=config.redis_map,
            )
        )
        self.bus.on_event = self._bus_event
        self.store: Store | None = Store(config.pg_dsn) if config.pg_dsn else None
        self.hub = FeedHub(
            self.bus, self.store, self.metrics,
            position_check_s=config.position_check_s,
            probe_interval_s=config.probe_interval_s,
            probe_timeout_s=config.probe_timeout_s,
        )
        self.archiver = Archiver(
            self.bus, self.store if self.store is not None else _NoStore(),
            owner=config.name, interval_s=config.archive_interval_s,
            on_event=lambda e, f: log_event(e, backend=config.name, **f),
        )
        self.connections: set[ClientConnection] = set()
        self._per_ip: Counter[str] = Counter()
        self.ready = False
        self.stopping = False
        self._server: Server | None = None
        self._stop = anyio.Event()
        self._gone = anyio.Event()
        self.port = config.port

    # -- publishing (shared by all connections) ---------------------------------------------

    async def publish(self, room: str, *, user: str, msg_id: str, name: str, kind: str,
                      text: str) -> PublishResult:
        res = await self.bus.publish(room, user=user, msg_id=msg_id, name=name, kind=kind,
                                     text=text, floor=lambda: self._floor(room))
        if res.status == "ok":
            self.archiver.note_room(room)
        return res

    async def _floor(self, room: str) -> int:
        """Where a room whose meta is gone continues its seqs: the archive's max, or what
        this backend's feed last saw (PostgreSQL down), whichever is higher."""
        seen = 0
        feed = self.hub.feed(room)
        if feed is not None:
            seen = feed.head
        if self.store is not None:
            with contextlib.suppress(StoreError):
                seen = max(seen, await self.store.max_seq(room))
        log_event("room_meta_created", room=room, floor=seen)
        return seen

    def _bus_event(self, event: str, fields: dict[str, Any]) -> None:
        if event == "bus_retry":
            self.metrics.bus_retries.labels(error=str(fields.get("error"))).inc()
            return  # too frequent during a failover to log each one
        if event == "degraded_commit":
            # Counted each time; logged once per node as "replicas_changed".
            self.metrics.degraded_commits.inc()
            return
        log_event(event, backend=self.config.name, **fields)

    # -- running ---------------------------------------------------------------------------

    async def run(self, *, task_status: TaskStatus[int] = anyio.TASK_STATUS_IGNORED) -> None:
        cfg = self.config
        while True:
            try:
                await self.bus.start()
                break
            except BusUnavailable:
                log_event("waiting_for_redis", backend=cfg.name)
                await anyio.sleep(0.5)
        async with anyio.create_task_group() as tg:
            await tg.start(self.hub.run)
            if self.store is not None:
                tg.start_soon(self.archiver.run)
            tg.start_soon(self._metrics_loop)
            origins: list[str | None] | None = None
            if cfg.allowed_origins:
                origins = [None, *cfg.allowed_origins]
            async with serve(
                self._handle,
                cfg.host,
                cfg.port,
                process_request=self._process_request,
                origins=origins,  # type: ignore[arg-type]
                ping_interval=cfg.heartbeat_s,
                ping_timeout=cfg.heartbeat_timeout_s,
                # A slow consumer closed with 4008 gets its close frame only after the data
                # queued before it; give it time to drain before aborting the socket.
                close_timeout=10,
                max_size=cfg.max_ws_frame_bytes,
                compression=None,  # measured: deflate doubles latency for chat frames
                max_queue=64,
            ) as server:
                self._server = server
                sock = next(iter(server.sockets))
                self.port = int(sock.getsockname()[1])
                self.ready = True
                log_event("backend_ready", backend=cfg.name, port=self.port)
                task_status.started(self.port)
                await self._stop.wait()
                await self._shutdown(server)
            tg.cancel_scope.cancel()
        await self.bus.aclose()
        if self.store is not None:
            await self.store.aclose()

    def stop(self) -> None:
        self._stop.set()

    async def _shutdown(self, server: Server) -> None:
        self.stopping = True
        self.ready = False
        log_event("backend_stopping", backend=self.config.name, clients=len(self.connections))
        server.close(close_connections=False)
        for conn in list(self.connections):
            conn.close(CloseCode.SERVICE_RESTART, "backend restarting")
        with anyio.move_on_after(self.config.shutdown_grace_s):
            while self.connections:
                self._gone = anyio.Event()
                await self._gone.wait()

    async def _metrics_loop(self) -> None:
        while True:
            await anyio.sleep(1.0)
            self.metrics.archive_lag.set(self.archiver.lag)

    # -- HTTP and WebSocket ------------------------------------------------------------------

    def _client_addr(self, connection: ServerConnection, headers: Headers) -> str:
        peer = connection.remote_address[0] if connection.remote_address else "?"
        if peer in self.config.trusted_proxies:
            real = headers.get("X-Real-IP")
            if real:
                return real.strip()
        return str(peer)

    def _process_request(self, connection: ServerConnection, request: Request) -> Response | None:
        path = request.path.split("?", 1)[0]
        if path == "/healthz":
            return connection.respond(HTTPStatus.OK, "ok\n")
        if path == "/readyz":
            if self.ready:
                return connection.respond(HTTPStatus.OK, "ready\n")
            return connection.respond(HTTPStatus.SERVICE_UNAVAILABLE, "not ready\n")
        if path == "/metrics":
            body = self.metrics.render()
            return Response(200, "OK", Headers([
                ("Content-Type", "text/plain; version=0.0.4; charset=utf-8"),
                ("Content-Length", str(len(body))),
                ("Connection", "close"),
            ]), body)
        if path not in ("/ws", "/"):
            return connection.respond(HTTPStatus.NOT_FOUND, "not found\n")
        if not self.ready:
            return connection.respond(HTTPStatus.SERVICE_UNAVAILABLE, "not ready\n")
        addr = self._client_addr(connection, request.headers)
        if self._per_ip[addr] >= self.config.max_conns_per_ip:
            log_event("connection_cap", backend=self.config.name, addr=addr)
            return connection.respond(HTTPStatus.TOO_MANY_REQUESTS, "too many connections\n")
        return None

    async def _handle(self, ws: ServerConnection) -> None:
        addr = self._client_addr(ws, ws.request.headers if ws.request else Headers())
        if self._per_ip[addr] >= self.config.max_conns_per_ip:
            await ws.close(CloseCode.TOO_MANY_CONNECTIONS, "too many connections")
            return
        self._per_ip[addr] += 1
        conn = ClientConnection(self, ws, addr)
        self.connections.add(conn)
        try:
            if self.stopping:
                conn.close(CloseCode.SERVICE_RESTART, "backend restarting")
            await conn.serve()
        finally:
            self.connections.discard(conn)
            self._gone.set()
            self._per_ip[addr] -= 1
            if self._per_ip[addr] <= 0:
                del self._per_ip[addr]


class _NoStore(Store):
    """Archive stand-in when the backend runs without PostgreSQL: always unavailable."""

    def __init__(self) -> None:
        super().__init__("")

    async def _get_pool(self) -> Any:
        raise StoreError("no PostgreSQL configured")


def main(argv: list[str] | None = None) -> None:
    """``tuitalk serve``: run one backend until SIGTERM/SIGINT."""
    from tuitalk.logs import setup_logging

    setup_logging()
    config = ServerConfig.from_args(argv)
    backend = Backend(config)

    async def _run() -> None:
        async with anyio.create_task_group() as tg:
            tg.start_soon(backend.run)
            with anyio.open_signal_receiver(signal.SIGTERM, signal.SIGINT) as signals:
                async for _ in signals:
                    backend.stop()
                    break

    anyio.run(_run)
