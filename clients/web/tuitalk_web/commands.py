"""What the user typed, as an intent: pure Python, testable outside the browser.

The command set is the terminal client's: ``/join``, ``/leave``, ``/nick``, ``/me``,
``/help``. A line starting with ``//`` sends the rest literally (``//join`` says "/join").
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final, TypeAlias

__all__ = ["HELP", "Command", "Help", "Join", "Leave", "Me", "Nick", "Problem", "Say", "parse"]


@dataclass(frozen=True, slots=True)
class Say:
    text: str


@dataclass(frozen=True, slots=True)
class Me:
    text: str


@dataclass(frozen=True, slots=True)
class Join:
    room: str


@dataclass(frozen=True, slots=True)
class Leave:
    room: str | None  # None: the current room


@dataclass(frozen=True, slots=True)
class Nick:
    name: str


@dataclass(frozen=True, slots=True)
class Help:
    pass


@dataclass(frozen=True, slots=True)
class Problem:
    """The line is a command that cannot run as typed; ``detail`` says why."""

    detail: str


Command: TypeAlias = Say | Me | Join | Leave | Nick | Help | Problem

HELP: Final = (
    "Commands: /join <room>, /leave [room], /nick <name>, /me <action>, /help; "
    "//text sends a line starting with '/'. "
    "Keys: Enter sends, Shift+Enter adds a line, Alt+Up/Alt+Down or Alt+1..9 switch rooms, "
    "PageUp/PageDown scroll (PageUp at the top loads older messages), Escape returns here."
)


def parse(line: str) -> Command | None:
    """The intent of an input line; None for a blank line (nothing to do)."""
    if not line.strip():
        return None
    if line.startswith("//"):
        return Say(line[1:])
    if not line.startswith("/"):
        return Say(line)
    word, _, rest = line[1:].partition(" ")
    arg = rest.strip()
    word = word.strip().lower()
    if word in ("join", "j"):
        if not arg or " " in arg:
            return Problem("usage: /join <room>")
        return Join(arg.removeprefix("#").lower())
    if word in ("leave", "part"):
        if " " in arg:
            return Problem("usage: /leave [room]")
        return Leave(arg.removeprefix("#").lower() or None)
    if word in ("nick", "name"):
        return Nick(arg) if arg else Problem("usage: /nick <name>")
    if word == "me":
        return Me(arg) if arg else Problem("usage: /me <action>")
    if word in ("help", "?"):
        return Help()
    return Problem(f"unknown command /{word[:20]} (try /help)")
