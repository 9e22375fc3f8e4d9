"""``ProxyCollection``: the named proxies of a server (Toxiproxy's ``proxy_collection.go``).

Every change takes the collection lock, so API calls that create, replace,
delete, reset or update proxies never interleave.  Reads (``get``, ``all``) are
synchronous snapshots and take no lock.
"""

from __future__ import annotations

import logging
import random
from collections.abc import Sequence
from dataclasses import dataclass

import anyio
from anyio.abc import TaskGroup

from chaos.faultproxy.errors import (
    BAD_REQUEST_BODY,
    MISSING_FIELD,
    PROXY_ALREADY_EXISTS,
    PROXY_NOT_FOUND,
    BadRequest,
    Conflict,
    NotFound,
    ServerError,
)
from chaos.faultproxy.proxy import Proxy, ProxyOptions
from chaos.faultproxy.sockets import split_host_port

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ProxySpec:
    """The fields a client gives to create a proxy."""

    name: str
    listen: str
    upstream: str
    enabled: bool = True


class ProxyCollection:
    """All proxies of one server; they run as tasks of ``task_group``."""

    def __init__(self, task_group: TaskGroup, rng: random.Random, options: ProxyOptions) -> None:
        self._task_group = task_group
        self._rng = rng
        self._options = options
        self._proxies: dict[str, Proxy] = {}
        self.lock = anyio.Lock()

    def all(self) -> list[Proxy]:
        return list(self._proxies.values())

    def get(self, name: str) -> Proxy:
        """Return the proxy called ``name``; raises ``NotFound``."""
        try:
            return self._proxies[name]
        except KeyError:
            raise NotFound(PROXY_NOT_FOUND) from None

    def _new(self, spec: ProxySpec) -> Proxy:
        return Proxy(
            spec.name,
            spec.listen,
            spec.upstream,
            task_group=self._task_group,
            rng=self._rng,
            options=self._options,
        )

    async def add(self, spec: ProxySpec) -> Proxy:
        """Create (and start, if enabled) a proxy; raises ``Conflict`` or ``ServerError``."""
        async with self.lock:
            if spec.name in self._proxies:
                raise Conflict(PROXY_ALREADY_EXISTS)
            proxy = self._new(spec)
            if spec.enabled:
                await proxy.start()
            self._proxies[spec.name] = proxy
            return proxy

    async def remove(self, name: str) -> None:
        """Stop and forget a proxy; raises ``NotFound``."""
        async with self.lock:
            proxy = self.get(name)
            await proxy.stop()
            del self._proxies[name]

    async def update(self, name: str, listen: str, upstream: str, enabled: bool) -> Proxy:
        """Apply ``Proxy.update`` under the lock; raises ``NotFound`` or ``ServerError``."""
        async with self.lock:
            proxy = self.get(name)
            await proxy.update(listen, upstream, enabled)
            return proxy

    async def populate(self, specs: Sequence[ProxySpec]) -> list[Proxy]:
        """Create or replace every proxy in ``specs`` (Toxiproxy's ``PopulateJson``).

        The whole list is validated before anything changes.  A proxy whose listen
        and upstream are unchanged is kept as is (toxics included); otherwise the
        old one is stopped and replaced.  Raises ``BadRequest``/``ServerError``.
        """
        seen: set[str] = set()
        for number, spec in enumerate(specs, start=1):
            if not spec.name:
                raise BadRequest(f"{MISSING_FIELD}: name at proxy {number}")
            if not spec.upstream:
                raise BadRequest(f"{MISSING_FIELD}: upstream at proxy {number}")
            if spec.name in seen:
                # Go returns a plain error here, which its API turns into a 500.
                raise ServerError(f'duplicate proxy name "{spec.name}"')
            seen.add(spec.name)
            if spec.enabled:
                for address in (spec.listen, spec.upstream):
                    try:
                        split_host_port(address)
                    except ValueError as exc:
                        raise BadRequest(f"{BAD_REQUEST_BODY}: {exc}") from None
        async with self.lock:
            return [await self._add_or_replace(spec) for spec in specs]

    async def _add_or_replace(self, spec: ProxySpec) -> Proxy:
        existing = self._proxies.get(spec.name)
        if existing is not None:
            if existing.listen == spec.listen and existing.upstream == spec.upstream:
                return existing
            await existing.stop()
            del self._proxies[spec.name]
        proxy = self._new(spec)
        if spec.enabled:
            await proxy.start()
        self._proxies[spec.name] = proxy
        return proxy

    async def reset(self) -> None:
        """Enable every proxy and remove every toxic; raises ``ServerError`` if a start fails."""
        async with self.lock:
            for proxy in self.all():
                await proxy.start()
                await proxy.toxics.reset()

    async def close(self) -> None:
        """Stop every proxy (server shutdown). The proxies stay listed."""
        async with self.lock:
            for proxy in self.all():
                await proxy.stop()
