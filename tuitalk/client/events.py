"""Events the client core hands to its UI (terminal, browser, load user). Frozen, tagged."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, TypeAlias

from tuitalk.protocol import Member, Msg

__all__ = [
    "Acked", "ConnState", "Event", "HistoryLoaded", "MembersChanged", "MessageShown",
    "Pending", "RoomJoined", "RoomLeft", "RoomReset", "SendFailed", "ServerError",
    "StateChanged", "Welcomed",
]

ConnState: TypeAlias = Literal["connecting", "connected", "reconnecting", "offline"]


@dataclass(frozen=True, slots=True)
class StateChanged:
    """Connection state. ``since_s`` is how long the link has been down (0 when connected);
    UIs show an alarm only past a second or so, so a failover that heals at once is quiet."""

    state: ConnState
    detail: str = ""
    since_s: float = 0.0


@dataclass(frozen=True, slots=True)
class Welcomed:
    user: str
    name: str
    backend: str


@dataclass(frozen=True, slots=True)
class RoomJoined:
    room: str
    members: tuple[Member, ...]
    resumed: bool


@dataclass(frozen=True, slots=True)
class RoomLeft:
    room: str


@dataclass(frozen=True, slots=True)
class RoomReset:
    """The room's history changed under the client (a failover rolled back): the UI marks
    the timeline and reloads the latest page."""

    room: str
    reason: str


@dataclass(frozen=True, slots=True)
class MessageShown:
    """A room message to show, exactly once, in seq order. ``live`` is False for messages
    that came by recovery (replay after a reconnect)."""

    msg: Msg
    live: bool
    mine: bool


@dataclass(frozen=True, slots=True)
class MembersChanged:
    room: str
    members: tuple[Member, ...]


@dataclass(frozen=True, slots=True)
class Pending:
    """A message the user sent that the server has not acknowledged yet."""

    id: str
    room: str
    text: str
    kind: str


@dataclass(frozen=True, slots=True)
class Acked:
    id: str
    room: str
    epoch: str
    seq: int


@dataclass(frozen=True, slots=True)
class SendFailed:
    """The server refused a message for good (not for a retryable reason)."""

    id: str
    room: str
    code: str
    detail: str


@dataclass(frozen=True, slots=True)
class HistoryLoaded:
    """Older messages, oldest first, not yet shown; ``more`` if even older ones exist."""

    room: str
    messages: tuple[Msg, ...]
    more: bool


@dataclass(frozen=True, slots=True)
class ServerError:
    code: str
    detail: str
    ref: str


Event: TypeAlias = (
    StateChanged | Welcomed | RoomJoined | RoomLeft | RoomReset | MessageShown
    | MembersChanged | Pending | Acked | SendFailed | HistoryLoaded | ServerError
)
