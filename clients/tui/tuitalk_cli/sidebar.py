"""Side panels: the room list (with unread and mention counts) and the member list.

Both are plain text widgets that never take focus (the input keeps it); the room list
answers clicks with :class:`RoomList.Selected`. Names come through
:mod:`tuitalk_cli.names`, so they are sanitised and look-alikes carry an id suffix.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from rich.text import Text
from textual import events
from textual.app import ComposeResult
from textual.containers import VerticalScroll
from textual.message import Message
from textual.widgets import Static

from tuitalk_cli import names

__all__ = ["MemberList", "RoomEntry", "RoomList"]


@dataclass(frozen=True, slots=True)
class RoomEntry:
    name: str
    unread: int
    mentions: int
    current: bool


def _fit(label: str, width: int) -> str:
    return label if len(label) <= width else label[: max(1, width - 1)] + "…"


class RoomList(Static, can_focus=False):
    """Numbered rooms (Alt+1..9), the current one highlighted, with activity counts."""

    DEFAULT_CSS = """
    RoomList {
        width: 20;
        height: 1fr;
        padding: 0 1;
        border-right: vkey $foreground 20%;
    }
    """

    class Selected(Message):
        def __init__(self, room: str) -> None:
            super().__init__()
            self.room = room

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self._rooms: list[str] = []
        self._shown: object = None

    def set_rooms(self, entries: Sequence[RoomEntry]) -> None:
        width = max(4, self.content_region.width or 18)
        key = (tuple(entries), width)
        if key == self._shown:
            return
        self._shown = key
        self._rooms = [e.name for e in entries]
        out = Text(no_wrap=True, overflow="ellipsis")
        for i, e in enumerate(entries, 1):
            if i > 1:
                out.append("\n")
            counts = ""
            if e.mentions:
                counts = f" @{e.mentions}"
            elif e.unread:
                counts = f" {e.unread}"
            num = f"{i} " if i <= 9 else "  "
            name = _fit("#" + e.name, width - len(num) - len(counts))
            line = Text(num, style="dim")
            style = "bold reverse" if e.current else ("bold" if e.unread else "")
            line.append(name, style=style)
            line.pad_right(max(0, width - len(num) - len(name) - len(counts)))
            if e.mentions:
                line.append(counts, style="bold red")
            elif e.unread:
                line.append(counts, style="bold yellow")
            out.append_text(line)
        if not entries:
            out.append("(no rooms)\n/join NAME", style="dim")
        self.update(out, layout=False)  # fixed size: no layout pass

    def on_click(self, event: events.Click) -> None:
        offset = event.get_content_offset(self)
        if offset is not None and 0 <= offset.y < len(self._rooms):
            self.post_message(self.Selected(self._rooms[offset.y]))


class MemberList(VerticalScroll, can_focus=False):
    """The current room's members; look-alike names show a short id suffix."""

    DEFAULT_CSS = """
    MemberList {
        width: 24;
        height: 1fr;
        padding: 0 1;
        border-left: vkey $foreground 20%;
        scrollbar-size-vertical: 1;
    }
    MemberList.-hidden { display: none; }
    MemberList > Static { width: 1fr; }
    """

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self._body = Static("", id="members-body")
        self._shown: object = None

    def compose(self) -> ComposeResult:
        yield self._body

    def set_members(self, members: Mapping[str, str], me: str) -> None:
        key = (tuple(members.items()), me)
        if key == self._shown:
            return
        self._shown = key
        index = names.NameIndex(members)
        parts = {u: index.label(u, n) for u, n in members.items()}
        order = sorted(members, key=lambda u: (parts[u][0].casefold(), u))
        out = Text(no_wrap=True, overflow="ellipsis")
        for i, user in enumerate(order):
            if i:
                out.append("\n")
            name, suffix = parts[user]
            out.append(name, style=f"bold {names.name_color(user)}"
                       + (" underline" if user == me else ""))
            if suffix:
                out.append(suffix, style="dim")
        self.border_title = f"{len(members)} member{'s' if len(members) != 1 else ''}"
        self._body.update(out)
