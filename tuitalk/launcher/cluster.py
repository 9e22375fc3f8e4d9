"""The whole local topology as one object: start it, stop it, and break any part of it.

Used by ``tuitalk up``, by the integration tests (on free ports, in a temp directory) and
by the chaos suite. Node names: ``backend-1..N``, ``redis-1..2M``, ``postgres``, ``nginx``.
"""

from __future__ import annotations

import json
import os
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tuitalk.bus.keys import RoomKeys
from tuitalk.errors import LauncherError
from tuitalk.launcher.nginx import NginxServer
from tuitalk.launcher.ports import PortAllocator
from tuitalk.launcher.postgres import PostgresServer
from tuitalk.launcher.process import ManagedProcess
from tuitalk.launcher.redisnodes import RedisClusterRunner, RedisNode

__all__ = ["BackendProc", "ClusterSpec", "LocalCluster", "repo_root"]


def repo_root() -> Path:
    return Path(__file__).resolve().parents[2]


@dataclass
class ClusterSpec:
    base: Path
    masters: int = 3
    backends: int = 3
    #: nginx port; 0 picks a free one (tests). ``tuitalk up`` uses 8080.
    nginx_port: int = 0
    node_timeout_ms: int = 1000
    postgres: bool = True
    #: fsync off etc. for test clusters.
    fast_postgres: bool = False
    backend_env: dict[str, str] = field(default_factory=dict)
    backend_args: list[str] = field(default_factory=list)
    web_root: Path | None = None
    pyodide_dir: Path | None = None
    #: Redis port -> port the node announces. (Chaos runs prefer ``backend_redis_map``,
    #: which keeps replication direct.)
    redis_announce: dict[int, int] = field(default_factory=dict)
    #: Redis port -> port backends connect to instead (a fault proxy in front of it).
    backend_redis_map: dict[int, int] = field(default_factory=dict)
    #: Ports nginx proxies to instead of the backends' own (fault proxies).
    nginx_upstreams: list[int] = field(default_factory=list)
    #: Fixed ports (chaos runs need to know them before start); empty: allocate.
    redis_ports: list[int] = field(default_factory=list)
    backend_ports: list[int] = field(default_factory=list)
    pg_port: int = 0
    #: Delete data directories that live outside ``base`` when stopping (test clusters).
    ephemeral: bool = False
    #: What backends connect to, when it differs from the real nodes (fault proxies).
    backend_redis_seeds: str | None = None
    backend_pg_dsn: str | None = None


@dataclass
class BackendProc:
    name: str
    port: int
    process: ManagedProcess

    def ready(self, timeout_s: float = 0.5) -> bool:
        try:
            with urllib.request.urlopen(
                f"http://127.0.0.1:{self.port}/readyz", timeout=timeout_s
            ) as resp:
                return bool(resp.status == 200)
        except (urllib.error.URLError, OSError, TimeoutError):
            return False

    def metrics(self, timeout_s: float = 1.0) -> str:
        with urllib.request.urlopen(
            f"http://127.0.0.1:{self.port}/metrics", timeout=timeout_s
        ) as resp:
            return str(resp.read().decode())


class LocalCluster:
    def __init__(self, spec: ClusterSpec) -> None:
        self.spec = spec
        spec.base.mkdir(parents=True, exist_ok=True)
        ports = PortAllocator()
        self.ports = ports
        n_redis = spec.masters * 2
        redis_ports = spec.redis_ports or [ports.redis_port() for _ in range(n_redis)]
        self.redis = RedisClusterRunner(
            spec.base / "redis", redis_ports, node_timeout_ms=spec.node_timeout_ms,
            announce_ports=spec.redis_announce,
        )
        self.pg: PostgresServer | None = None
        if spec.postgres:
            self.pg = PostgresServer(spec.base / "postgres", spec.pg_port or ports.port(),
                                     fast=spec.fast_postgres)
        backend_ports = spec.backend_ports or [ports.port() for _ in range(spec.backends)]
        self.nginx_port = spec.nginx_port or ports.port()
        self.backends: list[BackendProc] = []
        for i, port in enumerate(backend_ports):
            name = f"backend-{i + 1}"
            self.backends.append(BackendProc(name, port, self._backend_process(name, port)))
        self.nginx = NginxServer(
            spec.base / "nginx", self.nginx_port, spec.nginx_upstreams or backend_ports,
            web_root=spec.web_root, pyodide_dir=spec.pyodide_dir,
        )
        self.started = False

    # -- addresses ------------------------------------------------------------------------

    @property
    def url(self) -> str:
        return f"ws://127.0.0.1:{self.nginx_port}/ws"

    @property
    def http_url(self) -> str:
        return f"http://127.0.0.1:{self.nginx_port}/"

    @property
    def redis_seeds(self) -> str:
        return ",".join(n.addr for n in self.redis.nodes)

    def _backend_process(self, name: str, port: int) -> ManagedProcess:
        spec = self.spec
        seeds = spec.backend_redis_seeds or ",".join(n.addr for n in self.redis.nodes)
        pg = spec.backend_pg_dsn if spec.backend_pg_dsn is not None else (
            self.pg.dsn if self.pg else "")
        origins = f"http://127.0.0.1:{self.nginx_port},http://localhost:{self.nginx_port}"
        argv = [
            sys.executable, "-m", "tuitalk", "serve", "--name", name, "--port", str(port),
            "--redis", seeds, "--pg", pg, "--origins", origins, *spec.backend_args,
        ]
        if spec.backend_redis_map:
            argv += ["--redis-map", ",".join(
                f"127.0.0.1:{real}=127.0.0.1:{proxy}"
                for real, proxy in spec.backend_redis_map.items())]
        env = dict(os.environ)
        env.update(spec.backend_env)
        env.setdefault("PYTHONUNBUFFERED", "1")
        return ManagedProcess(name, argv, log_path=spec.base / "backends" / f"{name}.log",
                              env=env, cwd=repo_root())

    # -- whole cluster -------------------------------------------------------------------------

    def start(self, timeout_s: float = 60.0) -> None:
        try:
            self.redis.start()
            if self.pg is not None:
                self.pg.start()
            for b in self.backends:
                b.process.start()
            for b in self.backends:
                self.wait_backend_ready(b, timeout_s)
            self.nginx.start()
        except BaseException:
            self.stop()
            raise
        self.started = True
        self.write_state()

    def stop(self) -> None:
        """Stop everything we started (each process by its PID), in reverse order."""
        errors = []
        for stopper in [self.nginx.stop, *(b.process.stop for b in self.backends),
                        *([self.pg.stop] if self.pg else []), self.redis.stop]:
            try:
                stopper()
            except Exception as exc:
                errors.append(exc)
        self.started = False
        if self.spec.ephemeral and self.pg is not None and not self.pg.process.alive():
            self.pg.remove_data()
        state = self.spec.base / "cluster.json"
        if state.exists():
            state.unlink()
        if errors:
            raise LauncherError(f"errors while stopping: {errors}")

    def __enter__(self) -> LocalCluster:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def wait_backend_ready(self, b: BackendProc, timeout_s: float = 30.0) -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if not b.process.alive():
                raise LauncherError(f"{b.name} exited:\n{b.process.log_tail()}")
            if b.ready():
                return
            time.sleep(0.05)
        raise LauncherError(f"{b.name} not ready after {timeout_s:.0f}s:\n{b.process.log_tail()}")

    # -- nodes ----------------------------------------------------------------------------------

    def backend(self, name: str) -> BackendProc:
        for b in self.backends:
            if b.name == name:
                return b
        raise LauncherError(f"no backend {name!r}")

    def process(self, name: str) -> ManagedProcess:
        if name.startswith("backend-"):
            return self.backend(name).process
        if name.startswith("redis-"):
            return self.redis.node(name).process
        if name == "postgres" and self.pg is not None:
            return self.pg.process
        if name == "nginx":
            return self.nginx.process
        raise LauncherError(f"no node {name!r}")

    def node_names(self) -> list[str]:
        names = [b.name for b in self.backends] + [n.name for n in self.redis.nodes]
        if self.pg is not None:
            names.append("postgres")
        return [*names, "nginx"]

    def kill(self, name: str) -> None:
        """SIGKILL a node."""
        self.process(name).kill()

    def freeze(self, name: str) -> None:
        """SIGSTOP a node (postgres: its postmaster only, which still refuses connects)."""
        self.process(name).freeze()

    def thaw(self, name: str) -> None:
        self.process(name).thaw()

    def stop_node(self, name: str) -> None:
        """Stop a node gracefully (backends: SIGTERM, clients get 1012)."""
        if name == "postgres" and self.pg is not None:
            self.pg.stop()
        elif name == "nginx":
            self.nginx.stop()
        else:
            self.process(name).stop()

    def start_node(self, name: str, timeout_s: float = 30.0) -> None:
        """Start a stopped or killed node and wait until it serves again."""
        if name.startswith("backend-"):
            b = self.backend(name)
            b.process.start()
            self.wait_backend_ready(b, timeout_s)
        elif name.startswith("redis-"):
            node = self.redis.node(name)
            self._wait_slots_moved_away(node, timeout_s)
            node.process.start()
            self.redis.wait_healthy(timeout_s)
        elif name == "postgres" and self.pg is not None:
            self.pg.start(timeout_s)
        elif name == "nginx":
            self.nginx.start(timeout_s)
        else:
            raise LauncherError(f"no node {name!r}")

    def restart(self, name: str, timeout_s: float = 30.0) -> None:
        """Graceful stop, then start (a rolling restart does this per backend)."""
        if name.startswith("redis-"):
            self.kill(name)
        else:
            self.stop_node(name)
        self.start_node(name, timeout_s)

    def _wait_slots_moved_away(self, node: RedisNode, timeout_s: float) -> None:
        """Before restarting a dead master, wait for its replica to take over.

        Nodes run without persistence: a master restarted before the failover would come
        back empty *as master* and the replica would copy the empty data set.
        """
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            owners = set()
            for other in self.redis.nodes:
                if other is node or not other.process.alive() or other.process.frozen:
                    continue
                try:
                    owners = {p for _, _, p in other.slot_owners()}
                    break
                except LauncherError:
                    continue
            if node.port not in owners and (node.announce_port or -1) not in owners:
                return
            time.sleep(0.05)
        raise LauncherError(f"{node.name}'s slots were not taken over within {timeout_s:.0f}s")

    def redis_master_for_room(self, room: str) -> RedisNode:
        return self.redis.master_of_slot(RoomKeys(room).slot)

    # -- status ----------------------------------------------------------------------------------

    def status(self) -> list[dict[str, Any]]:
        rows: list[dict[str, Any]] = []
        for b in self.backends:
            state = "frozen" if b.process.frozen else (
                "ready" if b.ready() else ("up" if b.process.alive() else "down"))
            rows.append({"name": b.name, "kind": "backend", "pid": b.process.pid,
                         "port": b.port, "state": state})
        for n in self.redis.nodes:
            rows.append({"name": n.name, "kind": "redis", "pid": n.process.pid,
                         "port": n.port, "state": n.role()})
        if self.pg is not None:
            rows.append({"name": "postgres", "kind": "postgres", "pid": self.pg.process.pid,
                         "port": self.pg.port,
                         "state": "up" if self.pg.process.alive() else "down"})
        rows.append({"name": "nginx", "kind": "nginx", "pid": self.nginx.process.pid,
                     "port": self.nginx_port,
                     "state": "up" if self.nginx.process.alive() else "down"})
        return rows

    def write_state(self) -> None:
        data = {"url": self.url, "nodes": self.status(), "base": str(self.spec.base),
                "launcher_pid": os.getpid()}
        (self.spec.base / "cluster.json").write_text(json.dumps(data, indent=2))
