"""The input line's language, shared by the terminal and browser clients: ``/commands``
parsed by pure functions (stdlib only; runs in Pyodide).

:func:`parse` turns one submitted line into a :data:`Command`. It does no I/O and never
raises: a line it cannot accept becomes :class:`Invalid` with a message for the user.

Rules:

1. A line that does not start with ``/`` is said as is. ``//text`` says ``/text`` and
   ``/ text`` says ``text`` (so a message can start with a slash).
2. A command name may be abbreviated to any unique prefix (``/j`` is ``/join``) and has a
   few aliases (``/part`` for ``/leave``, ``/exit`` for ``/quit``).
3. Arguments are validated here with the protocol's own rules (room names, display names),
   so the user learns at once what the server would refuse.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Final, TypeAlias

from tuitalk import protocol as p
from tuitalk.errors import ProtocolError

__all__ = [
    "COMMANDS",
    "Command",
    "CommandHelp",
    "Help",
    "History",
    "Invalid",
    "Join",
    "Leave",
    "Me",
    "Nick",
    "Quit",
    "Say",
    "Who",
    "command_names",
    "help_lines",
    "normalize_room",
    "parse",
]

#: Most history pages one ``/history N`` asks for (each page is a server round trip).
MAX_HISTORY_PAGES: Final = 50


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
    """Leave ``room``, or the current room when None."""

    room: str | None = None


@dataclass(frozen=True, slots=True)
class Nick:
    name: str


@dataclass(frozen=True, slots=True)
class Who:
    pass


@dataclass(frozen=True, slots=True)
class History:
    """Load ``pages`` older pages of the current room."""

    pages: int = 1


@dataclass(frozen=True, slots=True)
class Help:
    topic: str = ""


@dataclass(frozen=True, slots=True)
class Quit:
    pass


@dataclass(frozen=True, slots=True)
class Invalid:
    """The line is not a valid command; ``message`` tells the user why."""

    message: str


Command: TypeAlias = Say | Me | Join | Leave | Nick | Who | History | Help | Quit | Invalid


@dataclass(frozen=True, slots=True)
class CommandHelp:
    name: str
    usage: str
    summary: str
    aliases: tuple[str, ...] = ()


COMMANDS: Final[tuple[CommandHelp, ...]] = (
    CommandHelp("join", "/join ROOM", "join a room (or switch to it)", ("j",)),
    CommandHelp("leave", "/leave [ROOM]", "leave the current room or ROOM", ("part",)),
    CommandHelp("nick", "/nick NAME", "change your display name"),
    CommandHelp("me", "/me ACTION", "say an action: * you waves"),
    CommandHelp("who", "/who", "list the room's members with their ids", ("names",)),
    CommandHelp("history", "/history [PAGES]", "load older messages (or scroll up)"),
    CommandHelp("help", "/help [TOPIC]", "show commands and keys matching TOPIC", ("?",)),
    CommandHelp("quit", "/quit", "save and quit", ("exit", "q")),
)

_ALIASES: Final[dict[str, str]] = {a: c.name for c in COMMANDS for a in c.aliases}


def command_names() -> list[str]:
    """Every command name, for completion."""
    return [c.name for c in COMMANDS]


def normalize_room(raw: str) -> str:
    """``#Lobby`` -> ``lobby``. Raises LocalProtocolError if not a valid room name."""
    room = raw.strip().removeprefix("#").lower()
    return p.validate_room(room, remote=False)


def _resolve(word: str) -> str | Invalid:
    word = word.casefold()
    if word in _ALIASES:
        return _ALIASES[word]
    names = command_names()
    if word in names:
        return word
    matches = [n for n in names if n.startswith(word)]
    if len(matches) == 1:
        return matches[0]
    if not matches:
        return Invalid(f"unknown command /{word}; /help lists the commands")
    return Invalid(f"/{word} is ambiguous: " + ", ".join("/" + m for m in matches))


def parse(line: str) -> Command | None:
    """Parse one submitted line. Returns None for a blank line (nothing to do)."""
    line = line.rstrip("\r\n")
    if not line.strip():
        return None
    if not line.startswith("/"):
        return Say(line)
    if line.startswith("//"):
        return Say(line[1:])
    if line[1:2].isspace():
        text = line[2:]
        return Say(text) if text.strip() else None
    word, _, rest = line[1:].partition(" ")
    rest = rest.strip()
    name = _resolve(word)
    if isinstance(name, Invalid):
        return name
    return _BUILDERS[name](rest)


def _join(rest: str) -> Command:
    if not rest or len(rest.split()) != 1:
        return Invalid("usage: /join ROOM")
    try:
        return Join(normalize_room(rest))
    except ProtocolError:
        return Invalid(f"invalid room name {rest[:40]!r}: use a-z, 0-9, _ and -, at most 32")


def _leave(rest: str) -> Command:
    if not rest:
        return Leave()
    if len(rest.split()) != 1:
        return Invalid("usage: /leave [ROOM]")
    try:
        return Leave(normalize_room(rest))
    except ProtocolError:
        return Invalid(f"invalid room name {rest[:40]!r}")


def _nick(rest: str) -> Command:
    if not rest:
        return Invalid("usage: /nick NAME")
    try:
        return Nick(p.normalize_name(rest, remote=False))
    except ProtocolError as exc:
        return Invalid(f"invalid name: {exc.detail}")


def _me(rest: str) -> Command:
    return Me(rest) if rest else Invalid("usage: /me ACTION")


def _history(rest: str) -> Command:
    if not rest:
        return History()
    if not rest.isdigit() or not 1 <= int(rest) <= MAX_HISTORY_PAGES:
        return Invalid(f"usage: /history [PAGES], PAGES from 1 to {MAX_HISTORY_PAGES}")
    return History(int(rest))


def _no_args(cmd: Command, usage: str) -> Callable[[str], Command]:
    def build(rest: str) -> Command:
        return Invalid(f"usage: {usage}") if rest else cmd

    return build


_BUILDERS: Final[dict[str, Callable[[str], Command]]] = {
    "join": _join,
    "leave": _leave,
    "nick": _nick,
    "me": _me,
    "who": _no_args(Who(), "/who"),
    "history": _history,
    "help": lambda rest: Help(rest.casefold()),
    "quit": _no_args(Quit(), "/quit"),
}


def help_lines(
    topic: str = "", keys: tuple[tuple[str, str], ...] = ()
) -> list[tuple[str, str]]:
    """(left, right) rows of help: commands, then the client's ``keys``, filtered by topic."""
    topic = topic.strip().casefold().removeprefix("/")
    rows = [(c.usage, c.summary + (f" (also /{', /'.join(c.aliases)})" if c.aliases else ""))
            for c in COMMANDS]
    rows += list(keys)
    if topic:
        rows = [r for r in rows if topic in r[0].casefold() or topic in r[1].casefold()]
    return rows
