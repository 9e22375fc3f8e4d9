"""The ``tuitalk`` command: ``up`` (local cluster), ``status``, ``serve`` (one backend)."""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import signal
import socket
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

__all__ = ["main"]


def _home() -> Path:
    env = os.environ.get("TUITALK_HOME")
    if env:
        return Path(env)
    from tuitalk.launcher.cluster import repo_root

    return repo_root() / "var"


def _web_dirs() -> tuple[Path | None, Path | None]:
    from tuitalk.launcher.cluster import repo_root

    web = repo_root() / "clients" / "web"
    static = web / "static"
    pyodide = web / "node_modules" / "pyodide"
    return (static if static.is_dir() else None, pyodide if pyodide.is_dir() else None)


def cmd_up(args: argparse.Namespace) -> int:
    from tuitalk.errors import LauncherError
    from tuitalk.launcher.cluster import ClusterSpec, LocalCluster
    from tuitalk.launcher.leftovers import launcher_alive, stop_leftovers
    from tuitalk.launcher.ports import port_is_free
    from tuitalk.launcher.supervisor import Supervisor

    base = _home() / "local"
    state = base / "cluster.json"
    if state.exists():
        try:
            old = json.loads(state.read_text())
        except (OSError, ValueError):
            old = {}
        if launcher_alive(old):
            print(f"a local cluster is already running (see `tuitalk status`): {old['url']}")
            return 1
        left = stop_leftovers(state)
        if left:
            print(f"Stopped what an earlier `tuitalk up` left running: {', '.join(left)}",
                  flush=True)
    if not port_is_free(args.port):
        print(f"port {args.port} is in use; pick another with --port")
        return 1
    web, pyodide = _web_dirs()
    spec = ClusterSpec(
        base=base, masters=args.masters, backends=args.backends, nginx_port=args.port,
        web_root=web, pyodide_dir=pyodide,
    )
    cluster = LocalCluster(spec)
    print(f"Starting TuiTalk: {args.masters * 2} Redis nodes, PostgreSQL, "
          f"{args.backends} backends, nginx ...", flush=True)
    t0 = time.monotonic()
    try:
        cluster.start()
    except LauncherError as exc:
        print(f"failed to start: {exc}", file=sys.stderr)
        return 1
    print(f"Ready in {time.monotonic() - t0:.1f}s.\n")
    _print_status(cluster.status())
    cli = ".venv/bin/tuitalk-cli" + ("" if args.port == 8080 else f" --url {cluster.url}")
    heal = ("a node that dies is started again after 1 s" if args.restart
            else "dead nodes stay down (--no-restart)")
    print(f"""
Chat from a terminal:   {cli}
Chat from a browser:    {cluster.http_url}
Cluster state:          .venv/bin/tuitalk status
Logs:                   {base}/

Kill any node (its pid is above) and watch chat go on; {heal}.
Press Ctrl-C to stop everything.""", flush=True)
    stop = False

    def _on_signal(_sig: int, _frame: Any) -> None:
        nonlocal stop
        stop = True

    # SIGHUP: the terminal was closed. Stop everything then too, rather than leave the
    # nodes running without anyone to stop them.
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, _on_signal)
    supervisor = Supervisor(cluster, _say, restart=args.restart)
    while not stop:
        time.sleep(0.5)
        supervisor.poll()
        cluster.write_state()
    _say("\nStopping ...")
    cluster.stop()
    _say("Stopped.")
    return 0


def _say(text: str) -> None:
    """Print, unless the terminal is gone (after SIGHUP): stopping must go on regardless."""
    with contextlib.suppress(OSError):
        print(text, flush=True)


def _print_status(rows: list[dict[str, Any]]) -> None:
    print(f"{'node':<12} {'kind':<9} {'port':>6} {'pid':>8}  state")
    for r in rows:
        state = str(r["state"]).replace("slave", "replica")
        print(f"{r['name']:<12} {r['kind']:<9} {r['port']:>6} {r['pid'] or '-':>8}  {state}")


def _probe(row: dict[str, Any]) -> str:
    pid = row.get("pid")
    try:
        if not pid:
            return "down"
        os.kill(int(pid), 0)
    except OSError:
        return "down"
    port = int(row["port"])
    if row["kind"] == "backend":
        try:
            with urllib.request.urlopen(
                f"http://127.0.0.1:{port}/readyz", timeout=0.5
            ) as resp:
                return "ready" if resp.status == 200 else "up"
        except OSError:
            return "not ready"
    if row["kind"] == "redis":
        import redis

        try:
            r = redis.Redis(port=port, socket_timeout=0.5, decode_responses=True)
            role = r.info("replication").get("role", "?")
            r.close()
            return str(role).replace("slave", "replica")
        except (redis.RedisError, OSError):
            return "not answering"
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return "up"
    except OSError:
        return "not answering"


def cmd_status(_args: argparse.Namespace) -> int:
    state = _home() / "local" / "cluster.json"
    if not state.exists():
        print("no local cluster is running (start one with `./run up`)")
        return 1
    data = json.loads(state.read_text())
    rows = [{**r, "state": _probe(r)} for r in data["nodes"]]
    print(f"TuiTalk local cluster at {data['url']}\n")
    _print_status(rows)
    return 0


def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    if argv and argv[0] == "serve":
        from tuitalk.server.app import main as serve_main

        serve_main(argv[1:])
        return
    ap = argparse.ArgumentParser(prog="tuitalk", description="TuiTalk local cluster and backend.")
    sub = ap.add_subparsers(dest="cmd", required=True)
    up = sub.add_parser("up", help="start the whole local cluster and keep it running")
    up.add_argument("--port", type=int, default=8080, help="nginx port (default 8080)")
    up.add_argument("--backends", type=int, default=3)
    up.add_argument("--masters", type=int, default=3, help="Redis masters (each gets a replica)")
    up.add_argument("--no-restart", dest="restart", action="store_false",
                    help="leave a node that dies down (default: start it again after 1 s)")
    sub.add_parser("status", help="show the state of each node of the local cluster")
    sub.add_parser("serve", help="run one backend (see `tuitalk serve --help`)")
    args = ap.parse_args(argv)
    if args.cmd == "up":
        sys.exit(cmd_up(args))
    if args.cmd == "status":
        sys.exit(cmd_status(args))
