"""The local cluster with a fault proxy on every network path the chaos suite cuts.

::

    clients ─▶ [client] ─▶ nginx ─▶ [backend-i] ─▶ backend i ─▶ [redis-j] ─▶ redis node j
                                                            └─▶ [postgres] ─▶ PostgreSQL

Each ``[name]`` is a proxy of one Toxiproxy-compatible server (a real ``toxiproxy-server``
when one is on PATH, else our own ``chaos.faultproxy``), driven through its HTTP API with
``toxiproxy-python``. Backends reach Redis through the proxies by remapping the addresses
the cluster reports (``--redis-map``), so a fault between backends and Redis leaves the
cluster bus and replication direct, as in a real deployment where only the application's
network path fails.
"""

from __future__ import annotations

import contextlib
import shutil
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from toxiproxy import Toxiproxy

from chaos.faultproxy import FaultProxyProcess
from tuitalk.launcher.cluster import ClusterSpec, LocalCluster
from tuitalk.launcher.ports import PortAllocator

__all__ = ["ChaosCluster", "ProxyServer"]


@dataclass
class ProxyServer:
    """The Toxiproxy API endpoint, and how to stop it."""

    host: str
    port: int
    kind: str  # "toxiproxy-server" or "faultproxy"
    _stop: Any

    def close(self) -> None:
        self._stop()


def start_proxy_server(log_path: Path) -> ProxyServer:
    """Start a real ``toxiproxy-server`` if installed, else ``chaos.faultproxy``."""
    binary = shutil.which("toxiproxy-server")
    if binary:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = int(s.getsockname()[1])
        log = log_path.open("ab")
        proc = subprocess.Popen(
            [binary, "-host", "127.0.0.1", "-port", str(port)], stdout=log, stderr=log,
            start_new_session=True,
        )
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.2):
                break
            time.sleep(0.05)

        def stop() -> None:
            proc.terminate()
            try:
                proc.wait(5)
            except subprocess.TimeoutExpired:
                proc.kill()
            log.close()

        return ProxyServer("127.0.0.1", port, "toxiproxy-server", stop)
    fp = FaultProxyProcess(stderr=None)
    fp.start()
    return ProxyServer(fp.api_host, fp.api_port, "faultproxy", fp.close)


class ChaosCluster:
    """A :class:`LocalCluster` whose network paths run through named fault proxies.

    Proxy names: ``client`` (in front of nginx: the URL clients use), ``backend-1..N``
    (nginx to each backend), ``redis-1..2M`` (backends to each Redis node) and
    ``postgres`` (backends to PostgreSQL).
    """

    def __init__(self, base: Path, *, masters: int = 3, backends: int = 3,
                 backend_args: list[str] | None = None) -> None:
        self.base = base
        base.mkdir(parents=True, exist_ok=True)
        self.proxy_server = start_proxy_server(base / "toxiproxy.log")
        self.api = Toxiproxy()
        self.api.update_api_consumer(self.proxy_server.host, self.proxy_server.port)
        ports = PortAllocator()
        redis_real = [ports.redis_port() for _ in range(masters * 2)]
        backend_real = [ports.port() for _ in range(backends)]
        pg_real = ports.port()
        nginx_real = ports.port()
        self.proxy_ports: dict[str, int] = {}
        self.upstreams: dict[str, int] = {}
        try:
            self.client_port = self._proxy("client", nginx_real, ports)
            backend_proxies = [self._proxy(f"backend-{i + 1}", p, ports)
                               for i, p in enumerate(backend_real)]
            redis_map = {p: self._proxy(f"redis-{i + 1}", p, ports)
                         for i, p in enumerate(redis_real)}
            pg_proxy = self._proxy("postgres", pg_real, ports)
            spec = ClusterSpec(
                base=base, masters=masters, backends=backends, nginx_port=nginx_real,
                fast_postgres=True, ephemeral=True, redis_ports=redis_real,
                backend_ports=backend_real, pg_port=pg_real, nginx_upstreams=backend_proxies,
                backend_redis_map=redis_map,
                backend_pg_dsn=f"postgresql://tuitalk@127.0.0.1:{pg_proxy}/tuitalk",
                backend_args=backend_args or [],
            )
            self.cluster = LocalCluster(spec)
        except BaseException:
            self.proxy_server.close()
            raise

    def _proxy(self, name: str, upstream: int, ports: PortAllocator) -> int:
        listen = ports.port()
        self.api.create(upstream=f"127.0.0.1:{upstream}", name=name,
                        listen=f"127.0.0.1:{listen}")
        self.proxy_ports[name] = listen
        self.upstreams[name] = upstream
        return listen

    @property
    def url(self) -> str:
        """What clients connect to: through the ``client`` proxy to nginx."""
        return f"ws://127.0.0.1:{self.client_port}/ws"

    def start(self) -> None:
        try:
            self.cluster.start()
        except BaseException:
            self.proxy_server.close()
            raise

    def stop(self) -> None:
        try:
            self.cluster.stop()
        finally:
            self.proxy_server.close()

    def __enter__(self) -> ChaosCluster:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
