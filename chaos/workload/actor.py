"""One synthetic chat user: joins rooms, sends, churns, and ends its run cleanly.

A :class:`ChatActor` is what a Locust user (or any other harness) drives:

1. :meth:`ChatActor.start` writes the ``start`` record, starts the driver and joins 1-3
   rooms chosen from the configured set.
2. :meth:`ChatActor.step` does one action: usually a send to one of its joined rooms,
   with probability ``churn`` a leave (only of a room with no unacked send, and never the
   last room) or a join of a room it is not in. Sends stop at ``max_sends``; a send is
   skipped (counted) while ``max_outbox`` sends are unacked, so an outage cannot grow the
   outbox without bound.
3. :meth:`ChatActor.finish` ends the run (each wait bounded by the config):
   stop sending; wait for the outbox to empty; record ``info`` for every send still
   unacked; wait at the :class:`EndBarrier` until every user got there (so nobody sends any
   more); probe each room's newest seq with a ``history`` request of one message; wait
   until the core has shown up to it; record ``end`` per room and the core's ``stats``.

All waits poll every :data:`POLL_S` with ``time.sleep``, which gevent makes cooperative.
"""

from __future__ import annotations

import os
import random
import threading
import time
from collections.abc import Callable
from typing import Final

from chaos.workload import history as h
from chaos.workload.config import WorkloadConfig
from chaos.workload.driver import SyncDriver
from chaos.workload.recorder import EventRecorder, MetricsSink, message_text
from tuitalk import protocol as p
from tuitalk.client.session import ClientSession
from tuitalk.errors import RemoteProtocolError

__all__ = ["ChatActor", "EndBarrier"]

POLL_S: Final = 0.05
#: Rooms a user is in at most (the brief of the workload: 1-3 of a fixed set).
MAX_ROOMS_PER_USER: Final = 3
#: A history probe with no answer is repeated after this long (it may have been lost with
#: a connection).
PROBE_RETRY_S: Final = 1.0
_HISTORY_PREFIX: Final = '{"t":"history"'


class EndBarrier:
    """A rendezvous of all users of one process at the end of a run (bounded wait)."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._expected = 0
        self._arrived = 0

    def register(self) -> None:
        with self._cond:
            self._expected += 1

    def withdraw(self) -> None:
        """A registered user that will never arrive (it failed to start)."""
        with self._cond:
            self._expected -= 1
            self._cond.notify_all()

    def arrive_and_wait(self, timeout_s: float) -> bool:
        """True if everybody arrived within ``timeout_s``."""
        with self._cond:
            self._arrived += 1
            self._cond.notify_all()
            return self._cond.wait_for(lambda: self._arrived >= self._expected, timeout_s)


class ChatActor:
    """See the module docstring. Not thread-safe itself: one harness thread calls it."""

    def __init__(
        self,
        process: str,
        cfg: WorkloadConfig,
        *,
        seed: int,
        metrics: MetricsSink | None = None,
        barrier: EndBarrier | None = None,
    ) -> None:
        self.process = process
        self.cfg = cfg
        self.seed = seed
        self.rng = random.Random(seed)
        self.barrier = barrier
        self.session = ClientSession(rng=random.Random(self.rng.getrandbits(64)))
        writer = None
        if cfg.out is not None:
            writer = h.HistoryWriter(cfg.out / "histories" / f"{process}.jsonl")
        self.recorder = EventRecorder(process, self.session, writer=writer, metrics=metrics)
        self.driver = SyncDriver(cfg.url, self.session, on_events=self.recorder.on_events,
                                 on_connection=self.recorder.on_connection,
                                 on_frame=self._on_frame, name=process)
        self.sent = 0
        self.skipped = 0
        self._finishing = False
        self._probe: dict[str, int | None] = {}

    # -- running ---------------------------------------------------------------------------------

    def start(self) -> None:
        self.recorder.write(h.Start(self.process, time.time(), self.cfg.url, self.seed,
                                    os.getpid()))
        rooms = list(self.cfg.rooms)
        k = self.rng.randint(1, min(MAX_ROOMS_PER_USER, len(rooms)))
        self.driver.start()
        for room in self.rng.sample(rooms, k):
            self.driver.join(room)

    def next_wait_s(self) -> float:
        """Time to the next step: exponential, so sends form a Poisson process."""
        return self.rng.expovariate(self.cfg.rate_per_s)

    def step(self) -> None:
        if self._finishing:
            return
        if self.rng.random() < self.cfg.churn:
            self.driver.call(self._churn)
        elif self.sent < self.cfg.max_sends:
            self.driver.call(self._send)

    def _send(self, s: ClientSession, now: float) -> None:
        ready = [r for r, v in sorted(s.rooms.items()) if v.cursor is not None and not v.leaving]
        if not ready:
            return
        if len(s.outbox) >= self.cfg.max_outbox:
            self.skipped += 1
            return
        self.sent += 1
        s.say(self.rng.choice(ready), message_text(self.process, self.sent, time.time()), now)

    def _churn(self, s: ClientSession, now: float) -> None:
        member = [r for r, v in sorted(s.rooms.items()) if not v.leaving]
        busy = {e.room for e in s.outbox.values()}
        can_leave = [r for r in member if r not in busy and s.rooms[r].cursor is not None]
        can_join = [r for r in self.cfg.rooms if r not in s.rooms]
        limit = min(MAX_ROOMS_PER_USER, len(self.cfg.rooms))
        leave = len(member) > 1 and can_leave and (len(member) >= limit or self.rng.random() < 0.5)
        if leave:
            s.leave(self.rng.choice(can_leave), now)
        elif can_join and len(member) < limit:
            s.join(self.rng.choice(can_join), now)

    # -- the end of the run ----------------------------------------------------------------------

    def finish(self) -> None:
        """End the run (see the module docstring); bounded by the config's end budget."""
        self._finishing = True
        cfg = self.cfg
        try:
            # Drained: no unacked send and no join or leave still waiting for its answer
            # (a room joined after the head probe below would end "unsettled").
            self._wait(lambda: not self.session.outbox and not self._room_ops_pending(),
                       cfg.drain_s)
            with self.driver.lock:
                self.recorder.unknown("unacked at end")
            if self.barrier is not None:
                self.barrier.arrive_and_wait(cfg.barrier_s)
            deadline = time.monotonic() + cfg.catchup_s
            heads = self._probe_heads(deadline)
            self._wait(lambda: self._caught_up(heads), deadline - time.monotonic())
            self._record_end(heads)
        finally:
            self.driver.stop()
            if self.recorder.writer is not None:
                self.recorder.writer.close()

    def _wait(self, done: Callable[[], bool], timeout_s: float) -> bool:
        deadline = time.monotonic() + max(0.0, timeout_s)
        while True:
            with self.driver.lock:
                if done():
                    return True
            if time.monotonic() >= deadline:
                return False
            time.sleep(POLL_S)

    def _room_ops_pending(self) -> bool:
        return any(v.leaving or (v.cursor is None and not v.joined)
                   for v in self.session.rooms.values())

    def _member_rooms(self) -> list[str]:
        return [r for r, v in sorted(self.session.rooms.items())
                if v.cursor is not None and not v.leaving]

    def _probe_heads(self, deadline: float) -> dict[str, int | None]:
        with self.driver.lock:
            self._probe = dict.fromkeys(self._member_rooms())
        asked: dict[str, float] = {}
        while time.monotonic() < deadline:
            with self.driver.lock:
                missing = [r for r, head in self._probe.items() if head is None]
            if not missing:
                break
            now = time.monotonic()
            for room in missing:
                if now - asked.get(room, -PROBE_RETRY_S) >= PROBE_RETRY_S and \
                        self.driver.send_frame(p.HistoryRequest(room=room, limit=1)):
                    asked[room] = now
            time.sleep(POLL_S)
        with self.driver.lock:
            heads, self._probe = self._probe, {}
        return heads

    def _on_frame(self, text: str) -> None:
        """Catch the answers to head probes (called by the driver, under its lock)."""
        if not self._probe or not text.startswith(_HISTORY_PREFIX):
            return
        try:
            frame = p.decode_server(text)
        except RemoteProtocolError:
            return
        if isinstance(frame, p.History) and frame.room in self._probe:
            self._probe[frame.room] = frame.messages[-1].seq if frame.messages else 0

    def _caught_up(self, heads: dict[str, int | None]) -> bool:
        for room, head in heads.items():
            v = self.session.rooms.get(room)
            if head is not None and v is not None and v.cursor is not None \
                    and v.cursor.seq < head:
                return False
        return True

    def _record_end(self, heads: dict[str, int | None]) -> None:
        now = time.time()
        with self.driver.lock:
            s = self.session
            for room in self._member_rooms():
                cursor = s.rooms[room].cursor
                self.recorder.write(h.End(
                    self.process, now, room, cursor.epoch if cursor else None,
                    heads.get(room), cursor.seq if cursor else None))
            self.recorder.write(h.Stats(self.process, now, s.raw_duplicates, s.shown,
                                        s.resyncs, s.reconnects, self.skipped))
