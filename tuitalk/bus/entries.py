"""Room events as they are stored in a room stream and carried on its shard channel."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Final

from tuitalk.protocol import KINDS, Kind, Msg

__all__ = ["Epochs", "RoomState", "decode_live", "decode_stream_entry"]


def decode_stream_entry(room: str, entry: Any) -> Msg:
    """Turn an ``XRANGE`` entry ``(id, {field: value})`` into a :class:`Msg`."""
    entry_id, fields = entry
    if isinstance(fields, list):  # RESP2 flat list, when no response callback ran
        fields = dict(zip(fields[::2], fields[1::2], strict=True))
    seq = int(str(entry_id).split("-", 1)[0])
    kind = fields.get("k", "text")
    return Msg(
        room=room,
        epoch=fields["e"],
        seq=seq,
        id=fields.get("i", ""),
        user=fields.get("u", ""),
        name=fields.get("n", ""),
        kind=kind if kind in KINDS else "text",
        text=fields.get("x", ""),
        ts=int(fields.get("ts", 0)),
    )


def decode_live(room: str, payload: str) -> Msg:
    """Decode a shard-channel payload written by ``commit.lua``.

    Raises ValueError (or KeyError/TypeError) on a malformed payload.
    """
    epoch, seq, msg_id, user, name, kind, text, ts = json.loads(payload)
    k: Kind = kind if kind in KINDS else "text"
    return Msg(
        room=room, epoch=str(epoch), seq=int(seq), id=str(msg_id), user=str(user),
        name=str(name), kind=k, text=str(text), ts=int(ts),
    )


@dataclass(frozen=True, slots=True)
class Epochs:
    """A room's epoch history: ``(epoch, first seq)`` pairs, oldest first.

    Seqs continue across an epoch change, so the epoch that starts at ``first`` ends at the
    next one's ``first - 1``. Used to decide whether a cursor can be continued.
    """

    spans: tuple[tuple[str, int], ...]

    @classmethod
    def parse(cls, raw: str | None) -> Epochs:
        spans: list[tuple[str, int]] = []
        for part in (raw or "").split(","):
            epoch, sep, first = part.partition(":")
            if epoch and sep and first.isdigit():
                spans.append((epoch, int(first)))
        return cls(tuple(spans))

    @property
    def current(self) -> str | None:
        return self.spans[-1][0] if self.spans else None

    def last_seq_of(self, epoch: str) -> int | None:
        """The last seq issued in ``epoch`` if a later epoch exists, else None."""
        for i, (e, _) in enumerate(self.spans):
            if e == epoch:
                if i + 1 < len(self.spans):
                    return self.spans[i + 1][1] - 1
                return None
        return None

    def knows(self, epoch: str) -> bool:
        return any(e == epoch for e, _ in self.spans)

    def can_continue(self, epoch: str, seq: int) -> bool:
        """True if a client that showed ``(epoch, seq)`` may continue without a reset.

        It may if ``epoch`` is known and it did not see a seq of ``epoch`` that a later
        epoch re-issued (those were rolled back by a failover).
        """
        if not self.knows(epoch):
            return False
        last = self.last_seq_of(epoch)
        return last is None or seq <= last


NO_EPOCHS: Final = Epochs(())


@dataclass(frozen=True, slots=True)
class RoomState:
    """A snapshot of a room's meta hash."""

    exists: bool
    epoch: str
    seq: int  # last seq issued
    commit: int  # last seq replicated and fanned out: readers never go past it
    arch: int  # last seq stored in PostgreSQL
    epochs: Epochs
