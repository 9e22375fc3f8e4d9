"""What the terminal client shows, as plain data: rooms, their timelines and counters.

:meth:`ChatModel.apply` folds the client core's events into the model and returns a
:class:`Changes` record that tells the app which widgets to refresh and what to ask the
core for (older history). It imports nothing from Textual, so it is tested directly.

Rules:

1. A room's timeline is ``items`` (room messages in seq order, local notices between them)
   followed by ``pending`` (the user's unacknowledged messages, oldest first). A pending
   message is replaced by the real one when the server's copy is shown: it leaves the
   pending zone and the real one joins ``items`` right where the zone started, so it
   stays in place on screen.
2. Unread and mention counts grow only for rooms not on screen, and only for ``text`` and
   ``me`` messages of other users. Switching to a room clears them.
3. The read marker of a room is set when its first unread message arrives while it is not
   shown, and cleared when the user leaves the room (on screen) again (WeeChat habit).
4. A timeline keeps at most ``max_items`` items; the oldest 10 % go when it is full, and
   the app moves the core's history cursor so scrolling up pages them back in.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, tzinfo
from typing import Any, Final

from rich.text import Text

from tuitalk.client import events as ev
from tuitalk.protocol import Msg
from tuitalk.sanitize import sanitize_line
from tuitalk_cli import names, render
from tuitalk_cli.render import Item, Key
from tuitalk_cli.status import ConnIndicator

__all__ = ["SYSTEM", "Changes", "ChatModel", "RoomModel"]

#: Name of the buffer shown when the user is in no room (not a valid room name).
SYSTEM: Final = "*"
RECENT_SPEAKERS: Final = 50
NOTIFY_CHARS: Final = 80


@dataclass
class Changes:
    """What one :meth:`ChatModel.apply` changed; the app refreshes accordingly."""

    rooms: bool = False
    timelines: set[str] = field(default_factory=set)
    new_messages: dict[str, int] = field(default_factory=dict)
    members: set[str] = field(default_factory=set)
    status: bool = False
    switched: bool = False
    want_history: list[str] = field(default_factory=list)
    notify: list[str] = field(default_factory=list)
    #: room -> number of items a history page put at the top of its timeline.
    prepended: dict[str, int] = field(default_factory=dict)
    #: room -> seq of the oldest message still in its timeline after trimming.
    trimmed: dict[str, int] = field(default_factory=dict)
    dirty: bool = False

    def merge(self, other: Changes) -> None:
        self.rooms |= other.rooms
        self.timelines |= other.timelines
        for k, v in other.new_messages.items():
            self.new_messages[k] = self.new_messages.get(k, 0) + v
        self.members |= other.members
        self.status |= other.status
        self.switched |= other.switched
        self.want_history += [r for r in other.want_history if r not in self.want_history]
        self.notify += other.notify
        self.trimmed.update(other.trimmed)
        for k, v in other.prepended.items():
            self.prepended[k] = self.prepended.get(k, 0) + v
        self.dirty |= other.dirty


class RoomModel:
    def __init__(self, name: str, max_items: int) -> None:
        self.name = name
        self.max_items = max_items
        self.items: list[Item] = []
        self.pending: dict[str, Item] = {}
        self.members: dict[str, str] = {}
        self.index = names.NameIndex({})
        self.unread = 0
        self.mentions = 0
        self.read_upto = 0  # items[:read_upto] were on screen when the user last left
        self.marker: int | None = None  # the read marker is drawn before items[marker]
        self.recent: deque[str] = deque(maxlen=RECENT_SPEAKERS)
        self.history_requested = False
        self.more_history = True
        self.history_wanted = 0  # further pages /history N still wants
        self.start_shown = False
        self.last_day: date | None = None  # day of the newest message, for day rules

    def set_members(self, members: dict[str, str]) -> None:
        self.members = members
        self.index = names.NameIndex(members)

    def append(self, item: Item) -> int:
        """Append; returns how many old items were trimmed (0 usually)."""
        self.items.append(item)
        if len(self.items) <= self.max_items:
            return 0
        drop = len(self.items) - self.max_items + max(1, self.max_items // 10)
        del self.items[:drop]
        self.read_upto = max(0, self.read_upto - drop)
        if self.marker is not None:
            self.marker = self.marker - drop if self.marker >= drop else None
        self.start_shown = False
        self.more_history = True
        return drop

    def remove(self, index: int) -> None:
        del self.items[index]
        if self.read_upto > index:
            self.read_upto -= 1
        if self.marker is not None and self.marker > index:
            self.marker -= 1

    def first_day_index(self) -> int | None:
        """Index of a day rule above the first message, if there is one."""
        for i, it in enumerate(self.items):
            if it.key is not None:
                return None
            if it.kind == "day":
                return i
        return None

    def prepend(self, items: Sequence[Item]) -> None:
        self.items[:0] = items
        self.read_upto += len(items)
        if self.marker is not None:
            self.marker += len(items)

    def clear(self) -> None:
        self.items.clear()
        self.read_upto = 0
        self.marker = None
        self.history_requested = False
        self.more_history = True
        self.start_shown = False
        self.last_day = None

    def first_seq(self) -> int | None:
        return next((it.key[1] for it in self.items if it.key is not None), None)

    def shown_keys(self) -> list[Key]:
        """(epoch, seq, id) of every room message in the timeline, in order."""
        return [it.key for it in self.items if it.key is not None]

    def first_mention(self) -> int | None:
        start = self.marker if self.marker is not None else self.read_upto
        return next((i for i in range(start, len(self.items)) if self.items[i].mention), None)


class ChatModel:
    """All rooms, the current one, who the user is and the connection indicator."""

    def __init__(self, *, tz: tzinfo | None = None, max_items: int = 10_000) -> None:
        self.tz = tz
        self.max_items = max_items
        self.rooms: dict[str, RoomModel] = {}
        self.system = RoomModel(SYSTEM, max_items)
        self.current: str | None = None
        self.user = ""
        self.name = ""
        self.conn = ConnIndicator()
        #: The user asked to join this room: show it as soon as it is joined.
        self.switch_to: str | None = None
        self._outgoing: dict[str, tuple[str, str]] = {}  # id -> (text, kind)

    # -- queries --------------------------------------------------------------------------------

    def view(self) -> RoomModel:
        """The room on screen (the system buffer when in no room)."""
        return self.rooms.get(self.current or "", self.system)

    def order(self) -> list[str]:
        return list(self.rooms)

    def next_room(self, *, unread: bool = False, mention: bool = False,
                  step: int = 1) -> str | None:
        """The next room after the current one (cyclic) that matches; with ``unread``,
        rooms with mentions come first."""
        order = self.order()
        if not order:
            return None
        start = order.index(self.current) if self.current in order else -1
        cyc = [order[(start + step * i) % len(order)] for i in range(1, len(order) + 1)]
        if mention or unread:
            hit = next((r for r in cyc if self.rooms[r].mentions and r != self.current), None)
            if hit is not None or mention:
                return hit
            return next((r for r in cyc if self.rooms[r].unread and r != self.current), None)
        return cyc[0] if cyc[0] != self.current else None

    # -- user actions ---------------------------------------------------------------------------

    def switch(self, room: str | None) -> bool:
        """Show ``room``; returns False when it is already shown or unknown."""
        if room == self.current or (room is not None and room not in self.rooms):
            return False
        old = self.rooms.get(self.current) if self.current is not None else None
        if old is not None:
            old.read_upto = len(old.items)
            old.marker = None
        self.current = room
        if room is not None:
            new = self.rooms[room]
            new.unread = 0
            new.mentions = 0
        return True

    def notice(self, text: str | Text, *, error: bool = False,
               room: str | None = None) -> Changes:
        target = self.rooms.get(room or "") or self.view()
        target.append(render.notice_item(text, error=error))
        return Changes(timelines={target.name})

    # -- events ---------------------------------------------------------------------------------

    def apply(self, events: Iterable[ev.Event], now: float) -> Changes:
        ch = Changes()
        for e in events:
            handler = _HANDLERS.get(type(e))
            if handler is not None:
                handler(self, e, now, ch)
        return ch

    def _room(self, name: str, ch: Changes) -> RoomModel:
        r = self.rooms.get(name)
        if r is None:
            r = self.rooms[name] = RoomModel(name, self.max_items)
            ch.rooms = True
        return r

    def _label(self, user: str, name: str, r: RoomModel) -> render.Label:
        return r.index.label(user, name)

    def _render(self, m: Msg, r: RoomModel) -> Item:
        mine = m.user == self.user
        return render.message_item(m, self._label(m.user, m.name, r), mine=mine,
                                   my_name=self.name, tz=self.tz)

    def _on_state(self, e: ev.StateChanged, now: float, ch: Changes) -> None:
        self.conn.update(e, now)
        ch.status = True

    def _on_welcomed(self, e: ev.Welcomed, now: float, ch: Changes) -> None:
        if self.user and e.name != self.name and not self.rooms:
            ch.merge(self.notice(f"you are now known as {names.clean_name(e.name)}"))
        self.user, self.name = e.user, e.name
        ch.status = ch.dirty = True

    def _on_joined(self, e: ev.RoomJoined, now: float, ch: Changes) -> None:
        r = self._room(e.room, ch)
        r.set_members({m.user: m.name for m in e.members})
        if not r.history_requested:
            r.history_requested = True
            ch.want_history.append(e.room)
        if self.switch_to == e.room or self.current is None:
            self.switch_to = None
            ch.switched |= self.switch(e.room)
        ch.members.add(e.room)
        ch.status = ch.rooms = ch.dirty = True

    def _on_left(self, e: ev.RoomLeft, now: float, ch: Changes) -> None:
        if e.room not in self.rooms:
            return
        order = self.order()
        i = order.index(e.room)
        if self.current == e.room:
            rest = order[:i] + order[i + 1:]
            self.current = None
            ch.switched = True
            if rest:
                self.switch(rest[max(0, i - 1)])
        del self.rooms[e.room]
        ch.merge(self.notice(f"you left #{e.room}"))
        ch.rooms = ch.status = ch.dirty = True

    def _on_reset(self, e: ev.RoomReset, now: float, ch: Changes) -> None:
        r = self._room(e.room, ch)
        r.clear()
        r.append(render.notice_item(
            f"the history of #{e.room} changed ({sanitize_line(e.reason)}); reloaded",
            error=True))
        ch.timelines.add(e.room)

    def _on_shown(self, e: ev.MessageShown, now: float, ch: Changes) -> None:
        m = e.msg
        r = self._room(m.room, ch)
        if e.mine:
            r.pending.pop(m.id, None)
            self._outgoing.pop(m.id, None)
        item = self._render(m, r)
        day = render.day_of(m.ts, self.tz)
        if day is not None and day != r.last_day and (r.last_day is not None
                                                      or day != self._today()):
            r.append(render.day_item(day))
        r.last_day = day or r.last_day
        dropped = r.append(item)
        if dropped:
            first = r.first_seq()
            if first is not None:
                ch.trimmed[r.name] = first
        counted = m.kind in ("text", "me") and not e.mine
        if counted:
            r.recent.appendleft(m.user)
        if counted and r.name != self.current:
            if r.marker is None:
                r.marker = min(r.read_upto, len(r.items) - 1)
            r.unread += 1
            ch.rooms = True
            if item.mention:
                r.mentions += 1
                text = names.clean_name(m.name) + " in #" + r.name + ": " + \
                    sanitize_line(m.text)[:NOTIFY_CHARS]
                ch.notify.append(text)
        ch.timelines.add(r.name)
        ch.new_messages[r.name] = ch.new_messages.get(r.name, 0) + 1
        ch.dirty = True

    def _on_members(self, e: ev.MembersChanged, now: float, ch: Changes) -> None:
        r = self._room(e.room, ch)
        r.set_members({m.user: m.name for m in e.members})
        ch.members.add(e.room)
        ch.status = True

    def _on_pending(self, e: ev.Pending, now: float, ch: Changes) -> None:
        r = self._room(e.room, ch)
        self._outgoing[e.id] = (e.text, e.kind)
        r.pending[e.id] = render.pending_item(e.id, e.text, e.kind,
                                              self._label(self.user, self.name, r), self.user)
        ch.timelines.add(e.room)
        ch.dirty = True

    def _on_acked(self, e: ev.Acked, now: float, ch: Changes) -> None:
        ch.dirty = True

    def _on_failed(self, e: ev.SendFailed, now: float, ch: Changes) -> None:
        text, kind = self._outgoing.pop(e.id, ("", "text"))
        why = sanitize_line(f"{e.detail} [{e.code}]")
        r = self.rooms.get(e.room)
        if r is None:
            ch.merge(self.notice(f"not sent to #{e.room} ({why}): {sanitize_line(text)}",
                                 error=True))
            return
        r.pending.pop(e.id, None)
        r.append(render.pending_item(e.id, text or "?", kind, (names.clean_name(self.name), ""),
                                     self.user, failed=why))
        ch.timelines.add(e.room)
        ch.dirty = True

    def _on_history(self, e: ev.HistoryLoaded, now: float, ch: Changes) -> None:
        r = self.rooms.get(e.room)
        if r is None:
            return
        items = self._history_items(r, e.messages)
        for m in reversed(e.messages):  # older speakers rank after the recent ones
            if len(r.recent) < RECENT_SPEAKERS and m.kind in ("text", "me") \
                    and m.user != self.user and m.user not in r.recent:
                r.recent.append(m.user)
        r.more_history = e.more
        if not e.more and not r.start_shown:
            r.start_shown = True
            items.insert(0, render.notice_item(f"this is the beginning of #{e.room}"))
        if items:
            r.prepend(items)
            ch.timelines.add(e.room)
            ch.prepended[e.room] = ch.prepended.get(e.room, 0) + len(items)
        if r.history_wanted > 0 and e.more:
            r.history_wanted -= 1
            ch.want_history.append(e.room)
        else:
            r.history_wanted = 0

    def _today(self) -> date:
        return datetime.now(self.tz).date()

    def _history_items(self, r: RoomModel, msgs: Sequence[Msg]) -> list[Item]:
        """A history page as items, with day rules between days, joined up with the
        rules already in the timeline (a rule above the old first message goes away when
        the page ends on the same day)."""
        out: list[Item] = []
        prev: date | None = None
        for m in msgs:
            day = render.day_of(m.ts, self.tz)
            if day is not None and day != prev and (prev is not None or day != self._today()):
                out.append(render.day_item(day))
            prev = day or prev
            out.append(self._render(m, r))
        first = next((render.day_of(it.ts, self.tz) for it in r.items if it.ts is not None),
                     None)
        rule = r.first_day_index()
        if msgs and first is not None:
            if first == prev and rule is not None:
                r.remove(rule)
            elif first != prev and rule is None:
                out.append(render.day_item(first))
        if r.last_day is None:
            r.last_day = prev
        return out

    def _on_error(self, e: ev.ServerError, now: float, ch: Changes) -> None:
        room = e.ref if e.ref in self.rooms else None
        ch.merge(self.notice(sanitize_line(f"server: {e.detail} ({e.code})"), error=True,
                             room=room))


_HANDLERS: Final[dict[type, Callable[[ChatModel, Any, float, Changes], None]]] = {
    ev.StateChanged: ChatModel._on_state,
    ev.Welcomed: ChatModel._on_welcomed,
    ev.RoomJoined: ChatModel._on_joined,
    ev.RoomLeft: ChatModel._on_left,
    ev.RoomReset: ChatModel._on_reset,
    ev.MessageShown: ChatModel._on_shown,
    ev.MembersChanged: ChatModel._on_members,
    ev.Pending: ChatModel._on_pending,
    ev.Acked: ChatModel._on_acked,
    ev.SendFailed: ChatModel._on_failed,
    ev.HistoryLoaded: ChatModel._on_history,
    ev.ServerError: ChatModel._on_error,
}
