"""A bounded capacity benchmark: TuiTalk against a single-process peer, same clients.

    python loadtests/bench.py                      # starts its own local cluster
    python loadtests/bench.py --url ws://127.0.0.1:8080/ws   # or TUITALK_URL: a running one

For each per-user rate it runs the same Locust users (``loadtests/locustfile.py``, the
real client core) for ``--step-s`` seconds against TuiTalk (nginx -> 3 backends -> Redis
Cluster, archived to PostgreSQL) and against the peer (``loadtests/peer.py``: one asyncio
process, in memory, ``broadcast()`` fan-out, the spikes §3 baseline), measures from the
recorded histories, and prints one row per target and rate:

* ``sent/s``: acknowledged sends per second; ``dlv/s``: messages shown per second, all
  receivers together;
* ``ack p50/p99``: send to ack; ``dlv p50/p99``: send to each receiver's display (live);
* ``unacked``: sends still without an ack at the end of the step (should be 0);
* ``ratio``: TuiTalk's dlv/s and p99 over the peer's at the same offered load.

Honesty notes: client and servers share this machine's CPUs (2 vCPU on the team's
machines), so at high rates the Locust process itself saturates, for both targets alike;
the peer has no durability, replication or proxy hop, so it bounds from above what one
Python process can do, it is not a competitor. Each step starts a fresh Locust process
(about 2 s of start-up outside the measured window). The whole run is bounded by
``--budget-s`` (default 110 s): steps that would not fit are skipped and said so.

Importing this module has no side effects (``locust -f loadtests`` imports it).
"""

from __future__ import annotations

import argparse
import os
import select
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

__all__ = ["StepResult", "main", "measure"]

HERE: Final = Path(__file__).resolve().parent
#: Locust start-up, the users' end-of-run protocol and shutdown, per step (estimate used
#: to decide whether another step still fits in the budget).
STEP_OVERHEAD_S: Final = 4.0


@dataclass(frozen=True)
class StepResult:
    target: str
    rate_per_user: float
    users: int
    sent_per_s: float
    delivered_per_s: float
    ack_p50_ms: float | None
    ack_p99_ms: float | None
    dlv_p50_ms: float | None
    dlv_p99_ms: float | None
    unacked: int
    locust_rc: int


def measure(out: Path, target: str, rate: float, users: int, rc: int) -> StepResult:
    """Throughput and latency of one step, from its histories."""
    from chaos.checker.model import SAY_KINDS, load_run
    from chaos.checker.timing import latencies
    from chaos.workload import history as h

    run = load_run(out)
    invokes = [r.time for pv in run.processes.values() for r in pv.records
               if isinstance(r, h.Invoke)]
    window = (max(invokes) - min(invokes)) if len(invokes) > 1 else 0.0
    oks = sum(1 for pv in run.processes.values() for r in pv.records if isinstance(r, h.Ok))
    dlv = sum(1 for pv in run.processes.values() for r in pv.records
              if isinstance(r, h.Deliver) and r.kind in SAY_KINDS)
    unacked = sum(1 for pv in run.processes.values() for r in pv.records
                  if isinstance(r, h.Info)) + sum(
        1 for pv in run.processes.values() for i in pv.invokes if i not in pv.outcomes)
    lat = latencies(run)

    def ms(q: dict[str, Any], key: str) -> float | None:
        v = q.get(key)
        return None if v is None else round(float(v) * 1000, 1)

    return StepResult(
        target, rate, users, oks / window if window else 0.0, dlv / window if window else 0.0,
        ms(lat["ack_s"], "p50"), ms(lat["ack_s"], "p99"), ms(lat["deliver_live_s"], "p50"),
        ms(lat["deliver_live_s"], "p99"), unacked, rc)


def _start_peer(log: Path) -> tuple[subprocess.Popen[bytes], str]:
    """Start loadtests/peer.py on a free port; returns the process and its URL."""
    proc = subprocess.Popen(
        [sys.executable, str(HERE / "peer.py"), "--port", "0"], stdout=subprocess.PIPE,
        stderr=log.open("wb"), start_new_session=True)
    assert proc.stdout is not None
    ready, _, _ = select.select([proc.stdout], [], [], 15)
    line = proc.stdout.readline().decode() if ready else ""
    if not line.startswith("listening "):
        _stop(proc)
        raise RuntimeError(f"peer did not start: {line!r}, see {log}")
    return proc, f"ws://127.0.0.1:{int(line.split()[1])}/ws"


def _stop(proc: subprocess.Popen[bytes]) -> None:
    """Stop a process we started, by its PID: SIGTERM, then SIGKILL."""
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)


def _start_cluster(base: Path) -> Any:
    from tuitalk.launcher.cluster import ClusterSpec, LocalCluster

    cluster = LocalCluster(ClusterSpec(
        base=base, masters=3, backends=3, fast_postgres=True, ephemeral=True,
        # The benchmark offers more than people type; the per-connection limit has its own
        # tests. Everything else as `tuitalk up` runs it.
        backend_args=["--rate", "2000", "--burst", "4000"],
    ))
    cluster.start()
    return cluster


def _fmt(v: float | None, width: int = 7) -> str:
    return f"{'-' if v is None else f'{v:.0f}':>{width}}"


def table(results: list[StepResult]) -> str:
    head = (f"{'target':<8}{'rate/u':>7}{'users':>6}{'sent/s':>8}{'dlv/s':>8}"
            f"{'ack p50':>8}{'ack p99':>8}{'dlv p50':>8}{'dlv p99':>8}{'unacked':>8}"
            f"{'dlv/s ratio':>12}{'p99 ratio':>10}")
    lines = [head, "-" * len(head)]
    peers = {r.rate_per_user: r for r in results if r.target == "peer"}
    for r in results:
        ratio = p99 = ""
        peer = peers.get(r.rate_per_user)
        if r.target == "tuitalk" and peer is not None:
            if peer.delivered_per_s:
                ratio = f"{r.delivered_per_s / peer.delivered_per_s:.2f}"
            if peer.dlv_p99_ms and r.dlv_p99_ms is not None:
                p99 = f"{r.dlv_p99_ms / peer.dlv_p99_ms:.1f}x"
        lines.append(
            f"{r.target:<8}{r.rate_per_user:>7g}{r.users:>6}{r.sent_per_s:>8.0f}"
            f"{r.delivered_per_s:>8.0f}{_fmt(r.ack_p50_ms, 8)}{_fmt(r.ack_p99_ms, 8)}"
            f"{_fmt(r.dlv_p50_ms, 8)}{_fmt(r.dlv_p99_ms, 8)}{r.unacked:>8}{ratio:>12}{p99:>10}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    sys.path.insert(0, str(HERE.parent))
    from chaos.workload.config import WorkloadConfig
    from chaos.workload.run import WorkloadSpec, new_rooms, run_workload

    ap = argparse.ArgumentParser(prog="loadtests/bench.py", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--url", default=os.environ.get("TUITALK_URL"),
                    help="a running TuiTalk (default: start a local cluster)")
    ap.add_argument("--users", type=int, default=20)
    ap.add_argument("--rooms", type=int, default=2)
    ap.add_argument("--rates", default="1,4,8", help="messages/s per user, per step")
    ap.add_argument("--step-s", type=float, default=10.0)
    ap.add_argument("--budget-s", type=float, default=110.0)
    ap.add_argument("--no-peer", action="store_true")
    ap.add_argument("--out", type=Path, default=None, help="keep runs here")
    args = ap.parse_args(argv)
    rates = [float(x) for x in args.rates.split(",") if x]
    t0 = time.monotonic()
    out = args.out or Path(tempfile.mkdtemp(prefix="tuitalk-bench-"))
    out.mkdir(parents=True, exist_ok=True)
    cluster = None
    peer: subprocess.Popen[bytes] | None = None
    results: list[StepResult] = []
    try:
        url = args.url
        if url is None:
            print("starting a local cluster ...", flush=True)
            cluster = _start_cluster(out / "cluster")
            url = cluster.url
        targets = [("tuitalk", url)]
        if not args.no_peer:
            peer, peer_url = _start_peer(out / "peer.log")
            targets.append(("peer", peer_url))
        print(f"tuitalk {url}; {args.users} users, {args.rooms} rooms, "
              f"{args.step_s:g} s per step", flush=True)
        for rate in rates:
            for name, target in targets:
                left = args.budget_s - (time.monotonic() - t0)
                if left < args.step_s + STEP_OVERHEAD_S + 5:
                    print(f"skipped {name} at {rate:g}/s per user: budget spent")
                    continue
                cfg = WorkloadConfig(url=target, rooms=new_rooms(args.rooms), rate_per_s=rate,
                                     churn=0.0, drain_s=3.0, barrier_s=3.0, catchup_s=3.0)
                step_out = out / f"{name}-{rate:g}"
                run = run_workload(WorkloadSpec(cfg, users=args.users,
                                                spawn_rate=float(args.users),
                                                duration_s=args.step_s,
                                                locustfile=HERE / "locustfile.py"), step_out)
                r = measure(step_out, name, rate, args.users, run.returncode)
                results.append(r)
                print(f"  {name:<8} {rate:g}/s per user: {r.sent_per_s:.0f} sent/s, "
                      f"{r.delivered_per_s:.0f} dlv/s, dlv p99 {_fmt(r.dlv_p99_ms, 0)} ms",
                      flush=True)
    finally:
        if peer is not None:
            _stop(peer)
        if cluster is not None:
            cluster.stop()
    print()
    print(table(results))
    print(f"\n{time.monotonic() - t0:.0f} s in all; runs kept in {out}")
    return 0 if results else 1


if __name__ == "__main__":
    raise SystemExit(main())
