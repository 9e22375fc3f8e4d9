"""``Proxy``: a listener that joins each client to a fresh upstream connection.

Port of Toxiproxy's ``proxy.go``.  Per accepted client the proxy dials the
upstream (concurrently, bounded by ``ProxyOptions.upstream_dial_timeout_s``; Go
dials synchronously in the accept loop) and runs two ``ToxicLink``\\ s: client ->
upstream (``upstream`` toxics) and upstream -> client (``downstream`` toxics).
If the dial fails the client is closed.

Ownership: ``start`` runs the accept loop as a task of the server's task group;
every connection is a task of the proxy's own task group inside it.  ``stop``
cancels that and waits, so when it returns the listener and every connection of
the proxy are closed.  Re-enabling listens again on the same address, which after
the first start holds the real port (so ``127.0.0.1:0`` keeps its port).

Overflow: beyond ``max_connections`` live connections a new client is closed at
once and counted in the log, rather than queued.
"""

from __future__ import annotations

import functools
import logging
import random
from dataclasses import dataclass

import anyio
from anyio.abc import TaskGroup, TaskStatus

from chaos.faultproxy.chunks import Direction
from chaos.faultproxy.errors import ServerError
from chaos.faultproxy.link import ToxicLink
from chaos.faultproxy.sockets import TcpListener, TcpSocket, connect_tcp, listen_tcp
from chaos.faultproxy.toxic_collection import ToxicCollection

log = logging.getLogger(__name__)

# Pause after a failing accept() (EMFILE and friends) so the loop does not spin.
ACCEPT_ERROR_BACKOFF_S = 0.1


@dataclass(frozen=True)
class ProxyOptions:
    """Limits shared by every proxy of a server."""

    upstream_dial_timeout_s: float = 10.0
    max_connections: int = 4096


class Proxy:
    """One named proxy: ``listen`` -> ``upstream`` with its toxics.

    ``name``, ``listen``, ``upstream`` and ``enabled`` are the API fields; change
    them only through ``start``/``stop``/``update``, which a single caller (the
    ``ProxyCollection`` lock) must serialise.
    """

    def __init__(
        self,
        name: str,
        listen: str,
        upstream: str,
        *,
        task_group: TaskGroup,
        rng: random.Random,
        options: ProxyOptions,
    ) -> None:
        self.name = name
        self.listen = listen
        self.upstream = upstream
        self.enabled = False
        self.toxics = ToxicCollection(name)
        self._task_group = task_group
        self._rng = rng
        self._options = options
        self._scope: anyio.CancelScope | None = None
        self._stopped: anyio.Event | None = None
        self._connections = 0

    def to_json(self) -> dict[str, object]:
        """Toxiproxy's proxy-with-toxics JSON, in Go's field order."""
        return {
            "name": self.name,
            "listen": self.listen,
            "upstream": self.upstream,
            "enabled": self.enabled,
            "toxics": [toxic.to_json() for toxic in self.toxics.all()],
        }

    # -- lifecycle ------------------------------------------------------------------------

    async def start(self) -> bool:
        """Listen and accept; False if already started.

        Raises ``ServerError`` (Toxiproxy answers 500) if the address cannot be
        bound; the proxy then stays disabled.
        """
        if self.enabled:
            return False
        try:
            await self._task_group.start(self._serve)
        except ValueError as exc:
            raise ServerError(f"listen tcp: {exc}") from exc
        except OSError as exc:
            reason = (exc.strerror or str(exc)).lower()
            raise ServerError(f"listen tcp {self.listen}: bind: {reason}") from exc
        self.enabled = True
        log.info(
            "proxy started name=%s listen=%s upstream=%s", self.name, self.listen, self.upstream
        )
        return True

    async def stop(self) -> None:
        """Stop listening and close every connection; returns once all are closed."""
        if not self.enabled:
            return
        self.enabled = False
        if self._scope is not None and self._stopped is not None:
            self._scope.cancel()
            await self._stopped.wait()
        log.info("proxy stopped name=%s listen=%s", self.name, self.listen)

    async def update(self, listen: str, upstream: str, enabled: bool) -> None:
        """Apply an API update (Go's ``Proxy.Update``): a new address restarts the proxy."""
        if listen != self.listen or upstream != self.upstream:
            await self.stop()
            self.listen, self.upstream = listen, upstream
        if enabled != self.enabled:
            if enabled:
                await self.start()
            else:
                await self.stop()

    async def _serve(self, *, task_status: TaskStatus[None]) -> None:
        listener = await listen_tcp(self.listen)
        scope, stopped = anyio.CancelScope(), anyio.Event()
        try:
            self.listen = listener.address
            self._scope, self._stopped = scope, stopped
            task_status.started()
            with scope:
                async with anyio.create_task_group() as connections:
                    await self._accept_loop(listener, connections)
        finally:
            listener.close()
            stopped.set()

    async def _accept_loop(self, listener: TcpListener, connections: TaskGroup) -> None:
        while True:
            try:
                client = await listener.accept()
            except OSError as exc:
                log.warning("accept failed proxy=%s error=%r", self.name, exc)
                await anyio.sleep(ACCEPT_ERROR_BACKOFF_S)
                continue
            if self._connections >= self._options.max_connections:
                log.warning("connection refused proxy=%s reason=max_connections", self.name)
                client.close()
                continue
            self._connections += 1
            connections.start_soon(self._handle_client, client)

    async def _handle_client(self, client: TcpSocket) -> None:
        upstream: TcpSocket | None = None
        try:
            log.info("client accepted proxy=%s client=%s", self.name, client.peer)
            with anyio.move_on_after(self._options.upstream_dial_timeout_s):
                try:
                    upstream = await connect_tcp(self.upstream)
                except (OSError, ValueError) as exc:
                    log.warning(
                        "upstream dial failed proxy=%s upstream=%s error=%r",
                        self.name, self.upstream, exc,
                    )  # fmt: skip
            if upstream is None:
                return
            await self._pipe(client, upstream)
        finally:
            self._connections -= 1
            client.close()
            if upstream is not None:
                upstream.close()
            log.info("client closed proxy=%s client=%s", self.name, client.peer)

    async def _pipe(self, client: TcpSocket, upstream: TcpSocket) -> None:
        def reset_both() -> None:
            client.set_reset_on_close()
            upstream.set_reset_on_close()

        toxics = self.toxics
        async with anyio.create_task_group() as links:
            for direction, source, dest in (
                (Direction.UPSTREAM, client, upstream),
                (Direction.DOWNSTREAM, upstream, client),
            ):
                link = ToxicLink(direction, source, dest, rng=self._rng, on_reset=reset_both)
                chain = functools.partial(toxics.chain, direction)
                links.start_soon(link.run, chain, toxics.register, toxics.unregister)
