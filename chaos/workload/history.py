"""The history a chaos run records, and the final reads it ends with: schema and JSON codec.

Each synthetic user ("process", in Jepsen's words) appends one JSON object per line to
``<out>/histories/<process>.jsonl``. Every line has ``type``, ``process`` and ``time``
(wall-clock seconds, ``time.time()``, so that it lines up with ``nemesis.jsonl``); the
other fields depend on the type:

=============  ================================================================================
type           fields and meaning
=============  ================================================================================
``start``      ``url, seed, pid, schema``: the process began (``schema`` = :data:`SCHEMA`)
``connect``    ``backend, user, conn``: welcomed on connection number ``conn``; ``user`` is the
               server's user id (stable across reconnects while the token is accepted)
``disconnect`` ``backend, code, reason``: the socket closed (``code`` None: no close frame)
``invoke``     ``room, id, text``: a send entered the outbox (``id`` is the client id)
``ok``         ``room, id, epoch, seq``: the server acknowledged ``id`` at ``(epoch, seq)``
``fail``       ``room, id, code, detail``: the server refused ``id`` for good (never sequenced)
``info``       ``room, id, reason``: outcome unknown (unacked at the end, or dropped by the
               client after a leave): it may or may not be in the room's history
``deliver``    ``room, epoch, seq, id, sender, kind, live``: the client core *showed* this
               message (after its dedup); ``live`` False means it came by recovery (replay)
``join``       ``room, epoch, seq``: the user saw its own join event at ``seq``: from here on
               it is entitled to every later message of the room
``leave``      ``room, epoch, seq``: the server confirmed a leave; ``seq`` is the user's own
               leave event when the client saw it, else None (the final history has it)
``attach``     ``room, epoch, head, resumed``: a ``joined`` frame: delivery continues after
               ``head`` (after a reset the messages up to ``head`` are not replayed)
``reset``      ``room, reason, epoch, seq``: the room's history changed under the client;
               ``(epoch, seq)`` is the last message shown before it (None if none)
``end``        ``room, epoch, head, cursor``: end of run for a room the user is still in:
               ``head`` is the room's newest seq probed after every user finished sending,
               ``cursor`` the last seq shown (``cursor >= head``: the user caught up)
``stats``      ``raw_duplicates, shown, resyncs, reconnects, skipped``: the client core's
               counters at the end (``skipped``: sends not made because the outbox was full)
``error``      ``code, detail, ref``: an ``error`` frame that refused no send (e.g. a retried
               ``rate_limited``); for diagnosis only
=============  ================================================================================

Invariants the recorder keeps: every ``ok``/``fail``/``info`` follows the ``invoke`` of the
same id in the same file; a send has at most one outcome; an ``invoke`` with no outcome (the
process died) is treated as ``info`` by the checker.

The final read of a room (``<out>/final/<room>.json``) is a :class:`FinalRead`: the whole
history through the WebSocket API (``api``) and, when a DSN was given, the PostgreSQL
archive (``pg``), as lists of :class:`FinalMessage` in seq order.

:func:`encode` and :func:`decode` are the only codec; :func:`decode` raises
:class:`HistoryFormatError` and nothing else on a bad line.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from dataclasses import MISSING, asdict, dataclass, fields
from pathlib import Path
from types import UnionType
from typing import IO, Any, ClassVar, Final, TypeAlias, Union, get_args, get_origin, get_type_hints

__all__ = [
    "SCHEMA",
    "Attach",
    "Connect",
    "Deliver",
    "Disconnect",
    "End",
    "Error",
    "Fail",
    "FinalMessage",
    "FinalRead",
    "HistoryFormatError",
    "HistoryWriter",
    "Info",
    "Invoke",
    "Join",
    "Leave",
    "Ok",
    "Record",
    "Reset",
    "Start",
    "Stats",
    "decode",
    "encode",
    "read_history",
]

#: Version of this schema; bump it when a field changes meaning.
SCHEMA: Final = 1


class HistoryFormatError(ValueError):
    """A history line or final-read file does not match the schema (the file's fault)."""


@dataclass(frozen=True, slots=True)
class Start:
    TYPE: ClassVar[str] = "start"
    process: str
    time: float
    url: str
    seed: int
    pid: int
    schema: int = SCHEMA


@dataclass(frozen=True, slots=True)
class Connect:
    TYPE: ClassVar[str] = "connect"
    process: str
    time: float
    backend: str
    user: str
    conn: int


@dataclass(frozen=True, slots=True)
class Disconnect:
    TYPE: ClassVar[str] = "disconnect"
    process: str
    time: float
    backend: str
    code: int | None
    reason: str


@dataclass(frozen=True, slots=True)
class Invoke:
    TYPE: ClassVar[str] = "invoke"
    process: str
    time: float
    room: str
    id: str
    text: str


@dataclass(frozen=True, slots=True)
class Ok:
    TYPE: ClassVar[str] = "ok"
    process: str
    time: float
    room: str
    id: str
    epoch: str
    seq: int


@dataclass(frozen=True, slots=True)
class Fail:
    TYPE: ClassVar[str] = "fail"
    process: str
    time: float
    room: str
    id: str
    code: str
    detail: str


@dataclass(frozen=True, slots=True)
class Info:
    TYPE: ClassVar[str] = "info"
    process: str
    time: float
    room: str
    id: str
    reason: str


@dataclass(frozen=True, slots=True)
class Deliver:
    TYPE: ClassVar[str] = "deliver"
    process: str
    time: float
    room: str
    epoch: str
    seq: int
    id: str
    sender: str
    kind: str
    live: bool


@dataclass(frozen=True, slots=True)
class Join:
    TYPE: ClassVar[str] = "join"
    process: str
    time: float
    room: str
    epoch: str
    seq: int


@dataclass(frozen=True, slots=True)
class Leave:
    TYPE: ClassVar[str] = "leave"
    process: str
    time: float
    room: str
    epoch: str | None
    seq: int | None


@dataclass(frozen=True, slots=True)
class Attach:
    TYPE: ClassVar[str] = "attach"
    process: str
    time: float
    room: str
    epoch: str
    head: int
    resumed: bool


@dataclass(frozen=True, slots=True)
class Reset:
    TYPE: ClassVar[str] = "reset"
    process: str
    time: float
    room: str
    reason: str
    epoch: str | None
    seq: int | None


@dataclass(frozen=True, slots=True)
class End:
    TYPE: ClassVar[str] = "end"
    process: str
    time: float
    room: str
    epoch: str | None
    head: int | None
    cursor: int | None


@dataclass(frozen=True, slots=True)
class Stats:
    TYPE: ClassVar[str] = "stats"
    process: str
    time: float
    raw_duplicates: int
    shown: int
    resyncs: int
    reconnects: int
    skipped: int


@dataclass(frozen=True, slots=True)
class Error:
    TYPE: ClassVar[str] = "error"
    process: str
    time: float
    code: str
    detail: str
    ref: str


Record: TypeAlias = (
    Start | Connect | Disconnect | Invoke | Ok | Fail | Info | Deliver | Join | Leave | Attach
    | Reset | End | Stats | Error
)

_TYPES: Final[dict[str, type[Any]]] = {
    cls.TYPE: cls
    for cls in (Start, Connect, Disconnect, Invoke, Ok, Fail, Info, Deliver, Join, Leave,
                Attach, Reset, End, Stats, Error)
}


# -- codec ------------------------------------------------------------------------------------


def encode(record: Record) -> str:
    """One compact JSON line (no newline) for ``record``."""
    return json.dumps({"type": record.TYPE, **asdict(record)}, separators=(",", ":"),
                      ensure_ascii=False)


def decode(line: str | bytes) -> Record:
    """Parse one history line. Raises :class:`HistoryFormatError` on anything malformed."""
    try:
        obj = json.loads(line)
    except (ValueError, UnicodeDecodeError) as exc:
        raise HistoryFormatError(f"not JSON: {str(line)[:80]!r}") from exc
    if not isinstance(obj, dict):
        raise HistoryFormatError("a history line must be a JSON object")
    cls = _TYPES.get(obj.get("type"))  # type: ignore[arg-type]
    if cls is None:
        raise HistoryFormatError(f"unknown record type {obj.get('type')!r}")
    record: Record = _build(cls, obj)
    return record


def _build(cls: type[Any], obj: dict[str, Any]) -> Any:
    hints = _hints(cls)
    kwargs: dict[str, Any] = {}
    for f in fields(cls):
        if f.name not in obj:
            if f.default is not MISSING:
                continue
            raise HistoryFormatError(f"{cls.__name__}: missing field {f.name!r}")
        value = obj[f.name]
        if not _fits(value, hints[f.name]):
            raise HistoryFormatError(f"{cls.__name__}.{f.name}: bad value {value!r}")
        kwargs[f.name] = float(value) if hints[f.name] is float else value
    return cls(**kwargs)


_HINTS: dict[type[Any], dict[str, Any]] = {}


def _hints(cls: type[Any]) -> dict[str, Any]:
    hints = _HINTS.get(cls)
    if hints is None:
        hints = _HINTS[cls] = get_type_hints(cls)
    return hints


def _fits(value: object, hint: Any) -> bool:
    origin = get_origin(hint)
    if origin is UnionType or origin is Union:
        return any(_fits(value, arg) for arg in get_args(hint))
    if origin is list:
        (item,) = get_args(hint)
        return isinstance(value, list) and all(_fits(v, item) for v in value)
    if hint is type(None):
        return value is None
    if hint is bool:
        return isinstance(value, bool)
    if hint is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if hint is float:
        return isinstance(value, int | float) and not isinstance(value, bool)
    if hint is str:
        return isinstance(value, str)
    if isinstance(hint, type) and hasattr(hint, "__dataclass_fields__"):
        return isinstance(value, dict)
    return False


# -- files ------------------------------------------------------------------------------------


class HistoryWriter:
    """Appends records to one history file; thread-safe (driver thread + user greenlet).

    The file is created exclusively (two processes never share one). Lines are flushed at
    least every ``flush_s`` and on :meth:`close`, so a crashed process loses at most the last
    moments; :func:`read_history` tolerates the torn last line that leaves.
    """

    def __init__(self, path: Path, *, flush_s: float = 1.0) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self._fh: IO[str] | None = path.open("x", encoding="utf-8")
        self._lock = threading.Lock()
        self._flush_s = flush_s
        self._flushed = time.monotonic()
        self.count = 0

    def write(self, record: Record) -> None:
        line = encode(record)
        with self._lock:
            if self._fh is None:
                return  # closed: late events after the end of the run are not history
            self._fh.write(line + "\n")
            self.count += 1
            now = time.monotonic()
            if now - self._flushed >= self._flush_s:
                self._fh.flush()
                self._flushed = now

    def close(self) -> None:
        with self._lock:
            if self._fh is not None:
                self._fh.close()
                self._fh = None


def iter_history(path: Path) -> Iterator[Record]:
    """Records of one history file, in order. A torn last line (crash) is skipped; any other
    bad line raises :class:`HistoryFormatError` naming the file and line."""
    text = path.read_text(encoding="utf-8")
    lines = text.split("\n")
    torn = len(lines) - 1 if not text.endswith("\n") else -1
    for n, line in enumerate(lines):
        if not line.strip():
            continue
        try:
            yield decode(line)
        except HistoryFormatError as exc:
            if n == torn:
                return
            raise HistoryFormatError(f"{path}:{n + 1}: {exc}") from exc


def read_history(path: Path) -> list[Record]:
    return list(iter_history(path))


# -- final reads ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class FinalMessage:
    """One message of a room's final history."""

    epoch: str
    seq: int
    id: str
    user: str
    kind: str
    ts_ms: int

    def key(self) -> tuple[str, int]:
        return (self.epoch, self.seq)


@dataclass(frozen=True, slots=True)
class FinalRead:
    """A room's history read once the run is over.

    ``api`` is what the WebSocket ``history`` pages return (None: the read failed, see
    ``error``); ``pg`` what the ``messages`` table holds (None: not read). ``pg_complete``
    says the archive caught up with ``api`` before the read gave up waiting. ``reader``
    is the reader's own user id: its join/leave events are not part of the run.
    """

    room: str
    time: float
    reader: str
    api: list[FinalMessage] | None
    pg: list[FinalMessage] | None = None
    pg_complete: bool = False
    error: str = ""

    def to_json(self) -> str:
        return json.dumps(asdict(self), ensure_ascii=False, indent=None, separators=(",", ":"))

    @classmethod
    def from_json(cls, text: str) -> FinalRead:
        """Raises :class:`HistoryFormatError` when ``text`` is not a final read."""
        try:
            obj = json.loads(text)
        except ValueError as exc:
            raise HistoryFormatError("final read: not JSON") from exc
        if not isinstance(obj, dict):
            raise HistoryFormatError("final read: not an object")
        out: dict[str, Any] = {}
        for key in ("api", "pg"):
            raw = obj.get(key)
            if raw is None:
                out[key] = None
            elif isinstance(raw, list) and all(isinstance(m, dict) for m in raw):
                out[key] = [_build(FinalMessage, m) for m in raw]
            else:
                raise HistoryFormatError(f"final read: {key} must be a list or null")
        rest = {k: v for k, v in obj.items() if k not in ("api", "pg")}
        base: FinalRead = _build(cls, {**rest, "api": [], "pg": None})
        return cls(room=base.room, time=base.time, reader=base.reader, api=out["api"],
                   pg=out["pg"], pg_complete=base.pg_complete, error=base.error)
