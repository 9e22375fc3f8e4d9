"""Reports of a chaos run: the timeline picture, node logs, and a one-screen summary.

A run directory ``chaos/store/<scenario>/<time>/`` holds::

    histories/*.jsonl   every synthetic user's history (chaos.workload.history)
    final/*.json        each room's final history (API and PostgreSQL)
    nemesis.jsonl       fault windows
    results.json        the checker's verdict and figures
    locust*             Locust's stats and HTML report
    logs/               the node logs of the cluster the run used
    timeline.png        sends/s, deliveries/s and delivery latency over time, faults shaded
"""

from __future__ import annotations

import json
import shutil
from collections import defaultdict
from pathlib import Path
from typing import Any

from chaos.workload.history import Deliver, Invoke, read_history

__all__ = ["collect_logs", "load_faults", "summary_line", "timeline"]


def load_faults(run_dir: Path) -> list[dict[str, Any]]:
    path = run_dir / "nemesis.jsonl"
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def collect_logs(cluster_base: Path, run_dir: Path) -> None:
    """Copy every ``*.log`` of the cluster directory into ``<run>/logs/``."""
    dest = run_dir / "logs"
    dest.mkdir(parents=True, exist_ok=True)
    for log in cluster_base.rglob("*.log"):
        if dest in log.parents:
            continue
        rel = log.relative_to(cluster_base)
        target = dest / "_".join(rel.parts)
        shutil.copyfile(log, target)


def _series(run_dir: Path) -> tuple[dict[int, int], dict[int, int], dict[int, list[float]], float]:
    sends: dict[int, int] = defaultdict(int)
    delivers: dict[int, int] = defaultdict(int)
    latency: dict[int, list[float]] = defaultdict(list)
    invoked: dict[str, float] = {}
    records = []
    for path in sorted((run_dir / "histories").glob("*.jsonl")):
        records.extend(read_history(path))
    if not records:
        return sends, delivers, latency, 0.0
    t0 = min(r.time for r in records)
    for r in records:
        if isinstance(r, Invoke):
            invoked[r.id] = r.time
            sends[int(r.time - t0)] += 1
    for r in records:
        if isinstance(r, Deliver) and r.kind in ("text", "me"):
            sec = int(r.time - t0)
            delivers[sec] += 1
            sent = invoked.get(r.id)
            if sent is not None:
                latency[sec].append(r.time - sent)
    return sends, delivers, latency, t0


def timeline(run_dir: Path, title: str = "") -> Path | None:
    """Draw ``timeline.png``; returns its path (None without histories)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    sends, delivers, latency, t0 = _series(run_dir)
    if not sends and not delivers:
        return None
    end = max([*sends, *delivers, 0]) + 1
    xs = list(range(end))
    fig, (ax1, ax2) = plt.subplots(2, 1, figsize=(10, 5.5), sharex=True)
    ax1.plot(xs, [sends.get(x, 0) for x in xs], label="sends/s", color="#1f77b4")
    ax1.plot(xs, [delivers.get(x, 0) for x in xs], label="deliveries/s", color="#2ca02c")
    ax1.set_ylabel("per second")
    ax1.legend(loc="upper right")
    p50, p99 = [], []
    for x in xs:
        vals = sorted(latency.get(x, []))
        p50.append(vals[len(vals) // 2] * 1000 if vals else float("nan"))
        p99.append(vals[min(len(vals) - 1, int(len(vals) * 0.99))] * 1000 if vals else float("nan"))
    ax2.plot(xs, p50, label="latency p50", color="#9467bd")
    ax2.plot(xs, p99, label="latency p99", color="#d62728")
    ax2.set_yscale("log")
    ax2.set_ylabel("send→deliver ms")
    ax2.set_xlabel("seconds since start")
    ax2.legend(loc="upper right")
    for f in load_faults(run_dir):
        start = f["t"] - t0
        stop = (f.get("end") or f["t"]) - t0
        for ax in (ax1, ax2):
            ax.axvspan(start, max(stop, start + 0.2), color="orange", alpha=0.25)
        ax1.text(start, ax1.get_ylim()[1] * 0.92, f"{f['fault']} {f['target']}"[:40],
                 fontsize=7, rotation=0)
    fig.suptitle(title or run_dir.parent.name)
    fig.tight_layout()
    out = run_dir / "timeline.png"
    fig.savefig(out, dpi=100)
    plt.close(fig)
    return out


def summary_line(name: str, results: dict[str, Any]) -> str:
    """One line per scenario for the suite's summary table."""
    counts = results.get("counts", {})
    anomalies = results.get("anomalies", {})
    bad = sum(int(v.get("count", 0)) for v in anomalies.values() if isinstance(v, dict))
    parts = [
        f"{name:<24} {results.get('verdict', '?'):<8}",
        f"acked {counts.get('ok', '?')}/{counts.get('invoked', '?')}",
        f"delivered {counts.get('delivered', '?')}",
        f"anomalies {bad}",
    ]
    for w in results.get("availability", []):
        send = w.get("send_resume_s", {})
        recv = w.get("recv_resume_s", {})
        parts.append(
            f"[{w.get('fault')} {w.get('target')}: recv p99 {_s(recv.get('p99'))},"
            f" send p99 {_s(send.get('p99'))}, never {recv.get('never', 0)}]"
        )
    return " ".join(parts)


def _s(value: Any) -> str:
    return f"{value:.2f}s" if isinstance(value, int | float) else "-"
