"""Latency and availability figures (reported; they never decide validity).

* ``latency.ack_s``: invoke to ok, per acked send.
* ``latency.deliver_s``: the sender's invoke to each receiver's delivery (all receivers,
  the sender included), split into ``live`` and ``recovery`` deliveries.
* ``availability``: per nemesis window, per user active after the fault began, the time
  from the fault's start to its first ``ok`` (sending resumed) and to its first
  ``deliver`` (receiving resumed); quantiles over users, and how many users never resumed.
"""

from __future__ import annotations

import bisect
from typing import Any

from chaos.checker.findings import quantiles
from chaos.checker.model import SAY_KINDS, Run
from chaos.workload import history as h

__all__ = ["availability", "latencies"]


def latencies(run: Run) -> dict[str, Any]:
    ack: list[float] = []
    live: list[float] = []
    recovery: list[float] = []
    for pv in run.processes.values():
        for msg_id, o in pv.outcomes.items():
            inv = pv.invokes.get(msg_id)
            if isinstance(o, h.Ok) and inv is not None:
                ack.append(o.time - inv.time)
        for ds in pv.deliveries.values():
            for d in ds:
                if d.kind not in SAY_KINDS:
                    continue
                sender = run.invokes.get(d.id)
                if sender is not None:
                    (live if d.live else recovery).append(d.time - sender[1].time)
    return {"ack_s": quantiles(ack), "deliver_live_s": quantiles(live),
            "deliver_recovery_s": quantiles(recovery)}


def availability(run: Run) -> list[dict[str, Any]]:
    per_process: list[tuple[list[float], list[float], float]] = []
    for pv in run.processes.values():
        oks = sorted(r.time for r in pv.records if isinstance(r, h.Ok))
        dels = sorted(r.time for r in pv.records if isinstance(r, h.Deliver))
        last = max((r.time for r in pv.records), default=0.0)
        per_process.append((oks, dels, last))
    out: list[dict[str, Any]] = []
    for w in run.nemesis:
        send: list[float] = []
        recv: list[float] = []
        never_send = never_recv = 0
        for oks, dels, last in per_process:
            if last <= w.t:
                continue  # this user was gone before the fault
            i = bisect.bisect_left(oks, w.t)
            if i < len(oks):
                send.append(oks[i] - w.t)
            else:
                never_send += 1
            j = bisect.bisect_left(dels, w.t)
            if j < len(dels):
                recv.append(dels[j] - w.t)
            else:
                never_recv += 1
        out.append({
            "fault": w.fault, "target": w.target, "t": w.t, "end": w.end,
            "duration_s": None if w.end is None else round(w.end - w.t, 3),
            "send_resume_s": {**quantiles(send), "never": never_send},
            "recv_resume_s": {**quantiles(recv), "never": never_recv},
        })
    return out
