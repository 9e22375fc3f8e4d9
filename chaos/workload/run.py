"""Run the workload: Locust as a headless subprocess, bounded in time, stopped by PID.

:func:`run_workload` writes ``<out>/run.json`` (the configuration, start and end times,
Locust's exit code), runs::

    locust -f chaos/workload/locustfile.py --headless -u N -r R -t T --stop-timeout S \\
        --csv <out>/locust --html <out>/locust.html --json-file <out>/locust_stats \\
        --only-summary --logfile <out>/locust.log

and returns a :class:`WorkloadRun`. Locust's CSV, HTML and JSON reports stay in the run
directory (use the JSON or the histories for totals: the CSV is written periodically and
can lag). If Locust outlives ``T + S + grace`` it gets SIGTERM, then SIGKILL, by its PID.

Locust must run in its own process: importing it monkey-patches the whole interpreter
(gevent), which would break any asyncio code of the caller.

Command line (a whole run by hand)::

    python -m chaos.workload.run --url ws://127.0.0.1:8080/ws --out runs/x -u 10 -t 15 \\
        [--dsn postgresql://...] [--check]
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Final

from chaos.workload.config import WorkloadConfig

__all__ = ["WORKLOAD_LOCUSTFILE", "WorkloadRun", "WorkloadSpec", "new_rooms", "run_workload"]

REPO_ROOT: Final = Path(__file__).resolve().parents[2]
WORKLOAD_LOCUSTFILE: Final = REPO_ROOT / "chaos" / "workload" / "locustfile.py"
#: Locust's own start-up and shutdown (imports, report writing) on top of -t and the
#: users' end-of-run protocol.
GRACE_S: Final = 30.0


def new_rooms(n: int, run_id: str | None = None) -> tuple[str, ...]:
    """``n`` room names unique to one run (``c<6 hex>-<i>``), so runs never share a room."""
    run_id = run_id or secrets.token_hex(3)
    return tuple(f"c{run_id}-{i}" for i in range(n))


@dataclass(frozen=True)
class WorkloadSpec:
    """One Locust run: how many users, how fast, for how long, with which config."""

    config: WorkloadConfig
    users: int = 10
    spawn_rate: float = 10.0
    duration_s: float = 15.0
    locustfile: Path = WORKLOAD_LOCUSTFILE
    extra_args: tuple[str, ...] = ()
    extra_env: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class WorkloadRun:
    out: Path
    returncode: int
    started: float
    ended: float
    timed_out: bool

    @property
    def elapsed_s(self) -> float:
        return self.ended - self.started


def locust_argv(spec: WorkloadSpec, out: Path) -> list[str]:
    stop_timeout = spec.config.end_budget_s
    return [
        sys.executable, "-m", "locust", "-f", str(spec.locustfile), "--headless",
        "-u", str(spec.users), "-r", f"{spec.spawn_rate:g}", "-t", f"{spec.duration_s:g}s",
        "--stop-timeout", f"{stop_timeout:g}", "--host", spec.config.url,
        "--csv", str(out / "locust"), "--html", str(out / "locust.html"),
        "--json-file", str(out / "locust_stats"), "--only-summary",
        "--logfile", str(out / "locust.log"), "--loglevel", "INFO",
        *spec.extra_args,
    ]


def run_workload(spec: WorkloadSpec, out: Path) -> WorkloadRun:
    """Run Locust to completion (bounded); returns where everything was written.

    ``spec.config.out`` is replaced by ``out``. Raises OSError if Locust cannot start.
    """
    out.mkdir(parents=True, exist_ok=True)
    cfg = replace(spec.config, out=out)
    env = dict(os.environ)
    env.update(cfg.to_env())
    env.update(spec.extra_env)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO_ROOT), env.get("PYTHONPATH")]))
    env.setdefault("PYTHONUNBUFFERED", "1")
    limit_s = spec.duration_s + cfg.end_budget_s + GRACE_S
    meta = {
        "url": cfg.url, "rooms": list(cfg.rooms), "users": spec.users,
        "spawn_rate": spec.spawn_rate, "duration_s": spec.duration_s,
        "rate_per_s": cfg.rate_per_s, "churn": cfg.churn, "seed": cfg.seed,
        "locustfile": str(spec.locustfile), "started": time.time(),
    }
    _write_meta(out, meta)
    argv = locust_argv(replace(spec, config=cfg), out)
    started = time.time()
    timed_out = False
    with (out / "locust.out").open("wb") as log:
        proc = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, env=env,
                                cwd=REPO_ROOT, start_new_session=True)
        try:
            rc = proc.wait(timeout=limit_s)
        except subprocess.TimeoutExpired:
            timed_out = True
            rc = _stop(proc)
    ended = time.time()
    meta.update({"ended": ended, "locust_rc": rc, "timed_out": timed_out,
                 "argv": argv[1:]})
    _write_meta(out, meta)
    return WorkloadRun(out, rc, started, ended, timed_out)


def _stop(proc: subprocess.Popen[bytes]) -> int:
    """SIGTERM (Locust stops users and writes its reports), then SIGKILL; by PID only."""
    proc.send_signal(signal.SIGTERM)
    try:
        return proc.wait(timeout=15)
    except subprocess.TimeoutExpired:
        proc.kill()
        return proc.wait(timeout=10)


def _write_meta(out: Path, meta: dict[str, object]) -> None:
    (out / "run.json").write_text(json.dumps(meta, indent=2) + "\n")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m chaos.workload.run", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--url", default=os.environ.get("TUITALK_URL", "ws://127.0.0.1:8080/ws"))
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("-u", "--users", type=int, default=10)
    ap.add_argument("-r", "--spawn-rate", type=float, default=10.0)
    ap.add_argument("-t", "--duration", type=float, default=15.0, help="seconds")
    ap.add_argument("--rooms", type=int, default=3, help="number of fresh rooms")
    ap.add_argument("--rate", type=float, default=2.0, help="messages/s per user")
    ap.add_argument("--churn", type=float, default=0.02)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--dsn", default=None, help="PostgreSQL DSN for the archive read")
    ap.add_argument("--check", action="store_true", help="final reads, then the checker")
    args = ap.parse_args(argv)
    cfg = WorkloadConfig(url=args.url, rooms=new_rooms(args.rooms), rate_per_s=args.rate,
                         churn=args.churn, seed=args.seed)
    run = run_workload(WorkloadSpec(cfg, users=args.users, spawn_rate=args.spawn_rate,
                                    duration_s=args.duration), args.out)
    print(f"locust exit {run.returncode} after {run.elapsed_s:.1f}s; output in {run.out}")
    if not args.check:
        return 0
    from chaos.checker.verdict import check_run, summary
    from chaos.workload.final import final_read

    final_read(args.out, args.url, dsn=args.dsn)
    result = check_run(args.out)
    print(summary(result))
    return result.exit_code


if __name__ == "__main__":
    raise SystemExit(main())
