"""Timeline items: what one line of a room looks like, built from network data safely.

Every string from the network goes through :func:`tuitalk.sanitize.sanitize` (message text)
or :func:`~tuitalk_cli.names.clean_name` (names) here, and ends up in a
:class:`rich.text.Text` built from plain strings: no markup is ever parsed, so
``[@click=app.quit]`` is just text, and no control character reaches the terminal.
On top of the shared sanitiser this module caps what one message can do to the screen:
combining-mark stacks ("zalgo") are cut to :data:`MAX_COMBINING` per character and a
message shows at most :data:`MAX_MESSAGE_LINES` lines.
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass
from datetime import date, datetime, tzinfo
from functools import lru_cache
from typing import Final, Literal, TypeAlias

from rich.text import Text

from tuitalk.protocol import Msg
from tuitalk.sanitize import sanitize
from tuitalk_cli import names

__all__ = [
    "Item",
    "ItemKind",
    "Label",
    "clean_text",
    "day_item",
    "day_of",
    "event_item",
    "format_time",
    "marker_item",
    "message_item",
    "notice_item",
    "pending_item",
]

ItemKind: TypeAlias = Literal["msg", "event", "pending", "failed", "notice", "marker", "day"]
Key: TypeAlias = tuple[str, int, str]
#: A display name, already clean, and its id suffix (``"#abcd"`` or ``""``).
Label: TypeAlias = tuple[str, str]

MAX_COMBINING: Final = 2
MAX_MESSAGE_LINES: Final = 40
TIME_WIDTH: Final = 6  # "12:34 "

STYLE_TIME: Final = "dim"
STYLE_EVENT: Final = "dim italic"
STYLE_PENDING: Final = "dim"
STYLE_FAILED: Final = "bold red"
STYLE_MENTION: Final = "bold reverse"
STYLE_NOTICE: Final = "cyan"
STYLE_ERROR: Final = "bold red"


@dataclass(eq=False, slots=True)
class Item:
    """One timeline entry: a prefix (time and name) and a body that wraps under it."""

    prefix: Text
    body: Text
    kind: ItemKind
    key: Key | None = None  # (epoch, seq, id) of a room message
    msg_id: str | None = None
    user: str = ""
    mention: bool = False
    ts: int | None = None  # milliseconds, for room messages
    #: The timeline widget's cache for this item (width and rendered rows). Reset it
    #: whenever prefix or body change.
    layout: object = None


def clean_text(text: str) -> str:
    """Message text for display: sanitised, combining stacks and line count capped."""
    if text.isascii() and text.isprintable():
        return text  # what sanitize() returns for printable ASCII, found in C, not Python
    out = sanitize(text)
    if not out.isascii():
        chars: list[str] = []
        run = 0
        for ch in out:
            if unicodedata.combining(ch):
                run += 1
                if run > MAX_COMBINING:
                    continue
            else:
                run = 0
            chars.append(ch)
        out = "".join(chars)
    if out.count("\n") >= MAX_MESSAGE_LINES:
        lines = out.split("\n")
        out = "\n".join(lines[:MAX_MESSAGE_LINES])
        out += f"\n[{len(lines) - MAX_MESSAGE_LINES} more lines not shown]"
    return out


def format_time(ts_ms: int, tz: tzinfo | None) -> str:
    return _minute(ts_ms // 60_000, tz)


@lru_cache(maxsize=4096)
def _minute(minute: int, tz: tzinfo | None) -> str:
    try:
        return datetime.fromtimestamp(minute * 60, tz).strftime("%H:%M")
    except (OverflowError, OSError, ValueError):
        return "--:--"


def _time(ts_ms: int | None, tz: tzinfo | None, mark: str = "") -> Text:
    label = mark.center(5) if ts_ms is None else format_time(ts_ms, tz)
    return Text(label + " ", style=STYLE_TIME)


@lru_cache(maxsize=1024)
def _name_text(name: str, suffix: str, user: str, mine: bool) -> Text:
    style = f"bold {names.name_color(user)}" + (" underline" if mine else "")
    out = Text(name, style=style)
    if suffix:
        out.append(suffix, style="dim")
    return out


def _name(label: Label, user: str, *, mine: bool) -> Text:
    """A name as styled text. Cached and shared: callers must copy before changing it
    (``append_text`` and ``Text.assemble`` copy)."""
    return _name_text(label[0], label[1], user, mine)


def _highlight(body: Text, my_name: str) -> bool:
    spans = names.mentions(body.plain, my_name) if my_name else []
    for start, end in spans:
        body.stylize(STYLE_MENTION, start, end)
    return bool(spans)


def message_item(m: Msg, label: Label, *, mine: bool, my_name: str,
                 tz: tzinfo | None) -> Item:
    """A room message of kind ``text`` or ``me``; others go to :func:`event_item`."""
    if m.kind not in ("text", "me"):
        return event_item(m, label, tz=tz)
    prefix = _time(m.ts, tz)
    body = Text(clean_text(m.text))
    mention = not mine and _highlight(body, my_name)
    if m.kind == "me":
        prefix.append("* ", style="bold")
        prefix.append_text(_name(label, m.user, mine=mine))
        prefix.append(" ")
        body.stylize("italic")
    else:
        prefix.append_text(_name(label, m.user, mine=mine))
        prefix.append(": ")
    if mention:
        prefix.stylize("bold", 0, TIME_WIDTH - 1)
    return Item(prefix, body, "msg", key=(m.epoch, m.seq, m.id), msg_id=m.id, user=m.user,
                mention=mention, ts=m.ts)


def event_item(m: Msg, label: Label, *, tz: tzinfo | None) -> Item:
    """Membership and name changes (``join``, ``leave``, ``nick``)."""
    prefix = _time(m.ts, tz)
    if m.kind == "join":
        prefix.append("→ ", style="green")
        body = Text.assemble(_name(label, m.user, mine=False), (" joined", STYLE_EVENT))
    elif m.kind == "leave":
        prefix.append("← ", style="red")
        body = Text.assemble(_name(label, m.user, mine=False), (" left", STYLE_EVENT))
    else:
        prefix.append("· ", style="dim")
        body = Text.assemble((names.clean_name(m.text), "bold"),
                             (" is now known as ", STYLE_EVENT),
                             _name(label, m.user, mine=False))
    return Item(prefix, body, "event", key=(m.epoch, m.seq, m.id), msg_id=m.id, user=m.user,
                ts=m.ts)


def pending_item(msg_id: str, text: str, kind: str, label: Label, user: str, *,
                 failed: str | None = None) -> Item:
    """A message the user sent that the server has not sequenced yet (or refused)."""
    prefix = _time(None, None, "✗" if failed is not None else "…")
    if kind == "me":
        prefix.append("* ", style="bold")
        prefix.append_text(_name(label, user, mine=True))
        prefix.append(" ")
    else:
        prefix.append_text(_name(label, user, mine=True))
        prefix.append(": ")
    body = Text(clean_text(text))
    if failed is not None:
        body.append(f"  (not sent: {failed})", style=STYLE_FAILED)
        prefix.stylize(STYLE_FAILED, 0, TIME_WIDTH - 1)
        return Item(prefix, body, "failed", msg_id=msg_id, user=user)
    prefix.stylize(STYLE_PENDING)
    body.stylize(STYLE_PENDING)
    return Item(prefix, body, "pending", msg_id=msg_id, user=user)


def notice_item(text: str | Text, *, error: bool = False) -> Item:
    """A local line (command output, errors); never from the network unless sanitised."""
    prefix = Text(" " * (TIME_WIDTH - 1) + " ", style=STYLE_TIME)
    prefix.append("-!- " if error else "--- ", style=STYLE_ERROR if error else STYLE_NOTICE)
    body = text if isinstance(text, Text) else Text(sanitize(text))
    if error:
        body.stylize("red")
    return Item(prefix, body, "notice")


def day_of(ts_ms: int, tz: tzinfo | None) -> date | None:
    try:
        return datetime.fromtimestamp(ts_ms / 1000, tz).date()
    except (OverflowError, OSError, ValueError):
        return None


def day_item(day: date) -> Item:
    """A rule with the date, between messages of different days."""
    label = f"{day:%A} {day.day} {day:%B %Y}"
    return Item(Text(""), Text(label, style="bold"), "day")


def marker_item() -> Item:
    """The read marker: everything below it arrived while the room was not shown."""
    return Item(Text(""), Text("new messages", style="bold red"), "marker")
