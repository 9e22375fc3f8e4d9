"""Chaos scenarios: a fault schedule run against a fresh cluster under Locust load.

:func:`run_scenario` does one whole run::

    fresh ChaosCluster (every network path through a fault proxy)
      -> Locust workload (synthetic users recording histories), bounded in time
         while the scenario's schedule breaks things in a nemesis thread
      -> heal everything, wait for the archive to catch up
      -> final reads (API + PostgreSQL) -> checker -> timeline, logs, summary

Each scenario is a function of a :class:`Chaos` context. ``random_mix`` builds its schedule
from a seed, so a failing seed replays exactly (same faults, same targets, same times).
"""

from __future__ import annotations

import json
import os
import random
import shutil
import subprocess
import sys
import threading
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

from chaos.nemesis import Nemesis, NetworkFaults, Platform
from chaos.platforms.local import LocalPlatform
from chaos.report import collect_logs, summary_line, timeline
from chaos.topology import ChaosCluster
from chaos.workload.config import WorkloadConfig
from chaos.workload.final import final_read
from chaos.workload.history import Connect, read_history
from chaos.workload.run import WorkloadSpec, new_rooms, run_workload

__all__ = ["SCENARIOS", "Chaos", "RunResult", "Scenario", "execute", "judge", "run_scenario"]

STORE: Final = Path(__file__).resolve().parent / "store"
#: Load runs this long before the first fault, so every user is connected and sending.
WARMUP_S: Final = 6.0


@dataclass
class Chaos:
    """What a schedule gets: the cluster, the nemesis, the rooms and a seeded RNG."""

    platform: Platform
    nemesis: Nemesis
    rooms: tuple[str, ...]
    rng: random.Random
    out: Path
    notes: dict[str, Any] = field(default_factory=dict)

    def backend_of(self, process: str) -> str:
        """The backend synthetic user ``process`` is connected to now (from its history)."""
        backend = None
        for record in read_history(self.out / "histories" / f"{process}.jsonl"):
            if isinstance(record, Connect):
                backend = record.backend
        if backend is None:
            raise LookupError(f"{process} has not connected yet")
        return backend


@dataclass(frozen=True)
class Scenario:
    name: str
    schedule: Callable[[Chaos], None]
    duration_s: float = 30.0
    users: int = 12
    rooms: int = 3
    rate_per_s: float = 2.0
    smoke: bool = False
    seed: int = 1


@dataclass
class RunResult:
    scenario: str
    out: Path
    verdict: str
    exit_code: int
    results: dict[str, Any]
    notes: dict[str, Any]
    error: str | None = None

    def summary(self) -> str:
        return summary_line(self.scenario, self.results) + (f" ERROR {self.error}"
                                                           if self.error else "")


# -- schedules --------------------------------------------------------------------------------


def backend_killed(c: Chaos) -> None:
    target = c.backend_of("u001")  # "the backend that client X is on"
    c.notes["target"] = target
    c.nemesis.kill(target, down_s=6.0)


def backend_frozen(c: Chaos) -> None:
    target = c.platform.busiest_backend()
    c.notes["target"] = target
    c.nemesis.freeze(target, frozen_s=8.0)


def all_backends_but_one(c: Chaos) -> None:
    c.notes["survivor"] = c.nemesis.kill_all_but_one(down_s=8.0)


def rolling_restart(c: Chaos) -> None:
    c.nemesis.rolling_restart(pause_s=3.0)


def redis_master_killed(c: Chaos) -> None:
    target = c.platform.redis_master_for_room(c.rooms[0])
    c.notes["target"] = target
    c.nemesis.kill(target, down_s=8.0)  # restart waits for the replica to take over


def redis_master_frozen(c: Chaos) -> None:
    target = c.platform.redis_master_for_room(c.rooms[0])
    c.notes["target"] = target
    c.nemesis.freeze(target, frozen_s=5.0)  # node timeout is 1 s: well past it
    deadline = time.monotonic() + 10.0
    while c.platform.redis_role(target) != "slave" and time.monotonic() < deadline:
        time.sleep(0.1)
    c.notes["old_master_role_after_thaw"] = role = c.platform.redis_role(target)
    if role != "slave":
        raise AssertionError(f"{target} did not rejoin as a replica after the thaw")


def postgres_stopped(c: Chaos) -> None:
    c.nemesis.stop_start("postgres", down_s=10.0)


BOTH: Final = ("upstream", "downstream")


def client_latency(c: Chaos) -> None:
    c.nemesis.toxic(["client"], "latency", {"latency": 500, "jitter": 200}, 10.0, streams=BOTH)


def client_reset_peer(c: Chaos) -> None:
    # Every client connection is reset 1.5 s after it opens, for 8 s.
    c.nemesis.toxic(["client"], "reset_peer", {"timeout": 1500}, duration_s=8.0)


def backend_redis_blackhole(c: Chaos) -> None:
    target = c.platform.redis_master_for_room(c.rooms[0])
    c.notes["target"] = target
    # timeout 0: data stops flowing both ways and nothing closes (a black hole).
    c.nemesis.toxic([target], "timeout", {"timeout": 0}, 5.0, streams=BOTH)


_MIX: Final[list[tuple[str, Callable[[Chaos], None]]]] = [
    ("backend_killed", lambda c: c.nemesis.kill(c.rng.choice(c.platform.backends()), 3.0)),
    ("backend_frozen", lambda c: c.nemesis.freeze(c.rng.choice(c.platform.backends()), 5.0)),
    ("redis_master_killed", lambda c: c.nemesis.kill(
        c.platform.redis_master_for_room(c.rng.choice(c.rooms)), 6.0)),
    ("redis_master_frozen", lambda c: c.nemesis.freeze(
        c.platform.redis_master_for_room(c.rng.choice(c.rooms)), 4.0)),
    ("postgres_stopped", lambda c: c.nemesis.stop_start("postgres", 4.0)),
    ("client_latency", lambda c: c.nemesis.toxic(["client"], "latency",
                                                 {"latency": 300, "jitter": 100}, 4.0)),
    ("client_reset_peer", lambda c: c.nemesis.toxic(["client"], "reset_peer",
                                                    {"timeout": 1000}, 4.0)),
    ("backend_redis_blackhole", lambda c: c.nemesis.toxic(
        [c.platform.redis_master_for_room(c.rng.choice(c.rooms))], "timeout",
        {"timeout": 0}, 3.0, streams=BOTH)),
]


def random_mix(c: Chaos) -> None:
    """Four faults drawn from every kind above, with gaps; replayable from the seed."""
    plan = [c.rng.randrange(len(_MIX)) for _ in range(4)]
    c.notes["plan"] = [_MIX[i][0] for i in plan]
    for i in plan:
        _MIX[i][1](c)
        time.sleep(c.rng.uniform(2.0, 4.0))


SCENARIOS: Final[list[Scenario]] = [
    Scenario("backend_killed", backend_killed, smoke=True),
    Scenario("backend_frozen", backend_frozen),
    Scenario("all_backends_but_one", all_backends_but_one),
    Scenario("rolling_restart", rolling_restart, duration_s=32.0),
    Scenario("redis_master_killed", redis_master_killed, smoke=True),
    Scenario("redis_master_frozen", redis_master_frozen),
    Scenario("postgres_stopped", postgres_stopped),
    Scenario("client_latency", client_latency),
    Scenario("client_reset_peer", client_reset_peer, smoke=True),
    Scenario("backend_redis_blackhole", backend_redis_blackhole),
    Scenario("random_mix", random_mix, duration_s=50.0,
             seed=int(os.environ.get("CHAOS_MIX_SEED", "20261203"))),
]


# -- running ---------------------------------------------------------------------------------


def _wait_archived(platform: Platform, rooms: tuple[str, ...], timeout_s: float = 60.0) -> None:
    """Wait until PostgreSQL holds every committed message of ``rooms``."""
    deadline = time.monotonic() + timeout_s
    pending = list(rooms)
    while pending and time.monotonic() < deadline:
        room = pending[0]
        try:
            done = platform.archived_seq(room) >= platform.room_commit(room)
        except Exception:
            done = False
        if done:
            pending.pop(0)
        else:
            time.sleep(0.2)


def execute(s: Scenario, out: Path, platform: Platform, network: NetworkFaults | None, *,
            url: str, final_url: str, dsn: str, notes: dict[str, Any]) -> str | None:
    """Run the workload against ``url`` while ``s.schedule`` breaks ``platform``, then heal,
    wait for the archive and read every room's final history (through ``final_url``, which
    has no faults, and ``dsn``). Returns the nemesis's error line, if it failed."""
    rng = random.Random(s.seed)
    rooms = new_rooms(s.rooms, run_id=f"{rng.randrange(16**6):06x}")
    nemesis = Nemesis(platform, network, out / "nemesis.jsonl")
    chaos = Chaos(platform, nemesis, rooms, rng, out, notes)
    cfg = WorkloadConfig(url=url, out=out, rooms=rooms, rate_per_s=s.rate_per_s, seed=s.seed)
    spec = WorkloadSpec(config=cfg, users=s.users, spawn_rate=float(s.users),
                        duration_s=s.duration_s)
    failure: list[str] = []

    def schedule() -> None:
        try:
            time.sleep(WARMUP_S)
            s.schedule(chaos)
        except Exception:
            failure.append(traceback.format_exc())

    nemesis_thread = threading.Thread(target=schedule, name=f"nemesis-{s.name}")
    nemesis_thread.start()
    run_workload(spec, out)
    nemesis_thread.join(timeout=120)
    nemesis.heal()
    _wait_archived(platform, rooms)
    final_read(out, final_url, rooms=list(rooms), dsn=dsn)
    if failure:
        notes["nemesis_error"] = failure[0]
        return failure[0].strip().splitlines()[-1]
    return None


def judge(s: Scenario, out: Path, notes: dict[str, Any], error: str | None) -> RunResult:
    """Run the checker on a finished run directory and draw its timeline."""
    (out / "notes.json").write_text(json.dumps(notes, indent=2, default=str))
    check = subprocess.run([sys.executable, "-m", "chaos.checker", str(out)],
                           capture_output=True, text=True, check=False)
    (out / "checker.txt").write_text(check.stdout + check.stderr)
    results: dict[str, Any] = {}
    if (out / "results.json").exists():
        results = json.loads((out / "results.json").read_text())
    timeline(out, title=f"{s.name} (seed {s.seed})")
    verdict = {0: "valid", 1: "invalid"}.get(check.returncode, "unknown")
    return RunResult(s.name, out, verdict, check.returncode, results, notes, error)


def run_scenario(s: Scenario, store: Path = STORE) -> RunResult:
    """Run one scenario end to end on a fresh local cluster with fault proxies.

    Never raises for a failed check: see the verdict."""
    out = store / s.name / time.strftime("%Y%m%d-%H%M%S")
    out.mkdir(parents=True, exist_ok=True)
    notes: dict[str, Any] = {"seed": s.seed, "platform": "local"}
    cc = ChaosCluster(out / "cluster")
    cc.start()
    try:
        assert cc.cluster.pg is not None
        error = execute(s, out, LocalPlatform(cc.cluster), NetworkFaults(cc.api), url=cc.url,
                        final_url=cc.cluster.url, dsn=cc.cluster.pg.dsn, notes=notes)
    finally:
        collect_logs(cc.base, out)
        cc.stop()
        shutil.rmtree(cc.base, ignore_errors=True)  # logs are kept in <run>/logs
    return judge(s, out, notes, error)
