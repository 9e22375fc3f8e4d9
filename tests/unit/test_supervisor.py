"""`tuitalk up`'s watch loop: which dead nodes it starts again, when, and what it says."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from tuitalk.errors import LauncherError
from tuitalk.launcher.supervisor import FIRST_DELAY_S, MAX_DELAY_S, Supervisor


@dataclass
class _Proc:
    pid: int
    up: bool = True

    def alive(self) -> bool:
        return self.up


@dataclass
class _Cluster:
    """The three calls the supervisor makes of a LocalCluster; starts fail ``failures`` times."""

    procs: dict[str, _Proc]
    failures: int = 0
    starts: list[str] = field(default_factory=list)

    def node_names(self) -> list[str]:
        return list(self.procs)

    def process(self, name: str) -> _Proc:
        return self.procs[name]

    def start_node(self, name: str, timeout_s: float) -> None:
        self.starts.append(name)
        if self.failures:
            self.failures -= 1
            raise LauncherError("port in use\nmore detail")
        self.procs[name] = _Proc(self.procs[name].pid + 100)


class _Clock:
    def __init__(self) -> None:
        self.t = 0.0

    def __call__(self) -> float:
        return self.t


def _supervisor(cluster: _Cluster, **kw: Any) -> tuple[Supervisor, list[str], _Clock]:
    said: list[str] = []
    clock = _Clock()
    return Supervisor(cluster, said.append, clock=clock, **kw), said, clock  # type: ignore[arg-type]


def test_a_dead_node_is_started_again_after_the_first_delay() -> None:
    cluster = _Cluster({"backend-1": _Proc(10), "nginx": _Proc(20)})
    sup, said, clock = _supervisor(cluster)
    sup.poll()
    assert said == [] and cluster.starts == []
    cluster.procs["backend-1"].up = False
    sup.poll()
    assert said == ["! backend-1 is down (pid 10): restarting it"]
    clock.t = FIRST_DELAY_S - 0.01
    sup.poll()
    assert cluster.starts == []
    clock.t = FIRST_DELAY_S
    sup.poll()
    assert cluster.starts == ["backend-1"]
    assert said[-1].startswith("  backend-1 is back (pid 110)")
    assert sup.restarts == {"backend-1": 1}
    sup.poll()  # alive again: nothing more to do
    assert cluster.starts == ["backend-1"] and len(said) == 2


def test_a_node_that_does_not_come_back_is_retried_with_a_doubling_delay() -> None:
    cluster = _Cluster({"postgres": _Proc(30, up=False)}, failures=10)
    sup, said, clock = _supervisor(cluster)
    sup.poll()
    delays = []
    for _ in range(8):
        before = len(cluster.starts)
        start = clock.t
        while len(cluster.starts) == before:
            clock.t += 0.5
            sup.poll()
        delays.append(clock.t - start)
    assert delays[0] == FIRST_DELAY_S
    assert delays[1:4] == [2 * FIRST_DELAY_S, 4 * FIRST_DELAY_S, 8 * FIRST_DELAY_S]
    assert max(delays) == MAX_DELAY_S
    assert "! postgres did not come back (port in use); next try in 2s" in said


def test_no_restart_only_reports() -> None:
    cluster = _Cluster({"redis-1": _Proc(40, up=False)})
    sup, said, clock = _supervisor(cluster, restart=False)
    for _ in range(10):
        sup.poll()
        clock.t += 5
    assert cluster.starts == []
    assert said == ["! redis-1 is down (pid 40)"]
