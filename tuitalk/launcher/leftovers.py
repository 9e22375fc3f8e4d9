"""Stop the nodes of a local cluster whose ``tuitalk up`` ended without stopping them.

``tuitalk up`` stops everything on Ctrl-C, SIGTERM and SIGHUP (a closed terminal), but not
when it is killed outright (SIGKILL, an out-of-memory kill, a crash of the machine's session
manager). Its nodes then run on, each in a session of its own, holding their ports, and the
next ``tuitalk up`` would fail on "port 8080 is in use". That run reads the state file the
dead launcher left (``cluster.json``: its PID and each node's PID and port) and stops those
nodes, by PID only, and only a PID whose command line still names the node's port or the
cluster's directory: a PID the system has since given to another program is left alone.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import time
from pathlib import Path
from typing import Any

__all__ = ["launcher_alive", "stop_leftovers"]

#: How long a node may take to stop gracefully before it is killed.
GRACE_S = 10.0


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except OSError:
        return False
    try:  # a zombie has stopped; its parent (gone with the launcher) never reaped it
        return "Z" not in Path(f"/proc/{pid}/stat").read_text().split(") ", 1)[1][:1]
    except (OSError, IndexError):
        return False


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(
            errors="replace")
    except OSError:
        return ""


def _ours(node: dict[str, Any], base: str) -> bool:
    """Whether the process now at ``node['pid']`` is still that node."""
    cmd = _cmdline(int(node["pid"]))
    port = str(node.get("port", ""))
    return bool(cmd) and (
        (bool(base) and base in cmd)
        or f"127.0.0.1:{port}" in cmd  # redis-server rewrites its title to host:port
        or f"--port {port}" in cmd  # tuitalk serve
        or f"-p {port}" in cmd  # postgres
    )


def launcher_alive(state: dict[str, Any]) -> bool:
    pid = state.get("launcher_pid")
    return isinstance(pid, int) and pid != os.getpid() and _alive(pid)


def stop_leftovers(state_file: Path) -> list[str]:
    """Stop the nodes ``state_file`` lists that still run; return their names.

    Call only when :func:`launcher_alive` is false. Removes the state file.
    """
    try:
        state = json.loads(state_file.read_text())
    except (OSError, ValueError):
        return []
    base = str(state.get("base", ""))
    nodes = [n for n in state.get("nodes", [])
             if isinstance(n.get("pid"), int) and _alive(n["pid"]) and _ours(n, base)]
    for n in nodes:
        # postgres: SIGINT is its fast shutdown (SIGTERM would wait for its clients).
        sig = signal.SIGINT if n.get("kind") == "postgres" else signal.SIGTERM
        try:
            os.kill(n["pid"], sig)
            os.kill(n["pid"], signal.SIGCONT)  # a node left frozen cannot act on it
        except OSError:
            pass
    deadline = time.monotonic() + GRACE_S
    while time.monotonic() < deadline and any(_alive(n["pid"]) for n in nodes):
        time.sleep(0.1)
    for n in nodes:
        if _alive(n["pid"]):
            with contextlib.suppress(OSError):
                os.kill(n["pid"], signal.SIGKILL)
    state_file.unlink(missing_ok=True)
    return [str(n.get("name")) for n in nodes]
