"""Turn the client core's events into history records and latency samples.

An :class:`EventRecorder` is the ``on_events`` / ``on_connection`` listener of one
:class:`~chaos.workload.driver.SyncDriver`. It writes the records described in
:mod:`chaos.workload.history` (when given a writer) and reports latencies to a
:class:`MetricsSink` (when given one: Locust's request events, or nothing).

It is called under the driver's lock, so it needs no lock of its own; it never blocks
beyond a buffered file write.

Message texts written by the workload end with ``t=<wall-clock send time>`` (see
:func:`message_text`), so that any receiver can compute send-to-deliver latency without
a shared table.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from typing import Final, Protocol

from chaos.workload import history as h
from tuitalk import protocol as p
from tuitalk.client import events as ev
from tuitalk.client.session import ClientSession

__all__ = ["EventRecorder", "MetricsSink", "message_text", "sent_at"]

_SENT_AT: Final = re.compile(r" t=(\d+\.\d+)$")


def message_text(process: str, n: int, wall: float) -> str:
    """The text of the ``n``-th message of ``process``, carrying its send time."""
    return f"{process} #{n} t={wall:.6f}"


def sent_at(text: str) -> float | None:
    """The send time embedded by :func:`message_text`, if any."""
    m = _SENT_AT.search(text)
    return float(m.group(1)) if m else None


class MetricsSink(Protocol):
    """Where latency samples go (Locust: ``events.request.fire``)."""

    def request(self, kind: str, name: str, ms: float, error: str | None = None) -> None: ...


class EventRecorder:
    """Records one process's history. See the module docstring."""

    def __init__(
        self,
        process: str,
        session: ClientSession,
        *,
        writer: h.HistoryWriter | None = None,
        metrics: MetricsSink | None = None,
        wall: Callable[[], float] = time.time,
    ) -> None:
        self.process = process
        self.session = session
        self.writer = writer
        self.metrics = metrics
        self.wall = wall
        self.backend = ""
        self.conn = 0
        self._awaiting_welcome = False
        self._opened_at = 0.0
        #: Wall time of every send without an outcome yet (id -> invoke time).
        self.pending: dict[str, tuple[str, float]] = {}
        #: Last message shown per room (for reset records).
        self.last_shown: dict[str, tuple[str, int]] = {}
        self._own_leave: dict[str, tuple[str, int]] = {}
        # Counters for the summary printed by the Locust user.
        self.acked = 0
        self.failed = 0
        self.delivered = 0

    def write(self, record: h.Record) -> None:
        if self.writer is not None:
            self.writer.write(record)

    # -- driver callbacks --------------------------------------------------------------------------

    def on_connection(self, state: str, code: int | None, reason: str) -> None:
        now = self.wall()
        if state == "open":
            self._awaiting_welcome = True
            self._opened_at = now
            return
        if self._awaiting_welcome and self.metrics is not None:
            self.metrics.request("WS", "connect", (now - self._opened_at) * 1000,
                                 f"closed before welcome ({code}) {reason}".strip())
        self._awaiting_welcome = False
        self.write(h.Disconnect(self.process, now, self.backend, code, reason))

    def on_events(self, events: list[ev.Event]) -> None:
        now = self.wall()
        for i, e in enumerate(events):
            if isinstance(e, ev.MessageShown):
                self._shown(e, now)
            elif isinstance(e, ev.Pending):
                self.pending[e.id] = (e.room, now)
                self.write(h.Invoke(self.process, now, e.room, e.id, e.text))
            elif isinstance(e, ev.Acked):
                self._acked(e, now)
            elif isinstance(e, ev.SendFailed):
                self._failed(e, now)
            elif isinstance(e, ev.Welcomed):
                self._welcomed(e, now)
            elif isinstance(e, ev.RoomJoined):
                self._joined(e, events[i + 1:], now)
            elif isinstance(e, ev.RoomLeft):
                own = self._own_leave.pop(e.room, None)
                self.write(h.Leave(self.process, now, e.room, own[0] if own else None,
                                   own[1] if own else None))
                self.last_shown.pop(e.room, None)
            elif isinstance(e, ev.RoomReset):
                last = self.last_shown.pop(e.room, None)
                self.write(h.Reset(self.process, now, e.room, e.reason,
                                   last[0] if last else None, last[1] if last else None))
            elif isinstance(e, ev.ServerError):
                self.write(h.Error(self.process, now, e.code, e.detail, e.ref))

    # -- per event ---------------------------------------------------------------------------------

    def _shown(self, e: ev.MessageShown, now: float) -> None:
        m = e.msg
        self.delivered += 1
        self.last_shown[m.room] = (m.epoch, m.seq)
        self.write(h.Deliver(self.process, now, m.room, m.epoch, m.seq, m.id, m.user, m.kind,
                             e.live))
        if m.user == self.session.user:
            if m.kind == "join":
                self.write(h.Join(self.process, now, m.room, m.epoch, m.seq))
            elif m.kind == "leave":
                self._own_leave[m.room] = (m.epoch, m.seq)
        if self.metrics is not None and m.kind in p.SAY_KINDS:
            t0 = sent_at(m.text)
            if t0 is not None:
                name = "send→deliver" if e.live else "send→deliver (recovery)"
                self.metrics.request("DLV", name, max(0.0, now - t0) * 1000)

    def _acked(self, e: ev.Acked, now: float) -> None:
        started = self.pending.pop(e.id, None)
        if started is None:
            return  # already settled as info at the end of the run: one outcome per send
        self.acked += 1
        self.write(h.Ok(self.process, now, e.room, e.id, e.epoch, e.seq))
        if self.metrics is not None:
            self.metrics.request("ACK", "send→ack", (now - started[1]) * 1000)

    def _failed(self, e: ev.SendFailed, now: float) -> None:
        started = self.pending.pop(e.id, None)
        if started is None:
            return
        if e.code == p.ErrorCode.NOT_MEMBER and e.detail == "left the room":
            # Dropped by the client core when the room was left: the message may have been
            # sequenced on an earlier connection whose ack was lost, so this is no refusal.
            self.write(h.Info(self.process, now, e.room, e.id, "dropped after leave"))
            return
        self.failed += 1
        self.write(h.Fail(self.process, now, e.room, e.id, e.code, e.detail))
        if self.metrics is not None:
            self.metrics.request("ACK", "send→ack", (now - started[1]) * 1000,
                                 f"{e.code}: {e.detail}")

    def _welcomed(self, e: ev.Welcomed, now: float) -> None:
        self.backend = e.backend
        if not self._awaiting_welcome:
            return  # a nick confirmation
        self._awaiting_welcome = False
        self.conn += 1
        self.write(h.Connect(self.process, now, e.backend, e.user, self.conn))
        if self.metrics is not None:
            self.metrics.request("WS", "connect", (now - self._opened_at) * 1000)

    def _joined(self, e: ev.RoomJoined, rest: list[ev.Event], now: float) -> None:
        view = self.session.rooms.get(e.room)
        if view is None or view.cursor is None:
            return
        # The core shows held messages right after a joined frame; the head it announced is
        # just before the first of them.
        head, epoch = view.cursor.seq, view.cursor.epoch
        for later in rest:
            if isinstance(later, ev.MessageShown) and later.msg.room == e.room:
                head, epoch = later.msg.seq - 1, later.msg.epoch
                break
        self.write(h.Attach(self.process, now, e.room, epoch, head, e.resumed))

    # -- end of run ------------------------------------------------------------------------------

    def unknown(self, reason: str) -> int:
        """Record ``info`` for every send still without an outcome; returns how many."""
        now = self.wall()
        for msg_id, (room, _t) in sorted(self.pending.items(), key=lambda kv: kv[1][1]):
            self.write(h.Info(self.process, now, room, msg_id, reason))
        n = len(self.pending)
        self.pending.clear()
        return n
