"""A Redis Cluster of local ``redis-server`` processes (N masters, one replica each)."""

from __future__ import annotations

import shutil
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import redis

from tuitalk.errors import LauncherError
from tuitalk.launcher.process import ManagedProcess, wait_for_port

__all__ = ["RedisClusterRunner", "RedisNode"]

#: Failure detection time. Measured here (spikes.md §1): with 1000 ms a killed master is
#: replaced in ~1.8-2.7 s, with 2000 ms in ~3.7 s.
DEFAULT_NODE_TIMEOUT_MS: Final = 1000


@dataclass
class RedisNode:
    name: str
    port: int
    dir: Path
    process: ManagedProcess
    #: The port other nodes and clients are told to use (a fault proxy in chaos runs).
    announce_port: int | None = None

    @property
    def addr(self) -> str:
        return f"127.0.0.1:{self.port}"

    def command(self, *args: str | int, timeout_s: float = 1.0) -> Any:
        """Run one command on this node (sync redis-py); raise LauncherError on failure."""
        client = redis.Redis(
            host="127.0.0.1", port=self.port, socket_timeout=timeout_s,
            socket_connect_timeout=timeout_s, decode_responses=True,
        )
        try:
            return client.execute_command(*args)  # type: ignore[no-untyped-call]
        except (redis.RedisError, OSError) as exc:
            raise LauncherError(f"{' '.join(map(str, args))} on {self.name}: {exc}") from exc
        finally:
            client.close()

    def info(self, section: str, timeout_s: float = 1.0) -> dict[str, Any]:
        return dict(self.command("INFO", section, timeout_s=timeout_s))

    def role(self) -> str:
        """'master', 'slave', or 'down' when the node does not answer."""
        if not self.process.alive() or self.process.frozen:
            return "down"
        try:
            return str(self.info("replication").get("role", "down"))
        except LauncherError:
            return "down"

    def slot_owners(self) -> list[tuple[int, int, int]]:
        """This node's view of the slot map: ``(first, last, master port)`` ranges."""
        raw = self.command("CLUSTER", "SLOTS")
        # Raw reply: [[start, end, [ip, port, id, {...}], [replica...]...], ...]
        return sorted((int(e[0]), int(e[1]), int(e[2][1])) for e in raw if len(e) > 2)


def _redis_server() -> str:
    path = shutil.which("redis-server")
    if not path:
        raise LauncherError("redis-server not found (apt-get install redis-server)")
    return path


def _redis_cli() -> str:
    path = shutil.which("redis-cli")
    if not path:
        raise LauncherError("redis-cli not found (apt-get install redis-tools)")
    return path


class RedisClusterRunner:
    """Start ``2 * masters`` redis-server processes and join them into one cluster."""

    def __init__(
        self,
        base: Path,
        ports: list[int],
        *,
        node_timeout_ms: int = DEFAULT_NODE_TIMEOUT_MS,
        announce_ports: dict[int, int] | None = None,
    ) -> None:
        if len(ports) < 2 or len(ports) % 2:
            raise LauncherError("a cluster needs an even number of nodes (masters + replicas)")
        self.base = base
        self.node_timeout_ms = node_timeout_ms
        self.nodes: list[RedisNode] = []
        announce_ports = announce_ports or {}
        for i, port in enumerate(ports):
            d = base / f"redis-{port}"
            name = f"redis-{i + 1}"
            proc = ManagedProcess(
                name, [_redis_server(), str(d / "redis.conf")], log_path=d / "redis.log", cwd=d
            )
            self.nodes.append(RedisNode(name, port, d, proc, announce_ports.get(port)))

    def _write_config(self, node: RedisNode) -> None:
        node.dir.mkdir(parents=True, exist_ok=True)
        lines = [
            "bind 127.0.0.1",
            f"port {node.port}",
            "protected-mode no",
            f"dir {node.dir}",
            "daemonize no",
            f"pidfile {node.dir / 'redis.pid'}",
            "cluster-enabled yes",
            f"cluster-config-file {node.dir / 'nodes.conf'}",
            f"cluster-node-timeout {self.node_timeout_ms}",
            # Other shards keep serving while one shard fails over.
            "cluster-require-full-coverage no",
            # Any replica may take over, however long it was disconnected.
            "cluster-replica-validity-factor 0",
            # No persistence: a restarted node is empty and resyncs from its master, and a
            # room whose shard lost everything starts a new epoch (seeded from PostgreSQL).
            "appendonly no",
            'save ""',
            # Replicas in sync within ~1.4 s of start instead of ~6 s (spikes.md §1).
            "repl-diskless-sync yes",
            "repl-diskless-sync-delay 0",
            # A frozen replica is dropped after 4 s, so WAIT stops waiting for it and the
            # shard commits in degraded mode instead of stalling for the default 60 s.
            "repl-ping-replica-period 1",
            "repl-timeout 4",
            "cluster-announce-ip 127.0.0.1",
            "loglevel notice",
        ]
        if node.announce_port is not None:
            lines += [
                f"cluster-announce-port {node.announce_port}",
                f"cluster-announce-bus-port {node.port + 10000}",
            ]
        (node.dir / "redis.conf").write_text("\n".join(lines) + "\n")

    def start(self, timeout_s: float = 30.0) -> None:
        """Start all nodes, create the cluster and wait until it is fully healthy."""
        for node in self.nodes:
            if node.dir.exists():
                shutil.rmtree(node.dir)
            self._write_config(node)
            node.process.start()
        for node in self.nodes:
            wait_for_port("127.0.0.1", node.port, 10.0, node.process)
        addrs = [n.addr for n in self.nodes]
        try:
            subprocess.run(
                [_redis_cli(), "--cluster", "create", *addrs, "--cluster-replicas", "1",
                 "--cluster-yes"],
                capture_output=True, text=True, timeout=60, check=True,
            )
        except subprocess.CalledProcessError as exc:
            raise LauncherError(
                f"redis-cli --cluster create failed:\n{exc.stdout}\n{exc.stderr}"
            ) from exc
        self.wait_healthy(timeout_s)

    def wait_healthy(self, timeout_s: float = 30.0) -> None:
        """Wait until every live node says cluster_state:ok, every master has a connected
        replica (when one is alive) and all live nodes agree on the slot map."""
        deadline = time.monotonic() + timeout_s
        last = ""
        while time.monotonic() < deadline:
            ok, last = self._healthy()
            if ok:
                return
            time.sleep(0.05)
        raise LauncherError(f"redis cluster not healthy after {timeout_s:.0f}s: {last}")

    def _healthy(self) -> tuple[bool, str]:
        live = [n for n in self.nodes if n.process.alive() and not n.process.frozen]
        views = set()
        masters = 0
        for n in live:
            try:
                cinfo = _cluster_info(n)
                if cinfo.get("cluster_state") != "ok":
                    return False, f"{n.name} cluster_state={cinfo.get('cluster_state')}"
                rinfo = n.info("replication")
            except LauncherError as exc:
                return False, str(exc)
            if rinfo.get("role") == "master":
                masters += 1
                if int(rinfo.get("connected_slaves", "0")) < 1 and len(live) == len(self.nodes):
                    return False, f"{n.name} has no replica yet"
            elif rinfo.get("master_link_status") != "up":
                return False, f"{n.name} replica link {rinfo.get('master_link_status')}"
            try:
                views.add(tuple(n.slot_owners()))
            except LauncherError as exc:
                return False, str(exc)
        if masters != len(self.nodes) // 2 and len(live) == len(self.nodes):
            return False, f"{masters} masters"
        if len(views) > 1:
            return False, "nodes disagree on the slot map"
        return True, "ok"

    def stop(self) -> None:
        for node in self.nodes:
            node.process.stop(timeout_s=5.0)

    def node(self, name: str) -> RedisNode:
        for n in self.nodes:
            if name in (n.name, n.addr):
                return n
        raise LauncherError(f"no redis node {name!r}")

    def node_by_port(self, port: int) -> RedisNode:
        for n in self.nodes:
            if port in (n.port, n.announce_port):
                return n
        raise LauncherError(f"no redis node on port {port}")

    def master_of_slot(self, slot: int) -> RedisNode:
        """The node that currently serves ``slot`` as master, per the first live node."""
        for n in self.nodes:
            if not n.process.alive() or n.process.frozen:
                continue
            try:
                ranges = n.slot_owners()
            except LauncherError:
                continue
            for lo, hi, port in ranges:
                if lo <= slot <= hi:
                    return self.node_by_port(port)
        raise LauncherError(f"no live node knows the owner of slot {slot}")


def _cluster_info(node: RedisNode) -> dict[str, str]:
    raw = node.command("CLUSTER", "INFO")
    if isinstance(raw, dict):
        return {str(k): str(v) for k, v in raw.items()}
    out: dict[str, str] = {}
    for line in str(raw).splitlines():
        k, sep, v = line.partition(":")
        if sep:
            out[k.strip()] = v.strip()
    return out
