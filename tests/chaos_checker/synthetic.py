"""Synthetic run directories for the checker's self-tests.

:class:`SynthRun` builds a correct run in memory (users join rooms, send, and every member
is shown every message from its own join event on), which a test then breaks in one
planted way before writing it out with :meth:`SynthRun.write`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from chaos.workload import history as h

EPOCH = "e1"
READER = "reader"


@dataclass
class Message:
    room: str
    seq: int
    id: str
    user: str
    kind: str
    time: float


@dataclass
class SynthRun:
    rooms: tuple[str, ...] = ("r0", "r1")
    users: int = 3
    msgs_per_user: int = 6
    records: dict[str, list[h.Record]] = field(default_factory=dict)
    messages: dict[str, list[Message]] = field(default_factory=dict)
    nemesis: list[dict[str, object]] = field(default_factory=list)
    read_pg: bool = True

    def __post_init__(self) -> None:
        t = 1000.0
        seq = dict.fromkeys(self.rooms, 0)
        self.messages = {r: [] for r in self.rooms}
        procs = [f"u{i}" for i in range(self.users)]
        self.records = {p: [h.Start(p, t, "ws://x", i, 1)] for i, p in enumerate(procs)}
        for p in procs:
            t += 0.01
            self.records[p].append(h.Connect(p, t, "backend-1", self.uid(p), 1))
        for room in self.rooms:
            for p in procs:
                t += 0.01
                seq[room] += 1
                self.messages[room].append(Message(room, seq[room], f"ev-{room}-{p}", self.uid(p),
                                                   "join", t))
        for n in range(self.msgs_per_user):
            for i, p in enumerate(procs):
                room = self.rooms[(n + i) % len(self.rooms)]
                t += 0.01
                msg_id = f"m-{p}-{n}"
                self.records[p].append(h.Invoke(p, t, room, msg_id, f"{p} #{n}"))
                seq[room] += 1
                self.messages[room].append(Message(room, seq[room], msg_id, self.uid(p), "text",
                                                   t + 0.002))
                self.records[p].append(h.Ok(p, t + 0.004, room, msg_id, EPOCH, seq[room]))
        for p in procs:
            for room in self.rooms:
                for m in self.messages[room]:
                    if m.seq < self.join_seq(p, room):
                        continue
                    self.records[p].append(h.Deliver(p, m.time + 0.003, room, EPOCH, m.seq, m.id,
                                                     m.user, m.kind, True))
                    if m.kind == "join" and m.user == self.uid(p):
                        self.records[p].append(h.Join(p, m.time + 0.003, room, EPOCH, m.seq))
        end = t + 1.0
        for p in procs:
            for room in self.rooms:
                self.records[p].append(h.End(p, end, room, EPOCH, seq[room], seq[room]))
            self.records[p].append(h.Stats(p, end, 0, 0, 0, 0, 0))
            self.sort(p)

    @staticmethod
    def uid(process: str) -> str:
        return "id-" + process

    def join_seq(self, process: str, room: str) -> int:
        return next(m.seq for m in self.messages[room]
                    if m.kind == "join" and m.user == self.uid(process))

    def sort(self, process: str) -> None:
        self.records[process].sort(key=lambda r: r.time)

    # -- planting bugs -------------------------------------------------------------------------

    def deliveries(self, process: str, room: str, kind: str = "text") -> list[h.Deliver]:
        return [r for r in self.records[process]
                if isinstance(r, h.Deliver) and r.room == room and r.kind == kind]

    def remove(self, process: str, record: h.Record) -> None:
        self.records[process].remove(record)

    def text(self, room: str, n: int) -> Message:
        """The n-th user message of ``room``."""
        return [m for m in self.messages[room] if m.kind == "text"][n]

    # -- output ----------------------------------------------------------------------------------

    def final(self, room: str) -> list[h.FinalMessage]:
        msgs = [h.FinalMessage(EPOCH, m.seq, m.id, m.user, m.kind, int(m.time * 1000))
                for m in self.messages[room]]
        top = max((m.seq for m in self.messages[room]), default=0)
        return [*msgs, h.FinalMessage(EPOCH, top + 1, "ev-reader", READER, "join", 0)]

    def write(self, out: Path) -> Path:
        out.mkdir(parents=True, exist_ok=True)
        (out / "run.json").write_text(json.dumps({"rooms": list(self.rooms)}))
        (out / "histories").mkdir(exist_ok=True)
        for p, recs in self.records.items():
            text = "".join(h.encode(r) + "\n" for r in recs)
            (out / "histories" / f"{p}.jsonl").write_text(text)
        (out / "final").mkdir(exist_ok=True)
        for room in self.rooms:
            api = self.final(room)
            fr = h.FinalRead(room, 2000.0, READER, api, list(api) if self.read_pg else None,
                             self.read_pg)
            (out / "final" / f"{room}.json").write_text(fr.to_json())
        if self.nemesis:
            (out / "nemesis.jsonl").write_text(
                "".join(json.dumps(w) + "\n" for w in self.nemesis))
        return out
