"""The page: turns the core's UI events into DOM, one room pane per joined room.

Attributes down, messages up: the view only renders what it is told (events from
:mod:`tuitalk.client.events`, plus local notes) and reports the user's clicks and scrolls
through the callbacks it was built with; it never talks to the session.

DOM contract (tests and assistive technology rely on it):

- ``#rooms``: one ``<button data-room>`` per room, ``aria-current="true"`` on the active one,
  unread count in text ("3 new").
- ``#logs``: one ``<section role="log" data-room>`` per room, hidden unless active. Its
  ``ol.msgs`` holds one ``li.msg`` per room message with ``data-epoch``, ``data-seq``,
  ``data-id``, ``data-user``, ``data-kind``, sorted by ``(epoch, seq)``; ``ol.pending`` holds
  the user's messages the server has not confirmed (``li.pending``; ``li.acked`` once
  acknowledged, until the message itself arrives; ``li.failed`` if refused).
  ``data-dups`` counts messages the view dropped as already shown (must stay 0).
- ``#status`` (``role="status"``): connection state in words; ``data-state`` for machines.
- ``body[data-state]``, ``body[data-user]``, ``body[data-name]``, ``body[data-backend]``,
  ``body[data-active]``; ``body[data-ready]`` once the first ``welcome`` arrived.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Callable
from typing import Any, Final

import js
from pyodide.ffi import create_proxy

from tuitalk.client import events as ev
from tuitalk.protocol import Member, Msg
from tuitalk.sanitize import sanitize, sanitize_line
from tuitalk_web.dom import by_id, el, text
from tuitalk_web.render import line_for, nick_colour, short_id

__all__ = ["ChatView", "RoomPane"]

#: Within this many pixels of the bottom a log counts as "at the bottom" and follows new
#: messages; further up, the user is reading and new messages do not move the view.
FOLLOW_PX: Final = 48
#: Older messages are requested when the log is scrolled to within this many pixels of top.
OLDER_PX: Final = 120
#: A connection that heals within this time is not shown as an alarm (a failover that
#: heals at once should feel like nothing happened).
QUIET_OUTAGE_S: Final = 1.0

_MARKS: Final = {"text": "", "me": "*", "join": "\u2192", "leave": "\u2190", "nick": "~"}


class RoomPane:
    """The DOM of one room: its button, its log, and what is in them."""

    def __init__(self, room: str, view: ChatView) -> None:
        self.room = room
        self.unread = 0
        self.members: tuple[Member, ...] = ()
        self.more: bool | None = None  # None: not known yet
        self.loading = False
        self.leaving = False
        # Sorted keys of the shown messages and their <li>, in DOM order.
        self.keys: list[tuple[int, int]] = []
        self.items: list[Any] = []
        self.seen: set[tuple[str, int]] = set()
        self.epochs: dict[str, int] = {}
        self.pending: dict[str, Any] = {}
        self.dups = 0

        self.item = el("li")
        self.button = el("button", "room", type="button", data_room=room)
        self.label = el("span", "name", f"#{room}")
        self.badge = el("span", "unread")
        self.badge.hidden = True
        self.button.append(self.label, text(" "), self.badge)
        self.item.append(self.button)

        self.log = el("section", "log", role="log", tabindex="0", data_room=room,
                      data_dups="0", aria_label=f"Messages in #{room}")
        self.log.hidden = True
        self.older = el("p", "older")
        self.older_button = el("button", "older-button", "Load older messages", type="button")
        self.older_note = el("span", "older-note")
        self.older.append(self.older_note, self.older_button)
        self.list = el("ol", "msgs")
        self.pending_list = el("ol", "pending-list", aria_label="Not yet delivered")
        self.log.append(self.older, self.list, self.pending_list)
        self.set_more(None)

        self._proxies = [
            view.listen(self.button, "click", lambda _e: view.on_room(room)),
            view.listen(self.older_button, "click", lambda _e: view.on_older(room)),
            view.listen(self.log, "scroll", lambda _e: view.check_older(self)),
        ]

    # -- shown messages ---------------------------------------------------------------------

    def _key(self, m: Msg, older: bool) -> tuple[int, int]:
        rank = self.epochs.get(m.epoch)
        if rank is None:
            # A new epoch from the session's stream (live or replayed) follows everything;
            # an unknown one from a history page precedes everything (it can only be older).
            ranks = self.epochs.values()
            rank = (min(ranks, default=1) - 1) if older else (max(ranks, default=-1) + 1)
            self.epochs[m.epoch] = rank
        return (rank, m.seq)

    def add(self, m: Msg, *, older: bool = False) -> bool:
        """Insert ``m`` at its place (``older``: it comes from a history page); False if it
        was already shown (counted in data-dups)."""
        if (m.epoch, m.seq) in self.seen:
            self.dups += 1
            self.log.dataset.dups = str(self.dups)
            return False
        self.seen.add((m.epoch, m.seq))
        key = self._key(m, older)
        li = _message_item(m)
        i = bisect_left(self.keys, key)
        if i == len(self.keys):
            self.list.append(li)
        else:
            self.list.insertBefore(li, self.items[i])
        self.keys.insert(i, key)
        self.items.insert(i, li)
        done = self.pending.pop(m.id, None)
        if done is not None:
            done.remove()
        return True

    def clear(self) -> None:
        self.list.replaceChildren()
        self.keys.clear()
        self.items.clear()
        self.seen.clear()
        self.epochs.clear()

    def note(self, message: str, cls: str = "note") -> None:
        """A local line (not a room message): errors, help, "history reloaded"."""
        li = el("li", f"sys {cls}")
        li.append(el("span", "mark", "!" if cls == "error" else "-"), text(" "),
                  el("span", "body", sanitize(message)))
        self.list.append(li)

    def set_more(self, more: bool | None) -> None:
        self.more = more
        self.log.dataset.more = "unknown" if more is None else ("yes" if more else "no")
        self.older_button.hidden = not more or self.loading
        if self.loading:
            self.older_note.textContent = "Loading older messages\u2026"
        elif more is False:
            self.older_note.textContent = f"Beginning of #{self.room}"
        else:
            self.older_note.textContent = ""

    def set_unread(self, n: int) -> None:
        self.unread = n
        self.badge.hidden = n == 0
        self.badge.textContent = f"{n} new" if n else ""

    # -- the user's own messages ------------------------------------------------------------

    def add_pending(self, p: ev.Pending, who: str, colour: int) -> None:
        li = el("li", "msg pending", data_id=p.id, data_kind=p.kind)
        li.append(el("span", "time", "--:--"), text(" "))
        if p.kind == "me":
            li.append(el("span", "mark", "*"), text(" "))
        nick = el("span", f"nick c{colour}", who)
        li.append(nick, el("span", "sep", " " if p.kind == "me" else ": "),
                  el("span", "body", sanitize(p.text)), el("span", "state", " (sending)"))
        self.pending_list.append(li)
        self.pending[p.id] = li

    def acked(self, a: ev.Acked) -> None:
        li = self.pending.get(a.id)
        if li is not None:
            li.className = "msg acked"
            li.dataset.seq = str(a.seq)
            li.querySelector(".state").textContent = " (sent)"

    def failed(self, f: ev.SendFailed) -> None:
        li = self.pending.pop(f.id, None)
        if li is not None:
            li.className = "msg failed"
            li.querySelector(".state").textContent = (
                f" (not sent: {sanitize_line(f.detail or f.code)})")

    def destroy(self) -> None:
        self.item.remove()
        self.log.remove()
        for proxy in self._proxies:
            proxy.destroy()


def _message_item(m: Msg) -> Any:
    line = line_for(m)
    li = el("li", f"msg k-{line.kind}", data_epoch=m.epoch, data_seq=str(m.seq), data_id=m.id,
            data_user=m.user, data_kind=m.kind)
    li.append(el("time", "time", line.clock, datetime=line.iso), text(" "))
    mark = _MARKS.get(line.kind, "")
    if mark:
        li.append(el("span", "mark", mark), text(" "))
    who = el("span", "who")
    who.append(el("span", f"nick c{line.colour}", line.nick), el("span", "uid", line.uid))
    sep = ": " if line.kind == "text" else " "
    li.append(who, el("span", "sep", sep), el("span", "body", line.body))
    return li


class ChatView:
    """Every pane, the room list, the members list and the status line."""

    def __init__(
        self,
        *,
        on_room: Callable[[str], None],
        on_older: Callable[[str], None],
    ) -> None:
        self.on_room = on_room
        self.on_older = on_older
        self.panes: dict[str, RoomPane] = {}
        self.active: str | None = None
        self.user = ""
        self.name = ""
        self.state = "connecting"
        self._alarmed = False
        self._was_connected = False
        self._alarm_timer = 0
        self._last_problem = ""
        self._alarm_proxy = create_proxy(self._alarm)
        self.body = js.document.body
        self.rooms_ul = by_id("rooms")
        self.logs = by_id("logs")
        self.members_ul = by_id("members")
        self.members_h = by_id("members-h")
        self.status = by_id("status")
        self.me = by_id("me")
        self.prompt_room = by_id("prompt-room")
        self.empty = by_id("empty")

    def listen(self, target: Any, event: str, handler: Callable[[Any], None]) -> Any:
        proxy = create_proxy(handler)
        target.addEventListener(event, proxy)
        return proxy

    # -- rooms --------------------------------------------------------------------------------

    @property
    def order(self) -> list[str]:
        return [r for r, p in self.panes.items() if not p.leaving]

    def pane(self, room: str) -> RoomPane:
        pane = self.panes.get(room)
        if pane is None:
            pane = self.panes[room] = RoomPane(room, self)
            self.rooms_ul.append(pane.item)
            self.logs.append(pane.log)
            self.empty.hidden = True
        return pane

    def activate(self, room: str) -> None:
        pane = self.pane(room)
        for r, p in self.panes.items():
            if r == room:
                p.button.setAttribute("aria-current", "true")
            else:
                p.button.removeAttribute("aria-current")
            p.log.hidden = r != room
        self.active = room
        self.body.dataset.active = room
        self.prompt_room.textContent = f"#{room}"
        pane.set_unread(0)
        self._title()
        self._members(pane)
        self.check_older(pane)

    def remove(self, room: str) -> str | None:
        """Drop a room's pane; returns the room to show instead (None: none left)."""
        pane = self.panes.pop(room, None)
        if pane is not None:
            pane.destroy()
        if self.active == room:
            self.active = None
            rest = self.order
            if rest:
                return rest[0]
            self.body.dataset.active = ""
            self.prompt_room.textContent = "(no room)"
            self.empty.hidden = False
            self._members(None)
        return self.active

    def mark_leaving(self, room: str) -> None:
        pane = self.panes.get(room)
        if pane is not None:
            pane.leaving = True
            pane.label.textContent = f"#{room} (leaving)"

    def check_older(self, pane: RoomPane) -> None:
        """Ask for older messages when the active log is scrolled (or sits) near its top."""
        if pane.room != self.active or pane.loading or pane.more is False:
            return
        if pane.more is None:
            return  # not joined yet: the joined event calls this again
        if pane.log.scrollTop < OLDER_PX:
            self.on_older(pane.room)

    def history_requested(self, room: str) -> None:
        pane = self.panes.get(room)
        if pane is not None:
            pane.loading = True
            pane.log.setAttribute("aria-busy", "true")
            pane.set_more(pane.more)

    def scroll_page(self, direction: int) -> None:
        pane = self.panes.get(self.active or "")
        if pane is not None:
            pane.log.scrollBy(0, direction * max(40, pane.log.clientHeight * 0.9))

    def note(self, message: str, cls: str = "note") -> None:
        pane = self.panes.get(self.active or "")
        if pane is None:
            status = by_id("notes")
            status.textContent = sanitize_line(message)
            return
        follow = self._at_bottom(pane)
        pane.note(message, cls)
        if follow:
            self._to_bottom(pane)

    # -- events --------------------------------------------------------------------------------

    def apply(self, events: list[ev.Event]) -> None:
        """Render one batch of events from the session."""
        # Read layout once per pane per batch (before any change), write once after.
        follow: dict[str, bool] = {}
        anchors: dict[str, float] = {}
        for e in events:
            room = e.msg.room if isinstance(e, ev.MessageShown) else getattr(e, "room", None)
            if room is not None and room in self.panes and room not in follow:
                before = self.panes[room]
                # The user's own message always brings the log to the bottom.
                follow[room] = isinstance(e, ev.Pending) or self._at_bottom(before)
                anchors[room] = before.log.scrollHeight - before.log.scrollTop
        touched_history: set[str] = set()
        for e in events:
            self._apply(e, touched_history)
        for room, at_bottom in follow.items():
            pane = self.panes.get(room)
            if pane is None or pane.log.hidden:
                continue
            if at_bottom and room not in touched_history:
                self._to_bottom(pane)
            elif room in touched_history:
                # Keep what the user was looking at in place while older lines go above.
                pane.log.scrollTop = pane.log.scrollHeight - anchors[room]
        for room in touched_history:
            pane = self.panes.get(room)
            if pane is not None:
                self.check_older(pane)

    def _apply(self, e: ev.Event, touched_history: set[str]) -> None:
        if isinstance(e, ev.MessageShown):
            self._shown(e)
        elif isinstance(e, ev.Pending):
            self.pane(e.room).add_pending(e, self.name or "you", nick_colour(self.user))
        elif isinstance(e, ev.Acked):
            pane = self.panes.get(e.room)
            if pane is not None:
                pane.acked(e)
        elif isinstance(e, ev.HistoryLoaded):
            pane = self.panes.get(e.room)
            if pane is not None:
                pane.log.setAttribute("aria-busy", "true")
                for m in e.messages:
                    pane.add(m, older=True)
                pane.loading = False
                pane.set_more(e.more)
                pane.log.removeAttribute("aria-busy")
                touched_history.add(e.room)
        elif isinstance(e, ev.RoomJoined):
            pane = self.pane(e.room)
            if not e.resumed and pane.keys:
                # The server could not replay what we missed: start over from its head.
                pane.clear()
                pane.note("Reloaded: too much was missed to replay it.")
            pane.members = e.members
            pane.loading = False
            pane.log.removeAttribute("aria-busy")
            pane.set_more(True if pane.more is None else pane.more)
            if e.room == self.active:
                self._members(pane)
            touched_history.add(e.room)
        elif isinstance(e, ev.MembersChanged):
            pane = self.panes.get(e.room)
            if pane is not None:
                pane.members = e.members
                if e.room == self.active:
                    self._members(pane)
        elif isinstance(e, ev.RoomLeft):
            nxt = self.remove(e.room)
            if nxt is not None and self.active is None:
                self.on_room(nxt)
        elif isinstance(e, ev.RoomReset):
            pane = self.panes.get(e.room)
            if pane is not None:
                pane.clear()
                pane.set_more(True)
                pane.note(f"The history of #{e.room} changed ({sanitize_line(e.reason)}); "
                          "reloaded.")
                touched_history.add(e.room)
        elif isinstance(e, ev.SendFailed):
            pane = self.panes.get(e.room)
            if pane is not None:
                pane.failed(e)
        elif isinstance(e, ev.StateChanged):
            self._state(e)
        elif isinstance(e, ev.Welcomed):
            self.user, self.name = e.user, sanitize_line(e.name)
            self.me.textContent = f"{self.name}{short_id(e.user)}"
            self.me.className = f"me nick c{nick_colour(e.user)}"
            self.body.dataset.user = e.user
            self.body.dataset.name = self.name
            self.body.dataset.backend = sanitize_line(e.backend)
        elif isinstance(e, ev.ServerError):
            if e.ref and e.ref in self.panes:
                pane = self.panes[e.ref]
                pane.loading = False
                pane.set_more(pane.more)
            self.note(f"server: {sanitize_line(e.detail)} ({sanitize_line(e.code)})", "error")

    def _shown(self, e: ev.MessageShown) -> None:
        pane = self.panes.get(e.msg.room)
        if pane is None:
            return
        if not pane.add(e.msg):
            return
        if e.msg.room != self.active and not e.mine and e.msg.kind in ("text", "me"):
            pane.set_unread(pane.unread + 1)
            self._title()

    # -- status ---------------------------------------------------------------------------------

    def _state(self, e: ev.StateChanged) -> None:
        self.state = e.state
        self.body.dataset.state = e.state
        self.status.dataset.state = e.state
        if e.state == "connected":
            self._alarmed = False
            self.status.dataset.alarm = "0"
            where = sanitize_line(e.detail)
            # since_s is only an outage length after a previous connection.
            if self._was_connected and e.since_s >= QUIET_OUTAGE_S:
                self.status.textContent = (f"Back online after {e.since_s:.1f} s "
                                           f"(via {where})")
            else:
                self.status.textContent = f"Connected (via {where})"
            self.status.dataset.since = f"{e.since_s:.3f}" if self._was_connected else "0"
            self._was_connected = True
            return
        if not self.user and not self._alarmed:
            self.status.textContent = "Connecting\u2026"
        if e.detail:
            self._last_problem = sanitize_line(e.detail)
        if not self._alarm_timer:
            # Stay quiet for a moment: a failover usually heals at once.
            self._alarm_timer = js.setTimeout(self._alarm_proxy, int(QUIET_OUTAGE_S * 1000))

    def _alarm(self, *_args: Any) -> None:
        self._alarm_timer = 0
        if self.state == "connected":
            return
        self._alarmed = True
        self.status.dataset.alarm = "1"
        lead = ("Connection lost, reconnecting" if self.user
                else "Cannot reach the server, retrying")
        detail = f" ({self._last_problem})" if self._last_problem else ""
        self.status.textContent = f"{lead}\u2026{detail}"

    # -- helpers ----------------------------------------------------------------------------------

    def _members(self, pane: RoomPane | None) -> None:
        members = pane.members if pane is not None else ()
        items = []
        for m in members:
            li = el("li")
            li.append(el("span", f"nick c{nick_colour(m.user)}", sanitize_line(m.name)),
                      el("span", "uid", short_id(m.user)))
            items.append(li)
        self.members_ul.replaceChildren(*items)
        self.members_h.textContent = f"Members ({len(members)})" if pane else "Members"

    def _title(self) -> None:
        total = sum(p.unread for p in self.panes.values())
        js.document.title = f"({total}) TuiTalk" if total else "TuiTalk"

    @staticmethod
    def _at_bottom(pane: RoomPane) -> bool:
        log = pane.log
        return bool(log.scrollHeight - log.scrollTop - log.clientHeight < FOLLOW_PX)

    @staticmethod
    def _to_bottom(pane: RoomPane) -> None:
        pane.log.scrollTop = pane.log.scrollHeight

