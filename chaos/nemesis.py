"""The nemesis: one interface for breaking things, whatever runs them.

A :class:`Platform` knows how to kill, freeze, stop and start the nodes of one deployment
(:class:`chaos.platforms.local.LocalPlatform`: local processes by PID; a Docker platform
implements the same methods with containers). :class:`NetworkFaults` drives any
Toxiproxy-compatible API. :class:`Nemesis` combines both, resolves targets at run time
("the Redis master that owns room R's slot", "all backends but one") and writes every fault
window to ``nemesis.jsonl`` (``{"t": start, "end": end, "fault": ..., "target": ...}``, wall
clock seconds) for the checker's availability figures and the timeline picture.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

__all__ = ["Fault", "Nemesis", "NetworkFaults", "Platform"]


class Platform(Protocol):
    """What the nemesis needs from a deployment. Node names as in the launcher:
    ``backend-N``, ``redis-N``, ``postgres``, ``nginx``."""

    name: str

    def backends(self) -> list[str]: ...
    def redis_nodes(self) -> list[str]: ...
    def redis_master_for_room(self, room: str) -> str: ...
    def busiest_backend(self) -> str: ...
    def alive(self, node: str) -> bool: ...
    def kill(self, node: str) -> None: ...
    def freeze(self, node: str) -> None: ...
    def thaw(self, node: str) -> None: ...
    def stop(self, node: str) -> None: ...
    def start(self, node: str) -> None: ...
    def restart(self, node: str) -> None: ...
    def wait_healthy(self, timeout_s: float = 60.0) -> None: ...
    def heal(self) -> None: ...
    def redis_role(self, node: str) -> str: ...
    def room_commit(self, room: str) -> int: ...
    def archived_seq(self, room: str) -> int: ...


class NetworkFaults:
    """Toxics on named proxies through the Toxiproxy HTTP API (``toxiproxy-python``)."""

    def __init__(self, api: Any) -> None:
        self.api = api
        self._n = 0

    def add(self, proxy: str, toxic: str, attributes: dict[str, int | float],
            *, stream: str = "downstream", toxicity: float = 1.0) -> tuple[str, str]:
        """Add a toxic; returns a handle for :meth:`remove`."""
        self._n += 1
        name = f"{toxic}_{stream}_{self._n}"
        self.api.get_proxy(proxy).add_toxic(name=name, type=toxic, stream=stream,
                                            toxicity=toxicity, attributes=attributes)
        return proxy, name

    def remove(self, handle: tuple[str, str]) -> None:
        proxy, name = handle
        self.api.get_proxy(proxy).destroy_toxic(name)

    def disable(self, proxy: str) -> None:
        """``enabled: false``: the proxy closes every connection and stops listening."""
        self.api.get_proxy(proxy).disable()

    def enable(self, proxy: str) -> None:
        self.api.get_proxy(proxy).enable()

    def reset(self) -> None:
        self.api.reset()


@dataclass
class Fault:
    fault: str
    target: str
    t: float
    end: float | None = None
    detail: dict[str, Any] = field(default_factory=dict)


class Nemesis:
    """Applies faults and logs their windows. Thread-safe for a single schedule thread."""

    def __init__(self, platform: Platform, network: NetworkFaults | None, log_path: Path,
                 clock: Callable[[], float] = time.time) -> None:
        self.platform = platform
        self.network = network
        self.log_path = log_path
        self.clock = clock
        self.faults: list[Fault] = []
        self._lock = threading.Lock()

    def _log(self, f: Fault) -> None:
        with self._lock, self.log_path.open("a") as out:
            out.write(json.dumps({"t": f.t, "end": f.end, "fault": f.fault, "target": f.target,
                                  **f.detail}) + "\n")

    @contextmanager
    def window(self, fault: str, target: str, **detail: Any) -> Iterator[Fault]:
        """Log a fault window around the block (start before, end after it)."""
        f = Fault(fault, target, self.clock(), detail=detail)
        self.faults.append(f)
        try:
            yield f
        finally:
            f.end = self.clock()
            self._log(f)

    # -- process faults ----------------------------------------------------------------------

    def kill(self, node: str, down_s: float, *, restart: bool = True) -> None:
        """SIGKILL ``node``; after ``down_s`` start it again (if ``restart``)."""
        with self.window("kill", node):
            self.platform.kill(node)
            time.sleep(down_s)
            if restart:
                self.platform.start(node)

    def freeze(self, node: str, frozen_s: float) -> None:
        """SIGSTOP ``node`` for ``frozen_s``, then SIGCONT."""
        with self.window("freeze", node):
            self.platform.freeze(node)
            try:
                time.sleep(frozen_s)
            finally:
                self.platform.thaw(node)

    def stop_start(self, node: str, down_s: float) -> None:
        with self.window("stop", node):
            self.platform.stop(node)
            time.sleep(down_s)
            self.platform.start(node)

    def kill_all_but_one(self, down_s: float) -> str:
        """SIGKILL every backend but one; returns the survivor."""
        backends = self.platform.backends()
        survivor, victims = backends[0], backends[1:]
        with self.window("kill_all_but_one", ",".join(victims), survivor=survivor):
            for b in victims:
                self.platform.kill(b)
            time.sleep(down_s)
            for b in victims:
                self.platform.start(b)
        return survivor

    def rolling_restart(self, pause_s: float) -> None:
        """Gracefully restart every backend, one at a time."""
        for b in self.platform.backends():
            with self.window("rolling_restart", b):
                self.platform.restart(b)
            time.sleep(pause_s)

    # -- network faults ------------------------------------------------------------------------

    def toxic(self, proxies: list[str], toxic: str, attributes: dict[str, int | float],
              duration_s: float, *, streams: tuple[str, ...] = ("downstream",),
              toxicity: float = 1.0) -> None:
        """Add a toxic to each proxy (each of ``streams``) for ``duration_s``, then remove it."""
        if self.network is None:
            raise RuntimeError("this deployment has no fault proxies")
        with self.window(f"toxic:{toxic}", ",".join(proxies), streams=",".join(streams),
                         **attributes):
            handles = [self.network.add(p, toxic, attributes, stream=st, toxicity=toxicity)
                       for p in proxies for st in streams]
            try:
                time.sleep(duration_s)
            finally:
                for h in handles:
                    self.network.remove(h)

    def partition(self, proxies: list[str], duration_s: float) -> None:
        """Disable proxies (drop every connection, refuse new ones) for ``duration_s``."""
        if self.network is None:
            raise RuntimeError("this deployment has no fault proxies")
        with self.window("proxy_disabled", ",".join(proxies)):
            for p in proxies:
                self.network.disable(p)
            try:
                time.sleep(duration_s)
            finally:
                for p in proxies:
                    self.network.enable(p)

    def heal(self) -> None:
        """Undo everything: network reset, thaw, restart dead nodes, wait healthy."""
        if self.network is not None:
            self.network.reset()
        self.platform.heal()
