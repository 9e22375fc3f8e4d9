"""Key and channel names on the Redis Cluster, and their slots.

Every key and the channel of one room share the hash tag ``{r:<room>}``, so one Lua script
can touch them all on one shard, and SPUBLISH from inside that script is legal (the
channel hashes to the script's slot). Users have their own tag ``{u:<user>}``.
"""

from __future__ import annotations

from binascii import crc_hqx
from dataclasses import dataclass
from typing import Final

__all__ = ["ROOMS_KEY", "RoomKeys", "UserKeys", "key_slot"]

SLOTS: Final = 16384

#: The set of all room names, read by the archivers to find work. One key on one shard;
#: it is only written when a room is first joined.
ROOMS_KEY: Final = "tuitalk:rooms"


def key_slot(key: str) -> int:
    """Return the Redis Cluster slot of ``key`` (CRC16 of the hash tag, mod 16384)."""
    raw = key.encode()
    start = raw.find(b"{")
    if start > -1:
        end = raw.find(b"}", start + 1)
        if end > -1 and end != start + 1:
            raw = raw[start + 1 : end]
    return crc_hqx(raw, 0) % SLOTS


@dataclass(frozen=True, slots=True)
class RoomKeys:
    """Names of a room's keys. All share one hash tag, hence one slot."""

    room: str

    @property
    def tag(self) -> str:
        return "{r:" + self.room + "}"

    @property
    def meta(self) -> str:
        """Hash: epoch, seq, commit, arch (archived up to), rid (lineage), epochs."""
        return self.tag + ":m"

    @property
    def stream(self) -> str:
        """Stream of the room's recent events; entry id ``<seq>-0``."""
        return self.tag + ":s"

    @property
    def members(self) -> str:
        """Hash user id -> display name: the authority on who is in the room."""
        return self.tag + ":mb"

    @property
    def joins(self) -> str:
        """Hash user id -> ``epoch:seq`` of the user's join event (while a member)."""
        return self.tag + ":js"

    @property
    def channel(self) -> str:
        """Shard channel that carries committed events to the backends."""
        return self.tag + ":c"

    @property
    def lease(self) -> str:
        """Archiver lease: which backend copies this room to PostgreSQL right now."""
        return self.tag + ":a"

    def dedup(self, user: str, msg_id: str) -> str:
        """Key remembering ``(epoch, seq)`` of a client message id, for idempotent resend."""
        return f"{self.tag}:d:{user}:{msg_id}"

    @property
    def slot(self) -> int:
        return key_slot(self.tag)


@dataclass(frozen=True, slots=True)
class UserKeys:
    user: str

    @property
    def profile(self) -> str:
        """Hash: name, th (token hash), seen (ms)."""
        return "{u:" + self.user + "}:h"

    @property
    def rooms(self) -> str:
        """Set of rooms the user joined (a hint; the room's members hash decides)."""
        return "{u:" + self.user + "}:rooms"
