"""A backend's view of one room: the ordered, gap-free sequence it fans out (I/O-free).

Sharded pub/sub is at-most-once and, with several publishers, not even in seq order
across a failover. The feed turns what arrives into the exact committed sequence:

- ``head`` is the last seq emitted to local connections; the next emitted is ``head+1``.
- A live message at ``head+1`` is emitted; below or at ``head`` it is stale; above, the
  feed stashes it and asks the adapter to fill ``(head, seq-1]`` from the stream.
- After every (re)subscription and periodically, the adapter reads the room's meta and
  calls :meth:`RoomFeed.on_position`; if the stream's commit is ahead of ``head`` (a
  message was lost while the subscription was down), that asks for a fill too.
- A message of an epoch the feed does not know asks for a refresh of the epoch history
  first (``REFRESH``); an epoch change that rolled back seqs the feed already emitted
  moves ``head`` back to the last seq that survived, and the connections that saw the
  rolled-back seqs are reset by their :class:`~tuitalk.server.delivery.RoomDelivery`.

Every method returns a :class:`Step` telling the adapter what to do next.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Final

from tuitalk.bus.entries import Epochs, RoomState
from tuitalk.protocol import Msg

__all__ = ["RoomFeed", "Step"]

#: Live messages stashed ahead of a gap. Dropping beyond it is safe: the fill reads them.
STASH_MAX: Final = 4096


@dataclass(frozen=True, slots=True)
class Step:
    """What the adapter must do: emit ``emit`` in order, then fill or refresh if asked."""

    emit: tuple[Msg, ...] = ()
    fill: tuple[int, int] | None = None  # (after, upto): read seqs after < s <= upto
    refresh: bool = False


NOTHING: Final = Step()


@dataclass
class RoomFeed:
    room: str
    ready: bool = False
    head: int = 0
    epoch: str = ""
    epochs: Epochs = field(default_factory=lambda: Epochs(()))
    filling: bool = False
    stash: dict[int, Msg] = field(default_factory=dict)
    stash_dropped: int = 0

    # -- inputs --------------------------------------------------------------------------

    def on_position(self, state: RoomState) -> Step:
        """The room's meta was read (at subscribe time, after a resubscribe, periodically)."""
        if not state.exists:
            # Meta gone (a shard lost its data): the next event starts a new epoch; keep
            # our head so that seqs that continue from the archive are judged correctly.
            if not self.ready:
                self.ready = True
            return self._drain()
        self.epochs = state.epochs
        if not self.ready:
            self.ready = True
            self.head = state.commit
            self.epoch = state.epoch
        self._fold_back()
        step = self._drain()
        if state.commit > self.head and not self.filling:
            self.filling = True
            return Step(emit=step.emit, fill=(self.head, state.commit))
        return step

    def on_live(self, msg: Msg) -> Step:
        if not self.ready:
            self._stash(msg)
            return NOTHING
        if not self.epochs.knows(msg.epoch):
            self._stash(msg)
            return Step(refresh=True)
        if msg.seq <= self.head:
            return NOTHING
        self._stash(msg)
        step = self._drain()
        if self._blocked_on_epoch():
            return Step(emit=step.emit, refresh=True)
        if self.stash and not self.filling:
            self.filling = True
            first = min(self.stash)
            return Step(emit=step.emit, fill=(self.head, first - 1))
        return step

    def on_filled(self, msgs: list[Msg]) -> Step:
        """A fill read ``msgs`` (in seq order)."""
        self.filling = False
        before = self.head
        for m in msgs:
            if m.seq > self.head:
                self.stash[m.seq] = m
        step = self._drain()
        if self.stash and self.head > before and not self._blocked_on_epoch():
            # Still a hole below something stashed: fill it. (No progress means the
            # stream and archive lack it right now; the periodic check retries.)
            self.filling = True
            return Step(emit=step.emit, fill=(self.head, min(self.stash) - 1))
        return step

    def on_fill_failed(self) -> None:
        """The fill could not read (Redis/PostgreSQL unavailable); a later check retries."""
        self.filling = False

    # -- internals -----------------------------------------------------------------------

    def _stash(self, msg: Msg) -> None:
        if msg.seq in self.stash:
            return
        if len(self.stash) >= STASH_MAX:
            # Keep the lowest seqs: they are the next to emit; the fill reads the rest.
            top = max(self.stash)
            if msg.seq > top:
                self.stash_dropped += 1
                return
            del self.stash[top]
            self.stash_dropped += 1
        self.stash[msg.seq] = msg

    def _blocked_on_epoch(self) -> bool:
        nxt = self.stash.get(self.head + 1)
        return nxt is not None and not self.epochs.knows(nxt.epoch)

    def _fold_back(self) -> None:
        """If an epoch change re-issued seqs we already emitted, move head back."""
        last = self.epochs.last_seq_of(self.epoch) if self.epoch else None
        if last is not None and self.head > last:
            self.head = last

    def _drain(self) -> Step:
        out: list[Msg] = []
        while True:
            msg = self.stash.get(self.head + 1)
            if msg is None:
                break
            if not self.epochs.knows(msg.epoch):
                break
            del self.stash[msg.seq]
            self.head = msg.seq
            self.epoch = msg.epoch
            out.append(msg)
        # Stale stash entries (at or below head) are dropped.
        for s in [s for s in self.stash if s <= self.head]:
            del self.stash[s]
        return Step(emit=tuple(out)) if out else NOTHING
