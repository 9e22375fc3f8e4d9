"""Run every check, decide the verdict, write ``results.json``, print a summary.

Verdict (Jepsen's rules, priority invalid > unknown > valid):

* **invalid** (exit 1) if any finding of :mod:`~chaos.checker.durability`,
  :mod:`~chaos.checker.delivery` or :mod:`~chaos.checker.consistency` that fails a run
  has a non-zero count;
* else **unknown** (exit 2) if something needed is missing: no histories, a history or
  final read that could not be parsed, a room without a usable final read, or not a
  single acknowledged send;
* else **valid** (exit 0).
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final, Literal

from chaos.checker.consistency import check_consistency
from chaos.checker.delivery import check_delivery
from chaos.checker.durability import check_durability
from chaos.checker.findings import Finding, Findings
from chaos.checker.model import Run, load_run
from chaos.checker.timing import availability, latencies
from chaos.workload import history as h

__all__ = ["EXIT_CODES", "CheckResult", "check", "check_run", "summary"]

Verdict = Literal["valid", "invalid", "unknown"]
EXIT_CODES: Final[dict[str, int]] = {"valid": 0, "invalid": 1, "unknown": 2}
#: Findings that fail a run, in the order the summary lists them.
FAILING: Final = (
    "lost", "ack_mismatch", "lost_archive", "undelivered", "unexpected", "failed_but_present",
    "duplicates_shown", "nonmonotonic", "gaps", "inconsistent_ids", "duplicate_in_history",
    "history_not_linear", "incompatible", "multiple_outcomes",
)
REPORTED: Final = (
    "recovered", "raw_duplicates", "leave_tail", "unsettled", "dup_after_reset",
    "rolled_back_seen", "sender_reorders", "archive_behind",
)


@dataclass
class CheckResult:
    path: Path
    verdict: Verdict
    bad: Findings
    info: Findings
    counts: dict[str, Any]
    latency: dict[str, Any]
    availability: list[dict[str, Any]]
    unknown_reasons: list[str] = field(default_factory=list)

    @property
    def valid(self) -> bool | Literal["unknown"]:
        """Jepsen's ``:valid?``: True, False or "unknown"."""
        if self.verdict == "unknown":
            return "unknown"
        return self.verdict == "valid"

    @property
    def exit_code(self) -> int:
        return EXIT_CODES[self.verdict]

    def to_json(self) -> dict[str, Any]:
        return {
            "valid": self.valid, "verdict": self.verdict, "counts": self.counts,
            "anomalies": self.bad.to_json(), "reported": self.info.to_json(),
            "latency": self.latency, "availability": self.availability,
            "unknown_reasons": self.unknown_reasons,
        }


def check(run: Run) -> CheckResult:
    """Check a loaded run (no files written)."""
    bad, info = Findings(), Findings()
    # List every check, also the ones with nothing to report.
    bad.update({name: Finding() for name in FAILING})
    info.update({name: Finding() for name in REPORTED})
    check_durability(run, bad, info)
    check_delivery(run, bad, info)
    check_consistency(run, bad, info)
    counts = _counts(run)
    unknown = list(run.problems)
    if not run.processes:
        unknown.append("no histories")
    for room in run.rooms:
        if run.final_by_seq.get(room) is None:
            unknown.append(f"no final read of room {room}")
    if counts["ok"] == 0:
        unknown.append("no send was acknowledged")
    if any(f.count for f in bad.values()):
        verdict: Verdict = "invalid"
    elif unknown:
        verdict = "unknown"
    else:
        verdict = "valid"
    return CheckResult(run.path, verdict, bad, info, counts, latencies(run),
                       availability(run), unknown)


def check_run(path: Path, *, write: bool = True) -> CheckResult:
    """Load and check the run in ``path``; writes ``path/results.json`` unless told not to.
    Raises FileNotFoundError if ``path`` is not a directory."""
    result = check(load_run(path))
    if write:
        (path / "results.json").write_text(json.dumps(result.to_json(), indent=2) + "\n")
    return result


def _counts(run: Run) -> dict[str, Any]:
    kinds: Counter[str] = Counter()
    closes: Counter[str] = Counter()
    backends: Counter[str] = Counter()
    live = 0
    for pv in run.processes.values():
        for r in pv.records:
            kinds[r.TYPE] += 1
            if isinstance(r, h.Disconnect):
                closes[str(r.code)] += 1
            elif isinstance(r, h.Connect):
                backends[r.backend] += 1
            elif isinstance(r, h.Deliver) and r.live:
                live += 1
        kinds["info"] += sum(1 for i in pv.invokes if i not in pv.outcomes)
    return {
        "processes": len(run.processes), "rooms": len(run.rooms),
        "invoked": kinds["invoke"], "ok": kinds["ok"], "fail": kinds["fail"],
        "info": kinds["info"], "delivered": kinds["deliver"], "delivered_live": live,
        "connects": kinds["connect"], "disconnects": dict(sorted(closes.items())),
        "connects_per_backend": dict(sorted(backends.items())),
        "resets": kinds["reset"], "joins": kinds["join"], "leaves": kinds["leave"],
        "final_messages": {room: (None if f.api is None else len(f.api))
                           for room, f in sorted(run.finals.items())},
        "skipped_sends": sum(pv.stats.skipped for pv in run.processes.values() if pv.stats),
    }


def _ms(q: dict[str, Any], key: str) -> str:
    v = q.get(key)
    return "-" if v is None else f"{v * 1000:.0f}"


def summary(result: CheckResult) -> str:
    """A one-screen text summary of a check."""
    c = result.counts
    lines = [
        f"run {result.path}: {result.verdict.upper()}",
        f"  users {c['processes']}, rooms {c['rooms']}; sends {c['invoked']}: ok {c['ok']}, "
        f"fail {c['fail']}, info {c['info']}; deliveries {c['delivered']} "
        f"({c['delivered_live']} live)",
        f"  connects {c['connects']} {c['connects_per_backend']}; disconnects "
        f"{c['disconnects']}; resets {c['resets']}; joins {c['joins']}, leaves {c['leaves']}",
    ]
    lat = result.latency
    lines.append("  latency ms (p50/p99/max): ack " + "/".join(
        _ms(lat["ack_s"], k) for k in ("p50", "p99", "max")) + ", deliver live " + "/".join(
        _ms(lat["deliver_live_s"], k) for k in ("p50", "p99", "max")) + ", recovery " +
        "/".join(_ms(lat["deliver_recovery_s"], k) for k in ("p50", "p99", "max")))
    failing = [f"{k} {result.bad[k].count}" for k in FAILING if result.bad[k].count]
    lines.append("  anomalies: " + (", ".join(failing) if failing else "none"))
    reported = [f"{k} {result.info[k].count}" for k in REPORTED if result.info[k].count]
    lines.append("  reported: " + (", ".join(reported) if reported else "nothing"))
    for k in FAILING:
        for ex in result.bad[k].examples[:2]:
            lines.append(f"    {k}: {json.dumps(ex, sort_keys=True)[:160]}")
    for w in result.availability[:8]:
        s, r = w["send_resume_s"], w["recv_resume_s"]
        lines.append(
            f"  fault {w['fault']} {w['target']} ({w['duration_s']}s): resume send "
            f"p50 {_ms(s, 'p50')} p99 {_ms(s, 'p99')} ms (never {s['never']}), receive "
            f"p50 {_ms(r, 'p50')} p99 {_ms(r, 'p99')} ms (never {r['never']})")
    for reason in result.unknown_reasons[:5]:
        lines.append(f"  unknown: {reason}")
    return "\n".join(lines)
