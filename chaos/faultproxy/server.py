"""``FaultProxyServer``: the HTTP API and every proxy it manages, as one async resource.

::

    async with FaultProxyServer("127.0.0.1", port=0) as server:
        url = server.api_url            # e.g. http://127.0.0.1:41234
        ...                             # drive it over HTTP (toxiproxy-python, requests)

Entering binds the API port (raising ``OSError`` if it cannot), loads the config
file if given and starts serving.  Leaving stops every proxy (closing their
listeners and connections), then the API.  Enter and exit it from the same task.

Unlike Toxiproxy, a config file that cannot be read or applied is an error on
entry (Go logs it and starts with no proxies, which hides broken test setups).
"""

from __future__ import annotations

import logging
import random
from contextlib import AsyncExitStack
from pathlib import Path
from types import TracebackType

import anyio

from chaos.faultproxy import jsonbody
from chaos.faultproxy.api import ToxiproxyApi
from chaos.faultproxy.httpwire import serve_connection
from chaos.faultproxy.proxy import ACCEPT_ERROR_BACKOFF_S, ProxyOptions
from chaos.faultproxy.proxy_collection import ProxyCollection
from chaos.faultproxy.sockets import (
    TcpListener,
    TcpSocket,
    join_host_port,
    listen_tcp,
    split_host_port,
)

log = logging.getLogger(__name__)

# API clients are test harnesses; more than this many open API connections at once
# means something leaks them, so extra ones are closed instead of served.
MAX_API_CONNECTIONS = 256


class FaultProxyServer:
    """A Toxiproxy-compatible server (see the module docstring for the lifecycle).

    ``seed`` makes toxicity draws, jitter and slicer cuts reproducible.
    """

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 8474,
        *,
        config_path: Path | None = None,
        seed: int | None = None,
        options: ProxyOptions | None = None,
    ) -> None:
        self._address = join_host_port(host, port)
        self._config_path = config_path
        self._rng = random.Random(seed)
        self._options = options or ProxyOptions()
        self._stack: AsyncExitStack | None = None
        self._proxies: ProxyCollection | None = None
        self._api_connections = 0
        self.api_host = host
        self.api_port = port

    @property
    def api_url(self) -> str:
        """``http://host:port`` of the API (valid once entered)."""
        return f"http://{join_host_port(self.api_host, self.api_port)}"

    @property
    def proxies(self) -> ProxyCollection:
        """The live proxies (for in-process callers; valid once entered)."""
        if self._proxies is None:
            raise RuntimeError("FaultProxyServer is not running")
        return self._proxies

    async def __aenter__(self) -> FaultProxyServer:
        """Bind the API, load the config file and start serving.

        Raises ``OSError`` if the API address cannot be bound and ``ApiError`` if
        the config file is invalid or one of its proxies cannot start.
        """
        try:
            listener = await self._start()
        except BaseExceptionGroup as group:
            # The task group wraps a failure of our own setup code; callers expect the
            # plain exception (anything else is left grouped).
            if len(group.exceptions) == 1 and isinstance(group.exceptions[0], Exception):
                raise group.exceptions[0] from None
            raise
        log.info("faultproxy api listening address=%s", listener.address)
        return self

    async def _start(self) -> TcpListener:
        async with AsyncExitStack() as stack:
            task_group = await stack.enter_async_context(anyio.create_task_group())
            listener = await listen_tcp(self._address)
            stack.callback(listener.close)
            self.api_host, self.api_port = split_host_port(listener.address)
            # Exit callbacks run last-pushed-first: stop the proxies gracefully while
            # nothing is cancelled yet, then cancel the API loop and whatever is left.
            stack.callback(task_group.cancel_scope.cancel)
            proxies = ProxyCollection(task_group, self._rng, self._options)
            self._proxies = proxies
            stack.push_async_callback(proxies.close)
            if self._config_path is not None:
                await self._load_config(proxies, self._config_path)
            task_group.start_soon(self._serve_api, listener, ToxiproxyApi(proxies))
            self._stack = stack.pop_all()
        return listener

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> bool | None:
        stack, self._stack = self._stack, None
        if stack is None:
            return None
        return await stack.__aexit__(exc_type, exc, traceback)

    @staticmethod
    async def _load_config(proxies: ProxyCollection, path: Path) -> None:
        body = await anyio.Path(path).read_bytes()
        specs = jsonbody.proxy_specs(jsonbody.decode(body))
        loaded = await proxies.populate(specs)
        log.info("populated proxies from file path=%s proxies=%d", path, len(loaded))

    async def _serve_api(self, listener: TcpListener, api: ToxiproxyApi) -> None:
        async with anyio.create_task_group() as connections:
            while True:
                try:
                    sock = await listener.accept()
                except OSError as exc:
                    log.warning("api accept failed error=%r", exc)
                    await anyio.sleep(ACCEPT_ERROR_BACKOFF_S)
                    continue
                if self._api_connections >= MAX_API_CONNECTIONS:
                    log.warning("api connection refused reason=max_api_connections")
                    sock.close()
                    continue
                self._api_connections += 1
                connections.start_soon(self._serve_one, sock, api)

    async def _serve_one(self, sock: TcpSocket, api: ToxiproxyApi) -> None:
        try:
            await serve_connection(sock, api.handle)
        finally:
            self._api_connections -= 1
