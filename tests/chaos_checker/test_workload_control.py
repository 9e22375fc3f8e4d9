"""The no-fault control run: Locust users against the real cluster, then the checker.

With nothing broken the run must be valid; if it is not, either the system or the
workload/checker pair is wrong, and every chaos result would be suspect.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest

from chaos.checker import check_run, summary
from chaos.workload.config import WorkloadConfig
from chaos.workload.final import final_read
from chaos.workload.run import WorkloadSpec, new_rooms, run_workload
from tuitalk.launcher.cluster import LocalCluster

pytestmark = pytest.mark.integration


def test_control_run_is_valid(cluster: LocalCluster, tmp_path: Path,
                              measure: Any) -> None:
    assert cluster.pg is not None
    out = tmp_path / "control"
    cfg = WorkloadConfig(url=cluster.url, rooms=new_rooms(3), rate_per_s=2.0, churn=0.03,
                         seed=1, drain_s=5.0, barrier_s=5.0, catchup_s=5.0)
    t0 = time.monotonic()
    run = run_workload(WorkloadSpec(cfg, users=10, spawn_rate=10.0, duration_s=15.0), out)
    assert not run.timed_out, (out / "locust.out").read_text()[-2000:]
    assert run.returncode == 0, (out / "locust.out").read_text()[-2000:]
    finals = final_read(out, cluster.url, dsn=cluster.pg.dsn)
    result = check_run(out)
    measure("control run, workload to verdict", time.monotonic() - t0)
    print(summary(result))
    assert all(f.api is not None and f.pg_complete for f in finals.values()), finals
    assert result.verdict == "valid", summary(result)
    assert result.counts["processes"] == 10
    assert result.counts["ok"] > 100
    assert result.counts["delivered_live"] > result.counts["ok"]
    assert result.counts["fail"] == 0
    assert result.info["unsettled"].count == 0  # every user probed its rooms' heads
    # Locust's own reports are kept next to the histories.
    stats = json.loads((out / "locust_stats.json").read_text())
    assert {(e["method"], e["name"]) for e in stats} >= {("ACK", "send→ack"),
                                                         ("DLV", "send→deliver")}
    assert (out / "locust.html").stat().st_size > 0
    assert json.loads((out / "results.json").read_text())["valid"] is True
