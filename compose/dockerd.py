"""Our own Docker engine, started only when none is running, and stopped by its PID only.

Usage::

    python -m compose.dockerd start    # no-op (exit 0) when an engine already answers
    python -m compose.dockerd status   # exit 0 if an engine answers, 1 if not
    python -m compose.dockerd stop     # stops the engine *this module* started, nothing else

The engine runs with the settings this machine needs: ``vfs`` storage (works on any file
system, no overlay mounts), no iptables rules, no IP forwarding or masquerading and no
default bridge: every container of the deployment uses host networking on loopback ports,
so the engine needs no network of its own, and creating none means no private-range
address appears on the machine.

The engine's PID is in :data:`PIDFILE` (written by dockerd itself). :func:`stop` signals that
PID only after checking that it still is a ``dockerd`` started with that pidfile, so it can
never stop an engine somebody else started, nor a process that reused the PID.

Environment:

- ``TUITALK_DOCKER_ROOT``: data root, default ``/var/lib/docker`` (images outlive the work
  tree, so a fresh clone on the same machine, CI's for one, finds them built);
- ``TUITALK_DOCKER_STORAGE``: storage driver, default ``vfs``;
- ``DOCKER_HOST``: the socket (``unix://`` only), default ``/var/run/docker.sock``.

An engine that already answers on the socket is used as it is, whatever its settings.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Final

__all__ = ["PIDFILE", "DockerdError", "engine_running", "socket_path", "start", "stop"]

PIDFILE: Final = Path("/run/tuitalk-dockerd.pid")
REPO: Final = Path(__file__).resolve().parent.parent
LOG: Final = REPO / "var" / "docker" / "dockerd.log"
DEFAULT_SOCKET: Final = "/var/run/docker.sock"


class DockerdError(RuntimeError):
    """The engine could not be started or stopped (the message says why)."""


def socket_path() -> str:
    """The engine's Unix socket, from ``DOCKER_HOST`` or the default."""
    host = os.environ.get("DOCKER_HOST", "")
    if not host:
        return DEFAULT_SOCKET
    if not host.startswith("unix://"):
        raise DockerdError(f"DOCKER_HOST={host!r}: only unix:// sockets are supported here")
    return host.removeprefix("unix://")


def engine_running(sock: str | None = None, timeout_s: float = 2.0) -> bool:
    """True if an engine answers ``GET /_ping`` with ``OK`` on its socket."""
    path = sock or socket_path()
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
            s.settimeout(timeout_s)
            s.connect(path)
            s.sendall(b"GET /_ping HTTP/1.0\r\nHost: docker\r\n\r\n")
            reply = b""
            while chunk := s.recv(4096):
                reply += chunk
    except OSError:
        return False
    return reply.startswith(b"HTTP/1.") and reply.rstrip().endswith(b"OK")


def _our_pid() -> int | None:
    """The PID in our pidfile if that process is a dockerd started with our pidfile."""
    try:
        pid = int(PIDFILE.read_text().strip())
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except (OSError, ValueError):
        return None
    if not cmdline or not cmdline[0].endswith(b"dockerd"):
        return None
    if f"--pidfile={PIDFILE}".encode() not in cmdline:
        return None
    return pid


def start(timeout_s: float = 60.0) -> bool:
    """Make sure an engine answers; start ours if none does.

    Returns True if this call started the engine (the caller may :func:`stop` it later),
    False if one was already running. Raises :class:`DockerdError` if ``dockerd`` is not
    installed (``apt-get install docker.io``) or does not answer within ``timeout_s``.
    """
    sock = socket_path()
    if engine_running(sock):
        return False
    binary = shutil.which("dockerd") or ("/usr/sbin/dockerd"
                                         if Path("/usr/sbin/dockerd").exists() else None)
    if binary is None:
        raise DockerdError("dockerd not found (apt-get install docker.io)")
    root = os.environ.get("TUITALK_DOCKER_ROOT", "/var/lib/docker")
    storage = os.environ.get("TUITALK_DOCKER_STORAGE", "vfs")
    argv = [
        binary, f"--host=unix://{sock}", f"--pidfile={PIDFILE}", f"--data-root={root}",
        f"--storage-driver={storage}", "--iptables=false", "--ip6tables=false",
        "--ip-forward=false", "--ip-masq=false", "--bridge=none", "--log-level=warn",
    ]
    LOG.parent.mkdir(parents=True, exist_ok=True)
    with LOG.open("ab") as log:
        log.write(f"\n== {time.strftime('%Y-%m-%d %H:%M:%S')} {' '.join(argv)}\n".encode())
        log.flush()
        # The engine must outlive this process: a shell backgrounds it and exits at once,
        # so nothing of ours waits for (or reaps) it; dockerd writes its own pidfile.
        subprocess.run(["sh", "-c", 'exec "$@" </dev/null &', "sh", *argv],
                       stdout=log, stderr=log, check=True, start_new_session=True)
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if engine_running(sock):
            return True
        time.sleep(0.1)
    tail = LOG.read_text(errors="replace").splitlines()[-20:]
    raise DockerdError(f"dockerd did not answer on {sock} within {timeout_s:.0f}s:\n"
                       + "\n".join(tail))


def stop(timeout_s: float = 30.0) -> bool:
    """Stop the engine :func:`start` started (SIGTERM, then SIGKILL after ``timeout_s``).

    Returns False when there is nothing of ours to stop (no pidfile, or its PID is not our
    dockerd). An engine somebody else started is never touched. dockerd stops the
    containerd it started itself; running containers are stopped by the engine.
    """
    pid = _our_pid()
    if pid is None:
        return False
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if _our_pid() != pid:
            return True
        time.sleep(0.1)
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL)
    return True


def _say(text: str) -> None:
    """Command-line output (the library functions above print nothing)."""
    sys.stdout.write(f"{text}\n")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m compose.dockerd", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("action", choices=["start", "stop", "status"])
    args = ap.parse_args(argv)
    try:
        if args.action == "start":
            started = start()
            _say("dockerd started" if started else "an engine is already running")
        elif args.action == "stop":
            _say("dockerd stopped" if stop() else "no dockerd of ours is running")
        else:
            running = engine_running()
            _say(f"engine {'running' if running else 'not running'} on {socket_path()}")
            return 0 if running else 1
    except DockerdError as exc:
        sys.stderr.write(f"{exc}\n")
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
