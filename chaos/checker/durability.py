"""Durability: Jepsen's ``set`` checker over sends and the final reads.

With *attempts* = every invoked send, *acked* = sends with an ``ok``, *final* = the room's
history read through the API once the run was over (and the archive, when read):

``lost``               acked, but its id is not in the final history of its room
``ack_mismatch``       acked at ``(epoch, seq)`` but the final history has it elsewhere
``lost_archive``       acked, but not in PostgreSQL (only when the archive was read)
``unexpected``         a user-sent message (``text``/``me``) in the final history or
                       delivered to someone, whose id nobody invoked; server events
                       (``join``/``leave``/``nick``) are excepted
``failed_but_present`` refused for good (``fail``) yet in the history or delivered
``recovered`` (info)   outcome unknown (``info``), and it did persist: allowed
``archive_behind`` (info)  in the API history but not (yet) in PostgreSQL, acked or not

Sends with an unknown outcome are never counted as lost.
"""

from __future__ import annotations

from chaos.checker.findings import Findings
from chaos.checker.model import SAY_KINDS, Run
from chaos.workload import history as h

__all__ = ["check_durability"]


def check_durability(run: Run, bad: Findings, info: Findings) -> None:
    """Add the findings above to ``bad`` (they invalidate a run) and ``info``."""
    for pv in run.processes.values():
        for msg_id, outcome in pv.outcomes.items():
            room = outcome.room
            final = run.final_by_id.get(room)
            if final is None:
                continue  # no final read of the room: the verdict is unknown anyway
            found = final.get(msg_id, [])
            if isinstance(outcome, h.Ok):
                ex = {"process": pv.name, "room": room, "id": msg_id, "epoch": outcome.epoch,
                      "seq": outcome.seq, "acked_at": outcome.time}
                if not found:
                    bad["lost"].add(ex)
                elif all((m.epoch, m.seq) != (outcome.epoch, outcome.seq) for m in found):
                    bad["ack_mismatch"].add({**ex, "final": [[m.epoch, m.seq] for m in found]})
                _check_archive(run, room, ex, bad)
            elif isinstance(outcome, h.Fail) and found:
                bad["failed_but_present"].add({"process": pv.name, "room": room,
                                               "id": msg_id, "code": outcome.code})
            elif isinstance(outcome, h.Info) and found:
                info["recovered"].add({"process": pv.name, "room": room, "id": msg_id})
        for msg_id, inv in pv.invokes.items():
            if msg_id not in pv.outcomes and inv.room in run.final_by_id and \
                    msg_id in run.final_by_id[inv.room]:
                info["recovered"].add({"process": pv.name, "room": inv.room, "id": msg_id,
                                       "note": "no outcome recorded"})
        # Delivered messages nobody sent, and refused sends that were delivered anyway.
        for room, ds in pv.deliveries.items():
            for d in ds:
                if d.kind not in SAY_KINDS:
                    continue
                sender = run.invokes.get(d.id)
                if sender is None:
                    bad["unexpected"].add({"process": pv.name, "room": room, "id": d.id,
                                           "seq": d.seq, "seen": "delivered"})
                elif run.processes[sender[0]].outcome(d.id) == "fail":
                    bad["failed_but_present"].add({"process": pv.name, "room": room,
                                                   "id": d.id, "seen": "delivered"})
    for room in run.rooms:
        f = run.finals.get(room)
        if f is None or f.api is None:
            continue
        for m in f.api:
            if m.kind in SAY_KINDS and m.id not in run.invokes:
                bad["unexpected"].add({"room": room, "id": m.id, "epoch": m.epoch,
                                       "seq": m.seq, "user": m.user, "seen": "final"})
        if f.pg is not None:
            archived = {(m.epoch, m.seq) for m in f.pg}
            for m in f.api:
                if (m.epoch, m.seq) not in archived and m.user != f.reader:
                    info["archive_behind"].add({"room": room, "epoch": m.epoch, "seq": m.seq})
            for m in f.pg:
                if m.kind in SAY_KINDS and m.id not in run.invokes:
                    bad["unexpected"].add({"room": room, "id": m.id, "epoch": m.epoch,
                                           "seq": m.seq, "seen": "archive"})


def _check_archive(run: Run, room: str, ex: dict[str, object], bad: Findings) -> None:
    ids = run.pg_ids.get(room)
    if ids is not None and ex["id"] not in ids:
        bad["lost_archive"].add(ex)
