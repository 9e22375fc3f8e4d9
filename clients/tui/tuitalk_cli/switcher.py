"""Ctrl+K: the fuzzy room switcher. Type to filter, Enter to go, Esc to cancel.

A name that matches no joined room but is a valid room name is offered as "join #name".
The screen returns the chosen room name (joined or to join) or None.
"""

from __future__ import annotations

from collections.abc import Sequence

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Input, OptionList
from textual.widgets.option_list import Option

from tuitalk.client.commands import normalize_room
from tuitalk.errors import ProtocolError
from tuitalk_cli.completion import fuzzy_filter
from tuitalk_cli.sidebar import RoomEntry

__all__ = ["RoomSwitcher"]


class RoomSwitcher(ModalScreen[str | None]):
    DEFAULT_CSS = """
    RoomSwitcher { align: center top; }
    RoomSwitcher > Vertical {
        width: 60%;
        max-width: 60;
        min-width: 30;
        height: auto;
        max-height: 70%;
        margin-top: 2;
        border: round $accent;
        background: $surface;
        padding: 0 1;
    }
    RoomSwitcher OptionList { height: auto; max-height: 16; border: none; }
    RoomSwitcher Input { border: none; }
    """
    BINDINGS = [
        Binding("escape", "dismiss_none", "Cancel", show=False),
        Binding("ctrl+k", "dismiss_none", "Cancel", show=False, priority=True),
        Binding("down", "move(1)", show=False, priority=True),
        Binding("up", "move(-1)", show=False, priority=True),
        Binding("tab", "move(1)", show=False, priority=True),
        Binding("shift+tab", "move(-1)", show=False, priority=True),
    ]

    def __init__(self, rooms: Sequence[RoomEntry]) -> None:
        super().__init__()
        self.rooms = list(rooms)

    def compose(self) -> ComposeResult:
        with Vertical() as box:
            box.border_title = "switch room (Enter: go, Esc: cancel)"
            yield Input(placeholder="room name…", id="switch-query")
            yield OptionList(id="switch-options")

    def on_mount(self) -> None:
        self._refill("")
        self.query_one(Input).focus()

    def _refill(self, query: str) -> None:
        options = self.query_one(OptionList)
        options.clear_options()
        by_name = {e.name: e for e in self.rooms}
        matches = fuzzy_filter(query.removeprefix("#"), list(by_name))
        for name in matches:
            e = by_name[name]
            label = Text("#" + name, style="bold" if e.unread else "")
            if e.mentions:
                label.append(f"  @{e.mentions}", style="bold red")
            elif e.unread:
                label.append(f"  {e.unread}", style="yellow")
            options.add_option(Option(label, id=name))
        try:
            new = normalize_room(query) if query.strip() else None
        except ProtocolError:
            new = None
        if new is not None and new not in by_name:
            options.add_option(Option(Text.assemble("join ", ("#" + new, "bold")), id=new))
        if options.option_count:
            options.highlighted = 0

    @on(Input.Changed, "#switch-query")
    def _changed(self, event: Input.Changed) -> None:
        self._refill(event.value)

    @on(Input.Submitted, "#switch-query")
    def _submitted(self) -> None:
        options = self.query_one(OptionList)
        if options.highlighted is None:
            self.dismiss(None)
            return
        self.dismiss(options.get_option_at_index(options.highlighted).id)

    @on(OptionList.OptionSelected)
    def _selected(self, event: OptionList.OptionSelected) -> None:
        self.dismiss(event.option.id)

    def action_move(self, step: int) -> None:
        options = self.query_one(OptionList)
        if options.option_count:
            cur = options.highlighted or 0
            options.highlighted = (cur + step) % options.option_count

    def action_dismiss_none(self) -> None:
        self.dismiss(None)
