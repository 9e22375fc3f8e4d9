"""Consistency: every observer agrees on what each position of a room holds.

Observations of a position ``(room, epoch, seq)`` come from acks, deliveries, the API
final read and the archive. Findings:

``inconsistent_ids``      one ``(room, epoch, seq)`` observed with two different ids
                          (Jepsen's inconsistent-offsets; contract rule 4)
``duplicate_in_history``  one sent message id at two positions of a final history (the
                          idempotent send failed)
``history_not_linear``    the API final history holds two epochs at one seq
``incompatible``          a user was shown ``(epoch, seq)`` that the final history of the
                          same lineage does not hold (it vanished, or the final read is
                          behind what users saw): the user's history is not a prefix-
                          compatible view of the final one (Elle's incompatible-order)
``multiple_outcomes``     a send with two outcomes in one history (a recorder bug)

Reported, not failing: ``rolled_back_seen`` (a user was shown a position of an epoch that
a failover rolled back; the reset that follows is the designed recovery) and
``sender_reorders`` (a sender's acked messages sequenced out of send order in a room,
possible when a refused-and-retried send overtakes: the contract orders by seq).
"""

from __future__ import annotations

import bisect
import itertools

from chaos.checker.findings import Findings
from chaos.checker.model import SAY_KINDS, Run
from chaos.workload import history as h

__all__ = ["check_consistency"]

Position = tuple[str, str, int]


def check_consistency(run: Run, bad: Findings, info: Findings) -> None:
    _positions(run, bad)
    _final_histories(run, bad)
    _prefix_compatible(run, bad, info)
    for pv in run.processes.values():
        for r in pv.extra_outcomes:
            bad["multiple_outcomes"].add({"process": pv.name, "record": h.encode(r)})
        _sender_order(pv.name, pv.records, info)


def _positions(run: Run, bad: Findings) -> None:
    seen: dict[Position, dict[str, list[str]]] = {}

    def note(pos: Position, msg_id: str, source: str) -> None:
        sources = seen.setdefault(pos, {}).setdefault(msg_id, [])
        if len(sources) < 3:
            sources.append(source)

    for pv in run.processes.values():
        for o in pv.outcomes.values():
            if isinstance(o, h.Ok):
                note((o.room, o.epoch, o.seq), o.id, f"ack:{pv.name}")
        for room, ds in pv.deliveries.items():
            for d in ds:
                note((room, d.epoch, d.seq), d.id, f"deliver:{pv.name}")
    for room, f in run.finals.items():
        for m in f.api or []:
            note((room, m.epoch, m.seq), m.id, "final:api")
        for m in f.pg or []:
            note((room, m.epoch, m.seq), m.id, "final:pg")
    for (room, epoch, seq), ids in sorted(seen.items()):
        if len(ids) > 1:
            bad["inconsistent_ids"].add({"room": room, "epoch": epoch, "seq": seq, "ids": ids})


def _final_histories(run: Run, bad: Findings) -> None:
    for room, f in sorted(run.finals.items()):
        for source, msgs in (("api", f.api), ("pg", f.pg)):
            where: dict[str, list[list[object]]] = {}
            for m in msgs or []:
                if m.kind in SAY_KINDS:
                    where.setdefault(m.id, []).append([m.epoch, m.seq])
            for msg_id, pos in where.items():
                if len(pos) > 1:
                    bad["duplicate_in_history"].add({"room": room, "id": msg_id,
                                                     "source": source, "positions": pos})
        seqs: dict[int, str] = {}
        for m in f.api or []:
            if seqs.setdefault(m.seq, m.epoch) != m.epoch:
                bad["history_not_linear"].add({"room": room, "seq": m.seq,
                                               "epochs": [seqs[m.seq], m.epoch]})


def _prefix_compatible(run: Run, bad: Findings, info: Findings) -> None:
    for room in run.rooms:
        final = run.final_by_seq.get(room)
        if not final:
            continue
        seqs = sorted(final)
        for pv in run.processes.values():
            for d in pv.deliveries.get(room, []):
                m = final.get(d.seq)
                if m is not None and m.epoch == d.epoch:
                    continue  # same position; a different id is an inconsistent_ids finding
                ex = {"process": pv.name, "room": room, "epoch": d.epoch, "seq": d.seq,
                      "id": d.id, "kind": d.kind}
                if _lineage_epoch(final, seqs, d.seq) != d.epoch:
                    info["rolled_back_seen"].add(ex)
                else:
                    why = "vanished" if d.seq <= seqs[-1] else "beyond the final head"
                    bad["incompatible"].add({**ex, "why": why})


def _lineage_epoch(final: dict[int, h.FinalMessage], seqs: list[int], seq: int) -> str:
    """The final history's epoch around ``seq`` (its own, else the nearest one below)."""
    if seq in final:
        return final[seq].epoch
    i = bisect.bisect_left(seqs, seq)
    return final[seqs[i - 1] if i > 0 else seqs[0]].epoch


def _sender_order(process: str, records: list[h.Record], info: Findings) -> None:
    order = {r.id: n for n, r in enumerate(records) if isinstance(r, h.Invoke)}
    acked: dict[str, list[tuple[int, str, int]]] = {}
    for r in records:
        if isinstance(r, h.Ok) and r.id in order:
            acked.setdefault(r.room, []).append((order[r.id], r.epoch, r.seq))
    for room, oks in acked.items():
        oks.sort()
        for (_, e1, s1), (_, e2, s2) in itertools.pairwise(oks):
            if e1 == e2 and s2 < s1:
                info["sender_reorders"].add({"process": process, "room": room,
                                             "seqs": [s1, s2]})
