"""What one connection has been sent in one room, and what it still needs (I/O-free).

Rules of this module:

1. The client has been sent every message of the room up to ``cursor``, in seq order,
   and nothing beyond it. The cursor is ``(epoch, seq)`` of the last message sent.
2. A message is sent only if its seq is ``cursor.seq + 1`` and its epoch continues the
   cursor's (see :meth:`tuitalk.bus.entries.Epochs.can_continue`).
3. A message further ahead means the client is missing something: the delivery enters
   *catch-up*, holds live messages in ``pending`` (bounded; dropping from it is safe
   because catch-up reads the stream, which holds everything committed) and the adapter
   replays from the stream until the cursor reaches the feed's head.
4. A cursor that cannot be continued (its epoch was rolled back by a failover, or is too
   old to know) gets a ``reset``: the client reloads the room instead of skipping or
   reusing numbers.

Transition table (``offer`` while live)::

    cursor continues?  seq vs cursor.seq    verdict
    no                 any                  RESET
    yes                <= cursor.seq        SKIP    (already sent)
    yes                == cursor.seq + 1    SEND    (cursor advances)
    yes                >  cursor.seq + 1    GAP     (enter catch-up, message held)
"""

from __future__ import annotations

import enum
from collections import deque
from dataclasses import dataclass, field

from tuitalk.bus.entries import Epochs
from tuitalk.protocol import Cursor, Msg

__all__ = ["PENDING_MAX", "RoomDelivery", "Verdict"]

#: Live messages held per room while a connection catches up. Beyond it the oldest are
#: dropped, which only makes the catch-up read a little more from the stream.
PENDING_MAX = 2048


class Verdict(enum.Enum):
    SEND = "send"
    SKIP = "skip"
    HOLD = "hold"
    GAP = "gap"
    RESET = "reset"


@dataclass
class RoomDelivery:
    room: str
    cursor: Cursor
    catching_up: bool = False
    pending: deque[Msg] = field(default_factory=deque)
    pending_max: int = PENDING_MAX
    pending_dropped: int = 0
    #: A replay task is running for this delivery (the adapter starts at most one).
    replaying: bool = False

    def judge(self, msg: Msg, epochs: Epochs) -> Verdict:
        """Classify ``msg`` against the cursor (rules 2 and 4), without changing state."""
        c = self.cursor
        if msg.epoch != c.epoch and not epochs.can_continue(c.epoch, c.seq):
            return Verdict.RESET
        if msg.seq <= c.seq:
            return Verdict.SKIP
        if msg.seq == c.seq + 1:
            return Verdict.SEND
        return Verdict.GAP

    def offer(self, msg: Msg, epochs: Epochs) -> Verdict:
        """A live message arrived. SEND means: send it now (the cursor has advanced)."""
        if self.catching_up:
            self._hold(msg)
            return Verdict.HOLD
        verdict = self.judge(msg, epochs)
        if verdict is Verdict.SEND:
            self.cursor = Cursor(msg.epoch, msg.seq)
        elif verdict is Verdict.GAP:
            self.catching_up = True
            self._hold(msg)
        return verdict

    def replayed(self, msg: Msg, epochs: Epochs) -> Verdict:
        """A message read from the stream or archive during catch-up; SEND advances."""
        verdict = self.judge(msg, epochs)
        if verdict is Verdict.SEND:
            self.cursor = Cursor(msg.epoch, msg.seq)
        return verdict

    def start_catch_up(self) -> None:
        self.catching_up = True

    def finish_catch_up(self, epochs: Epochs) -> tuple[list[Msg], Verdict]:
        """Try to go live: send what is pending in order.

        Returns the messages to send and SEND (now live), GAP (something is still missing:
        keep catching up) or RESET.
        """
        out: list[Msg] = []
        held = sorted(self.pending, key=lambda m: m.seq)
        self.pending.clear()
        for i, msg in enumerate(held):
            verdict = self.judge(msg, epochs)
            if verdict is Verdict.SEND:
                self.cursor = Cursor(msg.epoch, msg.seq)
                out.append(msg)
            elif verdict is Verdict.GAP:
                self.pending.extend(held[i:])
                return out, Verdict.GAP
            elif verdict is Verdict.RESET:
                return out, Verdict.RESET
        self.catching_up = False
        return out, Verdict.SEND

    def _hold(self, msg: Msg) -> None:
        if msg.seq <= self.cursor.seq:
            return
        if len(self.pending) >= self.pending_max:
            self.pending.popleft()
            self.pending_dropped += 1
        self.pending.append(msg)
