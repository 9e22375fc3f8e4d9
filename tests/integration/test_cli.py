"""`tuitalk up` / `tuitalk status` as a user runs them, and each backend's HTTP endpoints."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from tests.helpers import chat_client
from tuitalk.launcher.cluster import LocalCluster
from tuitalk.launcher.ports import PortAllocator

pytestmark = [pytest.mark.integration]


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except OSError:
        return False
    # A zombie is dead for our purposes.
    try:
        return "Z" not in Path(f"/proc/{pid}/stat").read_text().split()[2]
    except OSError:
        return False


def _chat_once(port: int, text: str) -> None:
    """Join #lobby through the cluster's nginx, say ``text`` and see it come back."""
    import anyio

    async def chat() -> None:
        async with chat_client(f"ws://127.0.0.1:{port}/ws", "u", name="user") as c:
            c.driver.join("lobby")
            await c.wait_joined("lobby")
            c.say("lobby", text)
            await c.wait_texts("lobby", [text])

    anyio.run(chat)


def test_tuitalk_up_status_and_ctrl_c(tmp_path: Path) -> None:
    port = PortAllocator().port()
    env = dict(os.environ, TUITALK_HOME=str(tmp_path))
    up = subprocess.Popen(
        [sys.executable, "-m", "tuitalk", "up", "--port", str(port)],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env,
    )
    lines: list[str] = []
    try:
        assert up.stdout is not None
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            line = up.stdout.readline()
            assert line, "tuitalk up exited:\n" + "".join(lines)
            lines.append(line)
            if "Press Ctrl-C" in line:
                break
        text = "".join(lines)
        assert f"ws://127.0.0.1:{port}/ws" in text
        assert "tuitalk-cli" in text
        state = json.loads((tmp_path / "local" / "cluster.json").read_text())
        pids = [n["pid"] for n in state["nodes"]]
        assert len(pids) == 11 and all(_pid_alive(p) for p in pids)

        status = subprocess.run([sys.executable, "-m", "tuitalk", "status"], env=env,
                                capture_output=True, text=True, timeout=30, check=True)
        rows = [ln for ln in status.stdout.splitlines() if ln.startswith(("backend", "redis"))]
        assert sum("ready" in r for r in rows) == 3
        assert sum("master" in r for r in rows) == 3
        assert sum("replica" in r for r in rows) == 3

        _chat_once(port, "hello from the README")
    finally:
        up.send_signal(signal.SIGINT)
        out, _ = up.communicate(timeout=60)
    assert up.returncode == 0, out
    assert "Stopped." in out
    time.sleep(0.5)
    assert not any(_pid_alive(p) for p in pids), "a node outlived `tuitalk up`"
    status = subprocess.run([sys.executable, "-m", "tuitalk", "status"], env=env,
                            capture_output=True, text=True, timeout=30, check=False)
    assert status.returncode == 1 and "no local cluster" in status.stdout


def _up_until_ready(env: dict[str, str], port: int) -> tuple[subprocess.Popen[str], str]:
    """Start `tuitalk up`; return it and what it printed up to "Press Ctrl-C"."""
    up = subprocess.Popen(
        [sys.executable, "-m", "tuitalk", "up", "--port", str(port)],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env,
    )
    lines: list[str] = []
    assert up.stdout is not None
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        line = up.stdout.readline()
        if not line:
            up.communicate(timeout=10)
            raise AssertionError("tuitalk up exited:\n" + "".join(lines))
        lines.append(line)
        if "Press Ctrl-C" in line:
            return up, "".join(lines)
    up.send_signal(signal.SIGINT)
    up.communicate(timeout=60)
    raise AssertionError("tuitalk up not ready in 60 s:\n" + "".join(lines))


def test_closed_terminal_stops_the_cluster_and_a_killed_launcher_is_cleaned_up(
    tmp_path: Path,
) -> None:
    """SIGHUP (the terminal was closed) stops everything like Ctrl-C. A launcher killed
    outright leaves its nodes running; the next `tuitalk up` stops them (by the PIDs the
    state file lists) instead of failing on a busy port."""
    port = PortAllocator().port()
    env = dict(os.environ, TUITALK_HOME=str(tmp_path))
    state_file = tmp_path / "local" / "cluster.json"
    first, _ = _up_until_ready(env, port)
    second: subprocess.Popen[str] | None = None
    old: list[int] = []
    new: list[int] = []
    try:
        old = [n["pid"] for n in json.loads(state_file.read_text())["nodes"]]
        first.kill()
        first.communicate(timeout=10)  # and close its pipe
        time.sleep(0.5)
        assert all(_pid_alive(p) for p in old), "the nodes should outlive a SIGKILLed launcher"

        second, text = _up_until_ready(env, port)
        assert "Stopped what an earlier `tuitalk up` left running" in text, text
        assert not any(_pid_alive(p) for p in old), "a leftover node still runs"
        new = [n["pid"] for n in json.loads(state_file.read_text())["nodes"]]
        assert len(new) == 11 and all(_pid_alive(p) for p in new)

        second.send_signal(signal.SIGHUP)
        out, _ = second.communicate(timeout=60)
        assert second.returncode == 0, out
        assert "Stopped." in out
        time.sleep(0.5)
        assert not any(_pid_alive(p) for p in new), "a node outlived the hang-up"
        assert not state_file.exists()
    finally:
        # Whatever failed above: no node of this test may stay behind.
        for proc in (first, second):
            if proc is not None and proc.poll() is None:
                proc.send_signal(signal.SIGINT)
                proc.communicate(timeout=60)
        if state_file.exists():
            from tuitalk.launcher.leftovers import stop_leftovers

            stop_leftovers(state_file)
        for pid in old + new:
            if _pid_alive(pid):
                os.kill(pid, signal.SIGKILL)


def test_health_ready_and_metrics_endpoints(cluster: LocalCluster) -> None:
    b = cluster.backends[0]
    for path, expect in (("/healthz", 200), ("/readyz", 200)):
        with urllib.request.urlopen(f"http://127.0.0.1:{b.port}{path}", timeout=2) as r:
            assert r.status == expect
    text = b.metrics()
    for name in ("tuitalk_connections", "tuitalk_messages_in_total",
                 "tuitalk_fanout_latency_seconds_bucket", "tuitalk_ring_overflows_total",
                 "tuitalk_gap_fills_total", "tuitalk_subscriber_rehomes_total",
                 "tuitalk_archive_lag_messages", "tuitalk_degraded_commits_total"):
        assert name in text, name
    with urllib.request.urlopen(f"http://127.0.0.1:{cluster.nginx_port}/healthz", timeout=2) as r:
        assert r.status == 200


class _Lines:
    """What a running `tuitalk up` prints, read by a thread so waits can time out."""

    def __init__(self, proc: subprocess.Popen[str]) -> None:
        import threading

        self.lines: list[str] = []
        self._proc = proc
        self._thread = threading.Thread(target=self._read, daemon=True)
        self._thread.start()

    def _read(self) -> None:
        assert self._proc.stdout is not None
        for line in self._proc.stdout:
            self.lines.append(line)

    def wait_for(self, *needles: str, timeout_s: float) -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            text = "".join(self.lines)
            if all(n in text for n in needles):
                return
            time.sleep(0.1)
        raise AssertionError(f"waited for {needles}; `tuitalk up` printed:\n" + "".join(self.lines))

    def close(self) -> None:
        """After the process exited: take the rest of its output, close the pipe."""
        self._thread.join(timeout=10)
        if self._proc.stdout is not None:
            self._proc.stdout.close()


def _group_members(pgid: int) -> list[int]:
    """Live processes whose process group is ``pgid`` (zombies excluded)."""
    found = []
    for d in Path("/proc").iterdir():
        if not d.name.isdigit():
            continue
        try:
            fields = d.joinpath("stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if fields[0] != "Z" and int(fields[2]) == pgid:
            found.append(int(d.name))
    return found


def test_up_starts_nodes_that_die_again(tmp_path: Path, measure) -> None:  # type: ignore[no-untyped-def]
    """SIGKILL a backend, a Redis master, PostgreSQL and nginx at once under `tuitalk up`:
    each is started again (the master after its replica took over, so it rejoins as a
    replica), nginx's orphaned workers do not keep the port, and chat works after."""
    port = PortAllocator().port()
    env = dict(os.environ, TUITALK_HOME=str(tmp_path))
    state_file = tmp_path / "local" / "cluster.json"
    up, text = _up_until_ready(env, port)
    assert "started again after 1 s" in text
    lines = _Lines(up)
    pids: list[int] = []
    try:
        nodes = {n["name"]: n for n in json.loads(state_file.read_text())["nodes"]}
        pids = [n["pid"] for n in nodes.values()]
        status = subprocess.run([sys.executable, "-m", "tuitalk", "status"], env=env,
                                capture_output=True, text=True, timeout=30, check=True)
        master = next(ln.split()[0] for ln in status.stdout.splitlines()
                      if ln.startswith("redis") and ln.rstrip().endswith("master"))
        victims = ["backend-1", master, "postgres", "nginx"]
        old_nginx = nodes["nginx"]["pid"]
        t0 = time.monotonic()
        for name in victims:
            os.kill(nodes[name]["pid"], signal.SIGKILL)
        lines.wait_for(*(f"{name} is down" for name in victims), timeout_s=10)
        lines.wait_for(*(f"{name} is back" for name in victims), timeout_s=90)
        measure("4 nodes SIGKILLed -> all started again", time.monotonic() - t0)
        assert _group_members(old_nginx) == [], "the killed nginx's workers still run"

        now = {n["name"]: n for n in json.loads(state_file.read_text())["nodes"]}
        for name in victims:
            assert now[name]["pid"] != nodes[name]["pid"] and _pid_alive(now[name]["pid"])
        pids += [n["pid"] for n in now.values()]
        status = subprocess.run([sys.executable, "-m", "tuitalk", "status"], env=env,
                                capture_output=True, text=True, timeout=30, check=True)
        rows = {ln.split()[0]: ln for ln in status.stdout.splitlines()
                if ln.startswith(("backend", "redis"))}
        assert sum("ready" in r for r in rows.values()) == 3, status.stdout
        assert sum(r.rstrip().endswith("master") for r in rows.values()) == 3, status.stdout
        assert rows[master].rstrip().endswith("replica"), status.stdout

        _chat_once(port, "after the restarts")
    finally:
        up.send_signal(signal.SIGINT)
        up.wait(timeout=60)
        if state_file.exists():
            from tuitalk.launcher.leftovers import stop_leftovers

            stop_leftovers(state_file)
        for pid in pids:
            if _pid_alive(pid):
                os.kill(pid, signal.SIGKILL)
        lines.close()
    assert up.returncode == 0, "".join(lines.lines)
    assert "Stopped." in "".join(lines.lines)
    time.sleep(0.5)
    assert not any(_pid_alive(p) for p in pids), "a node outlived `tuitalk up`"
