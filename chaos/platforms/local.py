"""The local platform: the launcher's processes, signalled by PID."""

from __future__ import annotations

import re

from tuitalk.bus.keys import RoomKeys
from tuitalk.launcher.cluster import LocalCluster

__all__ = ["LocalPlatform"]


class LocalPlatform:
    """Nemesis platform over a :class:`~tuitalk.launcher.cluster.LocalCluster`."""

    name = "local"

    def __init__(self, cluster: LocalCluster) -> None:
        self.cluster = cluster

    def backends(self) -> list[str]:
        return [b.name for b in self.cluster.backends]

    def redis_nodes(self) -> list[str]:
        return [n.name for n in self.cluster.redis.nodes]

    def redis_master_for_room(self, room: str) -> str:
        return self.cluster.redis_master_for_room(room).name

    def busiest_backend(self) -> str:
        """The live backend with the most client connections (from its /metrics)."""
        best, most = self.backends()[0], -1.0
        for b in self.cluster.backends:
            if not b.process.alive() or b.process.frozen:
                continue
            try:
                text = b.metrics()
            except OSError:
                continue
            m = re.search(r"^tuitalk_connections (\S+)$", text, re.MULTILINE)
            n = float(m.group(1)) if m else 0.0
            if n > most:
                best, most = b.name, n
        return best

    def alive(self, node: str) -> bool:
        return self.cluster.process(node).alive()

    def kill(self, node: str) -> None:
        self.cluster.kill(node)

    def freeze(self, node: str) -> None:
        self.cluster.freeze(node)

    def thaw(self, node: str) -> None:
        self.cluster.thaw(node)

    def stop(self, node: str) -> None:
        self.cluster.stop_node(node)

    def start(self, node: str) -> None:
        self.cluster.start_node(node)

    def restart(self, node: str) -> None:
        self.cluster.restart(node)

    def redis_role(self, node: str) -> str:
        """'master', 'slave' or 'down'."""
        return self.cluster.redis.node(node).role()

    def room_commit(self, room: str) -> int:
        """The room's committed seq, read from the master owning its slot."""
        keys = RoomKeys(room)
        master = self.cluster.redis_master_for_room(room)
        return int(master.command("HGET", keys.meta, "commit") or 0)

    def archived_seq(self, room: str) -> int:
        """The highest seq of ``room`` in PostgreSQL."""
        assert self.cluster.pg is not None
        return int(self.cluster.pg.query(
            f"SELECT coalesce(max(seq), 0) FROM messages WHERE room = '{room}'") or 0)

    def wait_healthy(self, timeout_s: float = 60.0) -> None:
        self.cluster.redis.wait_healthy(timeout_s)
        for b in self.cluster.backends:
            self.cluster.wait_backend_ready(b, timeout_s)

    def heal(self) -> None:
        for name in self.cluster.node_names():
            proc = self.cluster.process(name)
            if proc.frozen:
                proc.thaw()
        for name in self.cluster.node_names():
            if not self.cluster.process(name).alive():
                self.cluster.start_node(name)
        self.wait_healthy()
