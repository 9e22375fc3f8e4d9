"""A run directory loaded into indexed, read-only views for the checks.

Layout of a run directory (what :func:`load_run` reads)::

    run.json                    the runner's metadata (rooms, users, times); optional
    histories/<process>.jsonl   one history per synthetic user (chaos.workload.history)
    final/<room>.json           final reads (chaos.workload.history.FinalRead); optional
    nemesis.jsonl               fault windows {"t", "end", "fault", "target"}; optional

Problems with the files (a torn history, a bad final read) do not raise: they are listed
in :attr:`Run.problems` and make the verdict *unknown* at best.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from chaos.workload import history as h

__all__ = ["FaultWindow", "ProcessView", "Run", "load_run"]

#: Message kinds a user sends; the others (join, leave, nick) are events the server writes.
SAY_KINDS = frozenset({"text", "me"})


@dataclass(frozen=True)
class FaultWindow:
    """One nemesis operation: ``fault`` on ``target`` from ``t`` to ``end`` (wall clock)."""

    t: float
    end: float | None
    fault: str
    target: str


@dataclass
class ProcessView:
    """One synthetic user's history, indexed."""

    name: str
    records: list[h.Record]
    #: Server user ids this process was welcomed as (one unless a token was refused).
    user_ids: set[str] = field(default_factory=set)
    invokes: dict[str, h.Invoke] = field(default_factory=dict)
    #: The first outcome of each send; later ones are listed in ``extra_outcomes``.
    outcomes: dict[str, h.Ok | h.Fail | h.Info] = field(default_factory=dict)
    extra_outcomes: list[h.Record] = field(default_factory=list)
    deliveries: dict[str, list[h.Deliver]] = field(default_factory=dict)
    ends: dict[str, h.End] = field(default_factory=dict)
    stats: h.Stats | None = None

    @classmethod
    def build(cls, name: str, records: list[h.Record]) -> ProcessView:
        v = cls(name, records)
        for r in records:
            if isinstance(r, h.Connect):
                v.user_ids.add(r.user)
            elif isinstance(r, h.Invoke):
                v.invokes.setdefault(r.id, r)
            elif isinstance(r, h.Ok | h.Fail | h.Info):
                if r.id in v.outcomes:
                    v.extra_outcomes.append(r)
                else:
                    v.outcomes[r.id] = r
            elif isinstance(r, h.Deliver):
                v.deliveries.setdefault(r.room, []).append(r)
            elif isinstance(r, h.End):
                v.ends[r.room] = r
            elif isinstance(r, h.Stats):
                v.stats = r
        return v

    def room_records(self, room: str) -> list[h.Record]:
        """Records about ``room``, in order (deliveries, membership, resets, end)."""
        return [r for r in self.records if getattr(r, "room", None) == room]

    def outcome(self, msg_id: str) -> str:
        """``ok``, ``fail`` or ``info`` (no outcome recorded counts as ``info``)."""
        o = self.outcomes.get(msg_id)
        return o.TYPE if o is not None else "info"


@dataclass
class Run:
    path: Path
    meta: dict[str, Any]
    processes: dict[str, ProcessView]
    finals: dict[str, h.FinalRead]
    rooms: list[str]
    nemesis: list[FaultWindow]
    problems: list[str]

    # -- derived indexes (built once) -----------------------------------------------------------

    def __post_init__(self) -> None:
        self.invokes: dict[str, tuple[str, h.Invoke]] = {}
        for pv in self.processes.values():
            for msg_id, inv in pv.invokes.items():
                self.invokes.setdefault(msg_id, (pv.name, inv))
        self.readers = {f.reader for f in self.finals.values() if f.reader}
        #: Final API history per room, by seq (None: no usable read of that room).
        self.final_by_seq: dict[str, dict[int, h.FinalMessage] | None] = {}
        self.final_by_id: dict[str, dict[str, list[h.FinalMessage]]] = {}
        #: Ids in the archive per room (only rooms whose archive was read).
        self.pg_ids: dict[str, set[str]] = {}
        for room in self.rooms:
            f = self.finals.get(room)
            if f is not None and f.pg is not None:
                self.pg_ids[room] = {m.id for m in f.pg}
            if f is None or f.api is None:
                self.final_by_seq[room] = None
                continue
            by_seq: dict[int, h.FinalMessage] = {}
            by_id: dict[str, list[h.FinalMessage]] = {}
            for m in f.api:
                by_seq.setdefault(m.seq, m)
                by_id.setdefault(m.id, []).append(m)
            self.final_by_seq[room] = by_seq
            self.final_by_id[room] = by_id

    @property
    def complete_final(self) -> bool:
        return bool(self.rooms) and all(v is not None for v in self.final_by_seq.values())


def load_run(path: Path) -> Run:
    """Load a run directory (see the module docstring). Never raises for bad content;
    raises FileNotFoundError if ``path`` is not a directory."""
    if not path.is_dir():
        raise FileNotFoundError(f"no run directory {path}")
    problems: list[str] = []
    meta: dict[str, Any] = {}
    if (path / "run.json").exists():
        try:
            meta = json.loads((path / "run.json").read_text())
        except ValueError as exc:
            problems.append(f"run.json: {exc}")
    processes: dict[str, ProcessView] = {}
    for f in sorted((path / "histories").glob("*.jsonl")):
        try:
            records = h.read_history(f)
        except h.HistoryFormatError as exc:
            problems.append(str(exc))
            continue
        processes[f.stem] = ProcessView.build(f.stem, records)
    finals: dict[str, h.FinalRead] = {}
    for f in sorted((path / "final").glob("*.json")):
        try:
            fr = h.FinalRead.from_json(f.read_text())
        except h.HistoryFormatError as exc:
            problems.append(f"{f}: {exc}")
            continue
        finals[fr.room] = fr
        if fr.error:
            problems.append(f"final read of {fr.room}: {fr.error}")
    rooms = [str(r) for r in meta.get("rooms", [])]
    seen = {r.room for pv in processes.values() for r in pv.records if hasattr(r, "room")}
    rooms += sorted((seen | set(finals)) - set(rooms))
    return Run(path, meta, processes, finals, rooms, _load_nemesis(path, problems), problems)


def _load_nemesis(path: Path, problems: list[str]) -> list[FaultWindow]:
    f = path / "nemesis.jsonl"
    if not f.exists():
        return []
    out: list[FaultWindow] = []
    for n, line in enumerate(f.read_text().splitlines(), 1):
        if not line.strip():
            continue
        try:
            o = json.loads(line)
            target = o.get("target")
            out.append(FaultWindow(
                float(o["t"]), None if o.get("end") is None else float(o["end"]),
                str(o.get("fault", "?")),
                target if isinstance(target, str) else json.dumps(target, sort_keys=True)))
        except (ValueError, KeyError, TypeError) as exc:
            problems.append(f"nemesis.jsonl:{n}: {exc}")
    return sorted(out, key=lambda w: w.t)
