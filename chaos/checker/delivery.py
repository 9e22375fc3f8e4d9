"""Delivery: what each user was shown, per room, against what it was entitled to.

A user's shown sequence of a room is cut into *segments* at each ``leave`` and ``reset``
record (a rejoin starts at a later seq; a reset skips to the new head by design). Then:

``duplicates_shown``   the same ``(epoch, seq)`` shown twice, or the same message id shown
                       twice without a reset in between (post-dedup: must be 0)
``nonmonotonic``       a seq at or below an earlier one of the same segment
``gaps``               a jump from seq a to b > a + 1 in a segment where the seqs between
                       (those in the final history, when read) were never shown in it:
                       an unfilled gap (Jepsen's poll-skip)
``undelivered``        a message of the final history the user was entitled to and never
                       shown. Entitlement, from the final history and the user's server
                       ids: from its own ``join`` event (inclusive) to its ``leave`` event
                       (exclusive), or to the head it probed at the end of the run (``end``
                       record); minus reset holes (after the last message shown in the
                       final lineage, up to the head announced after the reset)

Reported, not failing: ``leave_tail`` (entitled messages after the last one shown before a
leave: the server detaches a leaving connection at once, so messages still in flight to
it are not delivered; the contract covers members who *stay*), ``unsettled`` (a room a
user was still in with no ``end`` head: only its internal gaps were checked),
``dup_after_reset`` (a message id shown again after a reset) and ``raw_duplicates``
(duplicates the client core filtered, from its ``stats``).
"""

from __future__ import annotations

import math

from chaos.checker.findings import Findings
from chaos.checker.model import SAY_KINDS, ProcessView, Run
from chaos.workload import history as h

__all__ = ["check_delivery"]


def check_delivery(run: Run, bad: Findings, info: Findings) -> None:
    for pv in run.processes.values():
        rooms = sorted({r.room for r in pv.records
                        if isinstance(r, h.Deliver | h.Join | h.Attach | h.End)})
        for room in rooms:
            recs = pv.room_records(room)
            _order_and_gaps(run, pv, room, recs, bad, info)
            _entitlement(run, pv, room, recs, bad, info)
        if pv.stats is not None and pv.stats.raw_duplicates:
            info["raw_duplicates"].add({"process": pv.name}, pv.stats.raw_duplicates)


def _segments(recs: list[h.Record]) -> list[tuple[bool, list[h.Deliver]]]:
    """Deliveries cut at leave/reset; each with "this segment starts after a reset"."""
    out: list[tuple[bool, list[h.Deliver]]] = [(False, [])]
    for r in recs:
        if isinstance(r, h.Deliver):
            out[-1][1].append(r)
        elif isinstance(r, h.Leave | h.Reset):
            out.append((isinstance(r, h.Reset) or (out[-1][0] and not out[-1][1]), []))
    return [s for s in out if s[1]]


def _order_and_gaps(run: Run, pv: ProcessView, room: str, recs: list[h.Record],
                    bad: Findings, info: Findings) -> None:
    final = run.final_by_seq.get(room)
    positions: set[tuple[str, int]] = set()
    ids_before_reset: set[str] = set()
    ids_since_reset: set[str] = set()
    for after_reset, seg in _segments(recs):
        if after_reset:
            ids_before_reset |= ids_since_reset
            ids_since_reset = set()
        shown = {d.seq for d in seg}
        top: h.Deliver | None = None
        for d in seg:
            ex = {"process": pv.name, "room": room, "epoch": d.epoch, "seq": d.seq, "id": d.id,
                  "time": d.time}
            if (d.epoch, d.seq) in positions:
                bad["duplicates_shown"].add({**ex, "why": "same position twice"})
                continue
            positions.add((d.epoch, d.seq))
            if d.kind in SAY_KINDS:
                if d.id in ids_since_reset:
                    bad["duplicates_shown"].add({**ex, "why": "same id at two positions"})
                elif d.id in ids_before_reset:
                    info["dup_after_reset"].add(ex)
                ids_since_reset.add(d.id)
            if top is not None:
                if d.seq <= top.seq:
                    bad["nonmonotonic"].add({**ex, "after_seq": top.seq})
                    continue
                missing = [s for s in range(top.seq + 1, d.seq) if s not in shown
                           and (final is None or s in final)]
                if missing:
                    bad["gaps"].add({**ex, "after_seq": top.seq, "missing": missing[:20]},
                                    len(missing))
            top = d


def _entitlement(run: Run, pv: ProcessView, room: str, recs: list[h.Record],
                 bad: Findings, info: Findings) -> None:
    final = run.final_by_seq.get(room)
    if final is None or not pv.user_ids:
        return
    seqs = sorted(final)
    delivered = {d.seq for d in pv.deliveries.get(room, [])
                 if (m := final.get(d.seq)) is not None and m.epoch == d.epoch}
    # Membership intervals [join, leave) from the room's own join/leave events.
    intervals: list[tuple[int, float, bool]] = []  # (first, last inclusive, closed by leave)
    start: int | None = None
    for s in seqs:
        m = final[s]
        if m.user not in pv.user_ids:
            continue
        if m.kind == "join" and start is None:
            start = s
        elif m.kind == "leave" and start is not None:
            intervals.append((start, s - 1, True))
            start = None
    if start is not None:
        end = pv.ends.get(room)
        if end is not None and end.head is not None:
            intervals.append((start, end.head, False))
        else:
            shown = [s for s in delivered if s >= start]
            info["unsettled"].add({"process": pv.name, "room": room, "join_seq": start})
            if shown:
                intervals.append((start, max(shown), False))
    holes = _reset_holes(recs, final)
    for first, last, by_leave in intervals:
        got = [s for s in delivered if first <= s <= last]
        last_shown = max(got) if got else first - 1
        for s in seqs:
            if s < first or s > last or s in delivered or any(lo < s <= hi for lo, hi in holes):
                continue
            m = final[s]
            ex = {"process": pv.name, "room": room, "epoch": m.epoch, "seq": s, "id": m.id,
                  "kind": m.kind, "sender": m.user, "interval": [first, last]}
            if by_leave and s > last_shown:
                info["leave_tail"].add(ex)
            else:
                bad["undelivered"].add(ex)


def _reset_holes(recs: list[h.Record], final: dict[int, h.FinalMessage],
                 ) -> list[tuple[float, float]]:
    """``(lo, hi]`` seq ranges a reset excused: from the last message shown in the final
    lineage before the reset up to the head announced by the next ``attach``."""
    holes: list[tuple[float, float]] = []
    last_consistent = 0
    pending: float | None = None
    for r in recs:
        if isinstance(r, h.Deliver):
            m = final.get(r.seq)
            if m is not None and m.epoch == r.epoch:
                last_consistent = max(last_consistent, r.seq)
        elif isinstance(r, h.Reset):
            pending = last_consistent if pending is None else pending
        elif isinstance(r, h.Attach) and pending is not None:
            holes.append((pending, r.head))
            pending = None
    if pending is not None:
        holes.append((pending, math.inf))
    return holes
