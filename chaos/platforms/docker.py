"""The Docker platform: the compose deployment's containers, broken through the engine API.

Faults (DESIGN.md §6): ``kill`` is ``container.kill()`` (SIGKILL to the container's PID 1:
the whole container dies at once), ``freeze``/``thaw`` are ``container.pause()`` /
``unpause()`` (the cgroup freezer: every process of the container stops, sockets stay
open), ``stop`` is ``container.stop()`` (the image's stop signal, then SIGKILL), ``restart``
is ``container.restart()``. Docker never restarts a container that was killed or stopped
through the API, whatever its restart policy, so a killed node stays down until
:meth:`DockerPlatform.start`, as on the local platform.

Containers are found by the compose labels of one project (``com.docker.compose.project``)
and carry the node name and port in their own labels (``org.tuitalk.node``,
``org.tuitalk.port``, set in compose/docker-compose.yml). Node names are the launcher's:
``backend-N``, ``redis-N``, ``postgres``, ``nginx``. Build the platform after the project
is up; if compose re-creates containers, build a new one.

The Redis logic is the launcher's, unchanged: each container is wrapped as a
:class:`ContainerProcess` (the launcher's :class:`~tuitalk.launcher.process.ManagedProcess`
interface), so :class:`~tuitalk.launcher.redisnodes.RedisNode` and the health checks and
slot lookups of :class:`~tuitalk.launcher.redisnodes.RedisClusterRunner` apply to
containers as they do to local processes.
"""

from __future__ import annotations

import re
import signal
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any, Final

import docker
import docker.errors
import requests.exceptions
from docker.models.containers import Container

from tuitalk.bus.keys import RoomKeys
from tuitalk.errors import LauncherError
from tuitalk.launcher.cluster import BackendProc
from tuitalk.launcher.process import ManagedProcess
from tuitalk.launcher.redisnodes import DEFAULT_NODE_TIMEOUT_MS, RedisClusterRunner, RedisNode

__all__ = ["ContainerProcess", "ContainerRedisCluster", "DockerPlatform", "PlatformError"]

PROJECT_LABEL: Final = "com.docker.compose.project"
NODE_LABEL: Final = "org.tuitalk.node"
PORT_LABEL: Final = "org.tuitalk.port"
#: Seconds a graceful stop may take before the engine sends SIGKILL (backends need ~2 s to
#: close their clients with 1012; PostgreSQL's fast shutdown writes a checkpoint).
STOP_TIMEOUT_S: Final = 10


class PlatformError(LauncherError):
    """A container operation failed, or the deployment is not what this platform expects.

    A :class:`~tuitalk.errors.LauncherError`, so code written for the local platform catches
    it too; the engine's own exception is chained (``raise ... from``).
    """


def _node_key(name: str) -> tuple[str, int]:
    """Sort ``backend-10`` after ``backend-2``."""
    base, _, num = name.rpartition("-")
    return (base, int(num)) if num.isdigit() else (name, 0)


class ContainerProcess(ManagedProcess):
    """One container seen through the launcher's process interface.

    ``alive()`` is true while the container runs, paused or not (a frozen process is alive
    too); ``frozen`` is true while it is paused. Both ask the engine each time, so they stay
    right whoever changed the container. Methods raise :class:`PlatformError`.
    """

    def __init__(self, name: str, container: Container) -> None:
        super().__init__(name, [], log_path=Path("/dev/null"))
        self.container = container

    def _state(self) -> dict[str, Any]:
        try:
            self.container.reload()
        except docker.errors.NotFound as exc:
            raise PlatformError(f"{self.name}: container {self.container.short_id} is gone"
                                ) from exc
        return dict(self.container.attrs["State"])

    def _call(self, what: str, fn: Any, *args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except (docker.errors.APIError, requests.exceptions.RequestException) as exc:
            raise PlatformError(f"{what} {self.name}: {exc}") from exc

    @property
    def frozen(self) -> bool:
        return bool(self._state().get("Paused"))

    @frozen.setter
    def frozen(self, value: bool) -> None:
        # ManagedProcess keeps a flag; the engine's state is the truth here.
        pass

    @property
    def pid(self) -> int | None:
        pid = int(self._state().get("Pid") or 0)
        return pid or None

    def alive(self) -> bool:
        return bool(self._state().get("Running"))

    def start(self) -> None:
        if self.alive():
            raise PlatformError(f"{self.name} is already running")
        self._call("start", self.container.start)

    def send_signal(self, sig: int) -> None:
        if self.alive():
            self._call(f"signal {sig} to", self.container.kill, signal=int(sig))

    def kill(self) -> None:
        """SIGKILL the container (thawed first, as the local platform does)."""
        if not self.alive():
            return
        if self.frozen:
            self.thaw()
        self._call("kill", self.container.kill)
        self.wait(10.0)

    def freeze(self) -> None:
        self._call("pause", self.container.pause)

    def thaw(self) -> None:
        if self.frozen:
            self._call("unpause", self.container.unpause)

    def stop(self, sig: int = signal.SIGTERM, timeout_s: float = STOP_TIMEOUT_S) -> None:
        """``container.stop()``: the container's own stop signal (compose sets SIGINT for
        PostgreSQL), SIGKILL after ``timeout_s``. ``sig`` is ignored: the image decides."""
        if not self.alive():
            return
        if self.frozen:
            self.thaw()
        self._call("stop", self.container.stop, timeout=int(timeout_s))

    def restart(self, timeout_s: float = STOP_TIMEOUT_S) -> None:
        """``container.restart()``: stop as :meth:`stop` does, then start."""
        if self.frozen:
            self.thaw()
        self._call("restart", self.container.restart, timeout=int(timeout_s))

    def wait(self, timeout_s: float) -> bool:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if not self.alive():
                return True
            time.sleep(0.05)
        return not self.alive()

    def log_tail(self, lines: int = 30) -> str:
        try:
            return bytes(self.container.logs(tail=lines)).decode(errors="replace")
        except (docker.errors.APIError, requests.exceptions.RequestException):
            return ""


class ContainerRedisCluster(RedisClusterRunner):
    """The launcher's Redis Cluster logic over the six Redis containers.

    Inherits ``wait_healthy`` (cluster_state ok everywhere, every master with a connected
    replica, all live nodes agreeing on the slot map), ``master_of_slot``, ``node`` and
    ``node_by_port``. The cluster itself is created by the compose project's ``bootstrap``
    service, so :meth:`start` refuses.
    """

    def __init__(self, nodes: list[RedisNode], *,
                 node_timeout_ms: int = DEFAULT_NODE_TIMEOUT_MS) -> None:
        # Not RedisClusterRunner.__init__: that one makes local processes and directories.
        self.base = Path("/data")
        self.node_timeout_ms = node_timeout_ms
        self.nodes = nodes

    def start(self, timeout_s: float = 30.0) -> None:
        raise PlatformError("the compose project creates the cluster (service bootstrap)")

    def stop(self) -> None:
        for node in self.nodes:
            node.process.stop(timeout_s=5.0)


class DockerPlatform:
    """Nemesis platform over one compose project (see the module docstring).

    Raises :class:`PlatformError` when the project has no TuiTalk containers, and from any
    operation the engine refuses.
    """

    name = "docker"

    def __init__(self, project: str, client: docker.DockerClient | None = None) -> None:
        self.project = project
        try:
            self.client = client or docker.from_env(timeout=60)
            found = self.client.containers.list(
                all=True, filters={"label": [f"{PROJECT_LABEL}={project}", NODE_LABEL]})
        except docker.errors.DockerException as exc:
            raise PlatformError(f"cannot list the containers of {project!r}: {exc}") from exc
        self.procs: dict[str, ContainerProcess] = {}
        self.ports: dict[str, int] = {}
        for c in found:
            if c.labels.get("com.docker.compose.oneoff") == "True":
                continue  # `compose run` containers are not nodes
            node = c.labels[NODE_LABEL]
            if node in self.procs:
                raise PlatformError(f"two containers of {project!r} claim node {node}")
            self.procs[node] = ContainerProcess(node, c)
            self.ports[node] = int(c.labels[PORT_LABEL])
        names = sorted(self.procs, key=_node_key)
        self._backends = [BackendProc(n, self.ports[n], self.procs[n])
                          for n in names if n.startswith("backend-")]
        self.redis = ContainerRedisCluster(
            [RedisNode(n, self.ports[n], Path("/data"), self.procs[n])
             for n in names if n.startswith("redis-")])
        if not self._backends or not self.redis.nodes:
            raise PlatformError(f"no TuiTalk deployment in compose project {project!r}")

    # -- addresses ----------------------------------------------------------------------------

    @property
    def url(self) -> str:
        """nginx's WebSocket endpoint (what clients connect to)."""
        return f"ws://127.0.0.1:{self.ports['nginx']}/ws"

    @property
    def http_url(self) -> str:
        return f"http://127.0.0.1:{self.ports['nginx']}/"

    def container(self, node: str) -> Container:
        return self.process(node).container

    def process(self, node: str) -> ContainerProcess:
        try:
            return self.procs[node]
        except KeyError:
            raise PlatformError(f"no node {node!r} in {self.project!r}") from None

    def node_names(self) -> list[str]:
        return sorted(self.procs, key=_node_key)

    # -- the Platform protocol -----------------------------------------------------------------

    def backends(self) -> list[str]:
        return [b.name for b in self._backends]

    def redis_nodes(self) -> list[str]:
        return [n.name for n in self.redis.nodes]

    def redis_master_for_room(self, room: str) -> str:
        """The Redis node serving room ``room``'s slot as master (CLUSTER SLOTS of the
        first live node)."""
        return self.redis.master_of_slot(RoomKeys(room).slot).name

    def busiest_backend(self) -> str:
        """The live backend with the most client connections (from its /metrics)."""
        best, most = self.backends()[0], -1.0
        for b in self._backends:
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
        return self.process(node).alive()

    def kill(self, node: str) -> None:
        """``container.kill()`` (SIGKILL); a paused container is unpaused first."""
        self.process(node).kill()

    def freeze(self, node: str) -> None:
        """``container.pause()``: every process of the container stops."""
        self.process(node).freeze()

    def thaw(self, node: str) -> None:
        self.process(node).thaw()

    def stop(self, node: str) -> None:
        """``container.stop()``: graceful (backends close their clients with 1012)."""
        self.process(node).stop()

    def start(self, node: str, timeout_s: float = 30.0) -> None:
        """Start a stopped or killed node and wait until it serves again.

        A Redis node is started only after its replica took over its slots: nodes run
        without persistence, so a master restarted before the failover would come back
        empty as master and its replica would copy the empty data set.
        """
        proc = self.process(node)
        if node.startswith("redis-"):
            self._wait_slots_moved_away(self.redis.node(node), timeout_s)
            proc.start()
            self.redis.wait_healthy(timeout_s)
            return
        proc.start()
        self._wait_serving(node, timeout_s)

    def restart(self, node: str) -> None:
        """``container.restart()`` and wait until the node serves; Redis nodes are killed
        and started instead (see :meth:`start`)."""
        if node.startswith("redis-"):
            self.kill(node)
            self.start(node)
            return
        self.process(node).restart()
        self._wait_serving(node, 30.0)

    def wait_healthy(self, timeout_s: float = 60.0) -> None:
        """Redis Cluster healthy (the launcher's checks) and every backend ready."""
        self.redis.wait_healthy(timeout_s)
        for b in self._backends:
            self._wait_serving(b.name, timeout_s)

    def redis_role(self, node: str) -> str:
        """'master', 'slave' or 'down'."""
        return self.redis.node(node).role()

    def room_commit(self, room: str) -> int:
        """The room's committed seq, read from the master owning its slot."""
        keys = RoomKeys(room)
        master = self.redis.master_of_slot(keys.slot)
        return int(master.command("HGET", keys.meta, "commit") or 0)

    def archived_seq(self, room: str) -> int:
        """The highest seq of ``room`` in PostgreSQL (psql inside the postgres container)."""
        return int(self.pg_query(
            f"SELECT coalesce(max(seq), 0) FROM messages WHERE room = '{room}'") or 0)

    def pg_query(self, sql: str) -> str:
        """Run ``sql`` with psql inside the postgres container; the unaligned output."""
        rc, out = self.container("postgres").exec_run(
            ["psql", "-h", "127.0.0.1", "-p", str(self.ports["postgres"]), "-U", "tuitalk",
             "-d", "tuitalk", "-tAc", sql])
        text = out.decode() if isinstance(out, bytes) else str(out)
        if rc != 0:
            raise PlatformError(f"psql {sql!r}: {text}")
        return text.strip()

    @property
    def pg_dsn(self) -> str:
        return f"postgresql://tuitalk@127.0.0.1:{self.ports['postgres']}/tuitalk"

    def heal(self) -> None:
        """Unpause what is paused, start what is down, wait until healthy."""
        for node in self.node_names():
            self.process(node).thaw()
        for node in self.node_names():
            if not self.process(node).alive():
                self.start(node)
        self.wait_healthy()

    # -- waiting -------------------------------------------------------------------------------

    def _wait_serving(self, node: str, timeout_s: float) -> None:
        """Until ``node`` does its job: a backend answers /readyz, nginx /healthz,
        PostgreSQL ``pg_isready``. Fails at once if the container exits."""
        proc = self.process(node)
        port = self.ports[node]
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if not proc.alive():
                raise PlatformError(f"{node} exited:\n{proc.log_tail()}")
            if self._serving(node, port):
                return
            time.sleep(0.05)
        raise PlatformError(f"{node} not serving after {timeout_s:.0f}s:\n{proc.log_tail()}")

    def _serving(self, node: str, port: int) -> bool:
        if node.startswith("backend-"):
            path = "readyz"
        elif node == "nginx":
            path = "healthz"
        elif node == "postgres":
            try:
                rc, _ = self.container(node).exec_run(
                    ["pg_isready", "-q", "-h", "127.0.0.1", "-p", str(port), "-U", "tuitalk",
                     "-d", "tuitalk"])
            except docker.errors.APIError:
                return False
            return rc == 0
        else:
            return True
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/{path}", timeout=0.5) as r:
                return bool(r.status == 200)
        except (urllib.error.URLError, OSError, TimeoutError):
            return False

    def _wait_slots_moved_away(self, node: RedisNode, timeout_s: float) -> None:
        """Wait until no live node names ``node`` as the master of any slot."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            owners: set[int] = set()
            for other in self.redis.nodes:
                if other is node or not other.process.alive() or other.process.frozen:
                    continue
                try:
                    owners = {p for _, _, p in other.slot_owners()}
                    break
                except LauncherError:
                    continue
            if node.port not in owners:
                return
            time.sleep(0.05)
        raise PlatformError(f"{node.name}'s slots were not taken over within {timeout_s:.0f}s")
