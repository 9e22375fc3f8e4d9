"""The timeline: one room's messages, virtualised, anchored to the bottom.

A line-API widget (like Textual's ``Log``): it keeps a row index over the room's items and
renders only the rows on screen, so a room with tens of thousands of lines opens and
scrolls as fast as an empty one. Each item knows its height at the current width (cached;
one-line items skip wrapping entirely) and renders its rows lazily.

Scrolling rules:

1. At the bottom, new rows keep the view at the bottom. Scrolled up, the view stays on the
   same message whatever happens above it (history pages prepended, old lines trimmed,
   a pending message replaced), and ``new_below`` counts the messages that arrived.
2. Reaching the top posts :class:`Timeline.NeedOlder`; the app asks the server for the
   page before, and it is prepended without moving what the user is reading.
"""

from __future__ import annotations

import re
from bisect import bisect_right
from dataclasses import dataclass
from typing import Final

from rich._wrap import divide_line
from rich.cells import cell_len
from rich.segment import Segment
from rich.style import Style
from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Vertical
from textual.geometry import Size
from textual.message import Message
from textual.reactive import reactive
from textual.scroll_view import ScrollView
from textual.strip import Strip
from textual.widget import Widget
from textual.widgets import Static

from tuitalk_cli.model import RoomModel
from tuitalk_cli.render import Item, marker_item

__all__ = ["NewBelowBar", "Timeline", "TimelinePane", "wrapped_rows"]

#: Rows from the top at which older history is requested (comlink asks within 5 lines).
TOP_TRIGGER_ROWS: Final = 3


@dataclass(slots=True)
class _Layout:
    width: int
    height: int
    strips: list[Strip] | None


_WORD = re.compile(r"\s*\S+\s*")  # rich._wrap's notion of a word


def wrapped_rows(text: str, width: int) -> int:
    """How many rows Rich's word wrap (``fold`` overflow) gives one paragraph.

    Printable ASCII (one cell per character) takes a fast path equivalent to
    ``len(rich._wrap.divide_line(text, width, fold=True)) + 1``, which a property test
    checks; other text goes to Rich itself.
    """
    if not (text.isascii() and text.isprintable()):
        return len(divide_line(text, width, fold=True)) + 1
    breaks = 0
    offset = 0
    for m in _WORD.finditer(text):
        start = m.start()
        word = m.group()
        length = len(word.rstrip())
        if width - offset >= length:
            offset += len(word)
        elif length > width:
            chunks = -(-len(word) // width)
            breaks += chunks if start else chunks - 1
            offset = len(word) - (chunks - 1) * width
        elif offset and start:
            breaks += 1
            offset = len(word)
    return breaks + 1


def _count_rows(item: Item, width: int) -> int:
    """Rows ``item`` takes at ``width``, as :meth:`Timeline._wrap` lays it out, found
    without building them."""
    if item.kind in ("marker", "day"):
        return 1
    pw = item.prefix.cell_len
    body = item.body.plain
    if "\n" not in body and pw + cell_len(body) <= width:
        return 1
    if pw > width // 2:
        paragraphs, avail = (item.prefix.plain + body).split("\n"), width
    else:
        paragraphs, avail = body.split("\n"), width - pw
    return max(1, sum(wrapped_rows(par, avail) for par in paragraphs))


class Timeline(ScrollView, can_focus=False):
    """Shows a :class:`RoomModel`; the app calls :meth:`show` and :meth:`refresh_room`."""

    DEFAULT_CSS = """
    Timeline {
        overflow-x: hidden;
        /* Always shown: a scroll to the end right after new content would be refused
           while "auto" has not yet decided that a scrollbar is needed. */
        overflow-y: scroll;
        scrollbar-size-vertical: 1;
        height: 1fr;
    }
    """

    new_below: reactive[int] = reactive(0)

    class NeedOlder(Message):
        """The user scrolled to the top of ``room``'s timeline."""

        def __init__(self, room: str) -> None:
            super().__init__()
            self.room = room

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.room: RoomModel | None = None
        self._rows: list[Item] = []
        self._starts: list[int] = []
        self._total = 0
        self._width = 0
        self._marker = marker_item()
        self._style: Style | None = None
        # What the row index was built from, to recognise a pure append.
        self._built: tuple[object, ...] = ()

    # -- attributes down ----------------------------------------------------------------------

    def show(self, room: RoomModel) -> None:
        """Switch to ``room``: at the bottom, or at the read marker if it is far up."""
        self.room = room
        self.new_below = 0
        self._layout()
        height = self.scrollable_content_region.height
        marker_row = self._row_of(self._marker) if room.marker is not None else None
        if marker_row is not None and self._total - marker_row > height:
            self.scroll_to(y=max(0, marker_row - 1), animate=False, immediate=True)
        else:
            self.scroll_end(animate=False, immediate=True, x_axis=False)
        self.refresh()
        self._maybe_need_older()

    def refresh_room(self, new_messages: int = 0) -> None:
        """The shown room changed: relayout, keeping the view where the user left it."""
        if self.room is None:
            return
        at_bottom = self._at_bottom()
        if self._appended_only():
            self._append_rows()
        else:
            anchor = None if at_bottom else self._anchor()
            self._layout()
            if anchor is not None and not at_bottom:
                item, offset = anchor
                row = self._row_of(item)
                if row is not None:
                    self.scroll_to(y=row + offset, animate=False, immediate=True)
        if at_bottom:
            self.scroll_end(animate=False, immediate=True, x_axis=False)
        else:
            self.new_below += new_messages
        self.refresh()
        self._maybe_need_older()

    def scroll_to_item(self, index: int) -> None:
        """Scroll so that ``room.items[index]`` (or the marker before it) is near the top."""
        if self.room is None or not 0 <= index < len(self.room.items):
            return
        item = self.room.items[index]
        row = self._row_of(self._marker if self.room.marker == index else item)
        if row is not None:
            self.scroll_to(y=max(0, row - 1), animate=False, immediate=True)

    def reveal_above(self, count: int) -> None:
        """After ``count`` items were prepended: show the newest of them at the bottom."""
        if self.room is None or not 0 < count <= len(self.room.items):
            return
        row = self._row_of(self.room.items[count - 1])
        if row is not None:
            height = self.scrollable_content_region.height
            self.scroll_to(y=max(TOP_TRIGGER_ROWS, row - height + 2), animate=False,
                           immediate=True)

    def jump_to_end(self) -> None:
        self.scroll_end(animate=False, immediate=True, x_axis=False)
        self.new_below = 0

    # -- layout ------------------------------------------------------------------------------------

    def _at_bottom(self) -> bool:
        return self.scroll_y >= self.max_scroll_y - 0.5 or self._total <= self.size.height

    def _anchor(self) -> tuple[Item, int] | None:
        top = int(self.scroll_y)
        if not self._rows or top >= self._total:
            return None
        i = bisect_right(self._starts, top) - 1
        return self._rows[i], top - self._starts[i]

    def _row_of(self, item: Item) -> int | None:
        for i, it in enumerate(self._rows):
            if it is item:
                return self._starts[i]
        return None

    def _signature(self) -> tuple[object, ...]:
        room = self.room
        if room is None or not room.items:
            return (room, 0)
        return (room, len(room.items), room.items[0], room.items[-1], room.marker,
                len(room.pending), self._width)

    def _appended_only(self) -> bool:
        """True when the only change since the last layout is items added at the end
        (the common case, a message arriving): then the row index is extended, not
        rebuilt, so a flood costs the same in a room of 10 or 10,000 lines."""
        room, built = self.room, self._built
        if room is None or len(built) < 7 or built[0] is not room or room.pending:
            return False
        _, n, first, last, marker, pending, width = built
        assert isinstance(n, int)
        return (pending == 0 and marker == room.marker and width == self._width
                and len(room.items) > n and room.items[0] is first
                and room.items[n - 1] is last)

    def _append_rows(self) -> None:
        assert self.room is not None
        n = self._built[1]
        assert isinstance(n, int)
        total = self._total
        for item in self.room.items[n:]:
            self._rows.append(item)
            self._starts.append(total)
            total += self._height(item, self._width)
        self._total = total
        self._built = self._signature()
        self._set_virtual_size(Size(self._width, total))

    def _layout(self) -> None:
        room = self.room
        rows: list[Item] = []
        if room is not None:
            marker = room.marker
            if marker is not None and 0 < marker < len(room.items):
                rows = [*room.items[:marker], self._marker, *room.items[marker:]]
            else:
                rows = list(room.items)
            rows.extend(room.pending.values())
        width = max(1, self.scrollable_content_region.width)
        self._width = width
        starts: list[int] = []
        total = 0
        height = self._height
        for item in rows:
            starts.append(total)
            total += height(item, width)
        self._rows, self._starts, self._total = rows, starts, total
        self._built = self._signature()
        self._set_virtual_size(Size(width, total))

    def _set_virtual_size(self, size: Size) -> None:
        """Change the scroll range without a layout pass of the whole screen (which is
        what assigning ``virtual_size`` does, and which would dominate a flood): this
        widget's own size never depends on its content, and both scrollbars are fixed
        (``overflow-y: scroll``, ``overflow-x: hidden``). Same calls as Textual's own
        no-layout path in ``Widget._size_updated``."""
        if size != self.virtual_size:
            self.set_reactive(Widget.virtual_size, size)
            self._scroll_update(size)

    def _height(self, item: Item, width: int) -> int:
        lay = item.layout
        if isinstance(lay, _Layout) and lay.width == width:
            return lay.height
        item.layout = _Layout(width, _count_rows(item, width), None)
        return item.layout.height

    def _wrap(self, item: Item, width: int) -> list[Strip]:
        console = self.app.console
        if item.kind in ("marker", "day"):
            label = " " + item.body.plain + " "
            side = max(0, width - cell_len(label))
            rule = "red" if item.kind == "marker" else "dim"
            text = Text.assemble(("─" * (side // 2), rule), (label, f"bold {rule}"),
                                 ("─" * (side - side // 2), rule))
            rows = [text]
        else:
            pw = item.prefix.cell_len
            if pw > width // 2:
                rows = list(Text.assemble(item.prefix, item.body).wrap(console, width))
            else:
                body_rows = item.body.wrap(console, width - pw, overflow="fold")
                pad = Text(" " * pw)
                rows = [Text.assemble(item.prefix if i == 0 else pad, line)
                        for i, line in enumerate(body_rows)]
        if not rows:
            rows = [item.prefix.copy()]
        return [Strip(list(r.render(console)), r.cell_len) for r in rows]

    def notify_style_update(self) -> None:
        super().notify_style_update()
        self._style = None

    def on_resize(self) -> None:
        if self.room is not None:
            at_bottom = self._at_bottom()
            self._layout()
            if at_bottom:
                self.scroll_end(animate=False, immediate=True, x_axis=False)

    # -- rendering ---------------------------------------------------------------------------------

    def render_line(self, y: int) -> Strip:
        width = self.size.width
        # Short timelines sit at the bottom, next to the input, like in a terminal.
        pad = max(0, self.size.height - self._total)
        row = y + int(self.scroll_y) - pad
        style = self._style
        if style is None:
            style = self._style = self.rich_style
        if not 0 <= row < self._total or not self._rows:
            return Strip.blank(width, style)
        i = bisect_right(self._starts, row) - 1
        item = self._rows[i]
        lay = item.layout
        if not isinstance(lay, _Layout) or lay.width != self._width:
            self._height(item, self._width)
            lay = item.layout
            assert isinstance(lay, _Layout)
        if lay.strips is None:
            lay.strips = self._wrap(item, self._width)
        k = row - self._starts[i]
        strip = lay.strips[k] if k < len(lay.strips) else Strip([Segment("")], 0)
        # (the strips and the counted height agree; the guard only protects the screen)
        return strip.crop_extend(0, width, style).apply_style(style)

    # -- messages up ----------------------------------------------------------------------------

    def watch_scroll_y(self, old: float, new: float) -> None:
        super().watch_scroll_y(old, new)
        if new >= self.max_scroll_y - 0.5:
            self.new_below = 0
        if new < TOP_TRIGGER_ROWS:
            self._maybe_need_older(scrolled=True)

    def _maybe_need_older(self, scrolled: bool = False) -> None:
        room = self.room
        if room is None or not room.more_history or not room.history_requested:
            return
        if scrolled or self._total <= self.scrollable_content_region.height:
            self.post_message(self.NeedOlder(room.name))


class NewBelowBar(Static):
    """"↓ N new messages", shown while the user is scrolled up and messages arrive."""

    DEFAULT_CSS = """
    NewBelowBar {
        height: 1;
        display: none;
        background: $accent;
        color: $text;
        text-align: center;
    }
    NewBelowBar.-visible { display: block; }
    """

    def show_count(self, n: int) -> None:
        self.set_class(n > 0, "-visible")
        if n > 0:
            self.update(Text(f"↓ {n} new message{'s' if n != 1 else ''} (Esc: jump to end)"),
                        layout=False)


class TimelinePane(Vertical):
    """The timeline with its "new messages" bar under it."""

    DEFAULT_CSS = """
    TimelinePane { height: 1fr; }
    """

    def compose(self) -> ComposeResult:
        yield Timeline(id="timeline")
        yield NewBelowBar(id="newbar")

    def on_mount(self) -> None:
        timeline = self.query_one(Timeline)
        bar = self.query_one(NewBelowBar)
        self.watch(timeline, "new_below", bar.show_count)
