"""Bring the compose project up or down, on loopback ports given by environment variables.

::

    python -m compose.deploy up [-p PROJECT]     # engine, images, containers; waits ready
    python -m compose.deploy status [-p PROJECT]
    python -m compose.deploy logs DIR [-p PROJECT]
    python -m compose.deploy down [-p PROJECT]   # removes every container of the project
    python -m compose.dockerd stop               # then, if you want the engine gone too

Ports come from ``TUITALK_NGINX_PORT``, ``TUITALK_BACKEND_PORT_1..3``,
``TUITALK_REDIS_PORT_1..6`` and ``TUITALK_PG_PORT`` (defaults: 8090, 9101-9103,
7101-7106, 5442; see docker-compose.yml); backend and PostgreSQL settings from
``TUITALK_RATE_PER_S``, ``TUITALK_RATE_BURST``, ``TUITALK_STREAM_MAX``, ``TUITALK_PG_FAST``.

The compose tool is docker-compose v1 (Debian's ``docker-compose`` package: the compose
plugin is not packaged for bookworm and nothing can be downloaded from outside the package
registries), or ``docker compose`` where that plugin exists. Both read the same file.
"""

from __future__ import annotations

import argparse
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final

from tuitalk.launcher.ports import PortAllocator

__all__ = [
    "COMPOSE_FILE", "DeployError", "Deployment", "Ports", "compose_command", "owner_id",
    "remove_abandoned",
]

COMPOSE_DIR: Final = Path(__file__).resolve().parent
COMPOSE_FILE: Final = COMPOSE_DIR / "docker-compose.yml"
N_BACKENDS: Final = 3
N_REDIS: Final = 6


class DeployError(RuntimeError):
    """The deployment did not come up (or down); the message says which part and why."""


@dataclass(frozen=True)
class Ports:
    """Every port of one deployment (all on 127.0.0.1). Defaults as in docker-compose.yml."""

    nginx: int = 8090
    backends: tuple[int, ...] = (9101, 9102, 9103)
    redis: tuple[int, ...] = (7101, 7102, 7103, 7104, 7105, 7106)
    postgres: int = 5442

    def env(self) -> dict[str, str]:
        """The ``TUITALK_*`` variables docker-compose.yml reads."""
        out = {"TUITALK_NGINX_PORT": str(self.nginx), "TUITALK_PG_PORT": str(self.postgres)}
        out.update({f"TUITALK_BACKEND_PORT_{i + 1}": str(p) for i, p in enumerate(self.backends)})
        out.update({f"TUITALK_REDIS_PORT_{i + 1}": str(p) for i, p in enumerate(self.redis)})
        return out

    @classmethod
    def from_env(cls, env: dict[str, str] | None = None) -> Ports:
        e = dict(os.environ if env is None else env)
        d = cls()
        return cls(
            nginx=int(e.get("TUITALK_NGINX_PORT", d.nginx)),
            backends=tuple(int(e.get(f"TUITALK_BACKEND_PORT_{i + 1}", p))
                           for i, p in enumerate(d.backends)),
            redis=tuple(int(e.get(f"TUITALK_REDIS_PORT_{i + 1}", p))
                        for i, p in enumerate(d.redis)),
            postgres=int(e.get("TUITALK_PG_PORT", d.postgres)),
        )

    @classmethod
    def free(cls) -> Ports:
        """Ports nobody listens on now (Redis: ``p`` and the bus port ``p + 10000``)."""
        alloc = PortAllocator()
        return cls(
            nginx=alloc.port(),
            backends=tuple(alloc.port() for _ in range(N_BACKENDS)),
            redis=tuple(alloc.redis_port() for _ in range(N_REDIS)),
            postgres=alloc.port(),
        )


def compose_command() -> list[str]:
    """``docker-compose`` (v1) if installed, else the ``docker compose`` plugin."""
    v1 = shutil.which("docker-compose")
    if v1:
        return [v1]
    probe = subprocess.run(["docker", "compose", "version"], capture_output=True, check=False)
    if probe.returncode == 0:
        return ["docker", "compose"]
    raise DeployError("no compose tool: apt-get install docker-compose")


def owner_id(pid: int | None = None) -> str | None:
    """``<pid>:<start time>`` of a process (this one by default), None if it is gone: the
    start time makes a reused PID count as a different process."""
    pid = os.getpid() if pid is None else pid
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # Field 22 (starttime), counted after the ")" that ends the command name.
    return f"{pid}:{stat.rpartition(')')[2].split()[19]}"


def remove_abandoned(project_prefix: str) -> list[str]:
    """Remove the containers of projects named ``<project_prefix>...`` whose owner process
    (label ``org.tuitalk.owner``) no longer exists: what a killed test run left behind.
    Projects of live processes (another test run, say) are left alone. Returns the IDs
    removed."""
    out = subprocess.run(
        ["docker", "ps", "--all", "--filter", "label=org.tuitalk.owner", "--format",
         '{{.ID}} {{.Label "com.docker.compose.project"}} {{.Label "org.tuitalk.owner"}}'],
        capture_output=True, text=True, check=False).stdout
    dead = []
    for line in out.splitlines():
        cid, project, owner = [*line.split(), "", ""][:3]
        if not project.startswith(project_prefix) or not owner:
            continue
        pid = owner.partition(":")[0]
        if not pid.isdigit() or owner_id(int(pid)) != owner:
            dead.append(cid)
    if dead:
        subprocess.run(["docker", "rm", "--force", "--volumes", *dead], capture_output=True,
                       check=False)
    return dead


def _http_ok(url: str, timeout_s: float = 1.0) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=timeout_s) as resp:
            return bool(resp.status == 200)
    except (urllib.error.URLError, OSError, TimeoutError):
        return False


def _accepts(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return True
    except OSError:
        return False


@dataclass
class Deployment:
    """One compose project: ``up()`` starts it and waits until it serves, ``down()``
    removes every container it has (also after a failed ``up``)."""

    project: str = "tuitalk"
    ports: Ports = field(default_factory=Ports)
    #: Extra environment for docker-compose.yml (backend rate limits, TUITALK_PG_FAST, ...).
    settings: dict[str, str] = field(default_factory=dict)

    @property
    def url(self) -> str:
        """What clients connect to: nginx's WebSocket endpoint."""
        return f"ws://127.0.0.1:{self.ports.nginx}/ws"

    @property
    def http_url(self) -> str:
        return f"http://127.0.0.1:{self.ports.nginx}/"

    def env(self) -> dict[str, str]:
        env = dict(os.environ)
        # docker-compose v1 is a Python program whose package is also called `compose`:
        # with this repository on PYTHONPATH it would import this package instead.
        env.pop("PYTHONPATH", None)
        env.update(self.ports.env())
        env["TUITALK_OWNER"] = owner_id() or ""
        env.update(self.settings)
        return env

    def compose(self, *args: str, timeout_s: float = 300.0) -> str:
        """Run one compose command on this project; returns its output.
        Raises DeployError with the output when it fails."""
        argv = [*compose_command(), "--project-name", self.project, "--file", str(COMPOSE_FILE),
                "--project-directory", str(COMPOSE_DIR), *args]
        try:
            proc = subprocess.run(argv, env=self.env(), capture_output=True, text=True,
                                  timeout=timeout_s, check=False)
        except subprocess.TimeoutExpired as exc:
            raise DeployError(f"{' '.join(args)} timed out after {timeout_s:.0f}s") from exc
        if proc.returncode != 0:
            raise DeployError(f"{' '.join(argv)} failed:\n{proc.stdout}{proc.stderr}")
        return proc.stdout + proc.stderr

    def up(self, timeout_s: float = 120.0) -> float:
        """``up -d`` and wait until every backend is ready, nginx answers ``/healthz``
        and PostgreSQL accepts connections. Returns the seconds it took. The images must
        exist (:func:`compose.images.ensure_images`). Raises DeployError (the containers
        stay for inspection: call :meth:`down`)."""
        started = time.monotonic()
        busy = [p for p in (self.ports.nginx, self.ports.postgres, *self.ports.backends,
                            *self.ports.redis, *(r + 10000 for r in self.ports.redis))
                if _accepts(p)]
        if busy:
            raise DeployError(f"ports already in use on 127.0.0.1: {busy}")
        # docker-compose waits for the Redis bootstrap before it starts the backends.
        self.compose("up", "--detach", "--no-build", timeout_s=timeout_s)
        waits = {f"backend on {p}": f"http://127.0.0.1:{p}/readyz" for p in self.ports.backends}
        waits["nginx"] = f"http://127.0.0.1:{self.ports.nginx}/healthz"
        deadline = started + timeout_s
        while waits or not _accepts(self.ports.postgres):
            waits = {k: u for k, u in waits.items() if not _http_ok(u)}
            if time.monotonic() > deadline:
                missing = [*waits] + ([] if _accepts(self.ports.postgres) else ["postgres"])
                raise DeployError(f"not ready after {timeout_s:.0f}s: {missing}")
            time.sleep(0.1)
        return time.monotonic() - started

    def containers(self) -> list[str]:
        """IDs of every container of this project (running or not)."""
        out = subprocess.run(
            ["docker", "ps", "--all", "--quiet", "--filter",
             f"label=com.docker.compose.project={self.project}"],
            capture_output=True, text=True, check=False).stdout
        return out.split()

    def down(self, timeout_s: float = 120.0) -> None:
        """Remove every container of the project. A backend gets 2 s to close its clients
        (it needs about that much); anything compose leaves behind is removed by its ID."""
        errors = []
        try:
            self.compose("down", "--timeout", "2", "--remove-orphans", timeout_s=timeout_s)
        except DeployError as exc:
            errors.append(str(exc))
        left = self.containers()
        if left:
            subprocess.run(["docker", "rm", "--force", "--volumes", *left],
                           capture_output=True, check=False)
        if self.containers():
            raise DeployError(f"containers of {self.project} survived down: {errors}")

    def save_logs(self, dest: Path) -> None:
        """``docker logs`` of every container of the project into ``dest/<name>.log``."""
        dest.mkdir(parents=True, exist_ok=True)
        for cid in self.containers():
            name = subprocess.run(
                ["docker", "inspect", "-f",
                 '{{ index .Config.Labels "com.docker.compose.service" }}', cid],
                capture_output=True, text=True, check=False).stdout.strip() or cid
            with (dest / f"{name}.log").open("wb") as out:
                subprocess.run(["docker", "logs", "--timestamps", cid], stdout=out,
                               stderr=subprocess.STDOUT, check=False)


def _say(text: str) -> None:
    """Command-line output (the library functions above print nothing)."""
    sys.stdout.write(f"{text}\n")


def main(argv: list[str] | None = None) -> int:
    from compose import dockerd, images

    ap = argparse.ArgumentParser(prog="python -m compose.deploy", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("action", choices=["up", "down", "status", "logs"])
    ap.add_argument("dir", nargs="?", type=Path, help="where `logs` writes")
    ap.add_argument("-p", "--project", default=os.environ.get("TUITALK_PROJECT", "tuitalk"))
    args = ap.parse_args(argv)
    deployment = Deployment(args.project, Ports.from_env())
    try:
        if args.action == "up":
            dockerd.start()
            _say(images.ensure_images().summary())
            took = deployment.up()
            _say(f"{args.project} is up in {took:.1f}s: open {deployment.http_url} or run "
                  f"`tuitalk-cli --url {deployment.url}`")
        elif args.action == "down":
            deployment.down()
            _say(f"{args.project} removed")
        elif args.action == "status":
            _say(deployment.compose("ps"))
        else:
            if args.dir is None:
                ap.error("logs needs a directory")
            deployment.save_logs(args.dir)
    except (DeployError, images.ImageBuildError, dockerd.DockerdError) as exc:
        sys.stderr.write(f"{exc}\n")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
