"""The input line: Tab completion, recall of typed lines, and the message length limit.

Tab normally moves the focus in Textual; here it completes (the binding lives on this
widget, so it wins over the screen's). The widget asks the app for candidates with a
callback, and reports nothing but the standard ``Input.Submitted``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Final

from textual.binding import Binding
from textual.widgets import Input

from tuitalk.client.commands import command_names
from tuitalk.protocol import MAX_TEXT_CHARS
from tuitalk_cli.completion import NickCompleter

__all__ = ["Candidates", "ChatInput", "InputHistory"]

HISTORY_LINES: Final = 200


@dataclass(frozen=True, slots=True)
class Candidates:
    names: list[str]
    rooms: list[str]


@dataclass
class InputHistory:
    """Lines the user typed, recalled with Up/Down (newest first), like a shell."""

    lines: list[str] = field(default_factory=list)
    limit: int = HISTORY_LINES
    _pos: int | None = None  # index into lines while browsing
    _draft: str = ""

    def add(self, line: str) -> None:
        if line and (not self.lines or self.lines[-1] != line):
            self.lines.append(line)
            del self.lines[: max(0, len(self.lines) - self.limit)]
        self._pos = None

    def older(self, current: str) -> str | None:
        if not self.lines:
            return None
        if self._pos is None:
            self._draft = current
            self._pos = len(self.lines)
        if self._pos == 0:
            return None
        self._pos -= 1
        return self.lines[self._pos]

    def newer(self) -> str | None:
        if self._pos is None:
            return None
        self._pos += 1
        if self._pos >= len(self.lines):
            self._pos = None
            return self._draft
        return self.lines[self._pos]


class ChatInput(Input):
    BINDINGS = [
        Binding("tab", "complete(False)", "Complete", show=False, priority=True),
        Binding("shift+tab", "complete(True)", "Complete back", show=False, priority=True),
        Binding("up", "recall(True)", "Older line", show=False),
        Binding("down", "recall(False)", "Newer line", show=False),
    ]

    def __init__(self, candidates: Callable[[], Candidates], *, id: str | None = None,
                 placeholder: str = "") -> None:
        super().__init__(id=id, placeholder=placeholder, max_length=MAX_TEXT_CHARS)
        self._candidates = candidates
        self.completer = NickCompleter()
        self.history = InputHistory()

    def on_mount(self) -> None:
        if self.app.is_headless:
            self.cursor_blink = False  # deterministic screenshots

    def action_complete(self, backwards: bool) -> None:
        c = self._candidates()
        result = self.completer.complete(self.value, self.cursor_position, names=c.names,
                                         commands=command_names(), rooms=c.rooms,
                                         backwards=backwards)
        if result is not None:
            self.value = result.value
            self.cursor_position = result.cursor
        else:
            self.app.bell()

    def action_recall(self, older: bool) -> None:
        line = self.history.older(self.value) if older else self.history.newer()
        if line is not None:
            self.value = line
            self.cursor_position = len(line)

    def remember(self, line: str) -> None:
        self.history.add(line)
        self.completer.reset()
