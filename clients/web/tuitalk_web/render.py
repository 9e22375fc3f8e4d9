"""What one timeline line says, as plain strings: pure Python, testable outside the browser.

Every string that came from the network goes through :mod:`tuitalk.sanitize` here and
nowhere else, so the DOM layer (:mod:`tuitalk_web.view`) only ever receives safe text, and
it inserts that text with ``textContent`` (never as markup).
"""

from __future__ import annotations

import time
import zlib
from dataclasses import dataclass
from typing import Final

from tuitalk.protocol import Msg
from tuitalk.sanitize import sanitize, sanitize_line

__all__ = ["NICK_COLOURS", "Line", "line_for", "nick_colour", "short_id", "who"]

#: Number of nick colour classes in app.css (``.c0`` .. ``.c7``); each has a contrast of at
#: least 4.5:1 on the background. Colour is never the only cue: the id suffix tells apart
#: two users with the same name.
NICK_COLOURS: Final = 8


@dataclass(frozen=True, slots=True)
class Line:
    """One rendered timeline entry. ``nick`` and ``body`` are sanitised."""

    kind: str
    clock: str  # "14:03"
    iso: str  # machine-readable time for <time datetime>
    nick: str
    uid: str  # "#1a2b": tells apart users with the same display name
    body: str
    colour: int


def short_id(user: str) -> str:
    """The short suffix shown after a name (first 4 characters of the user id)."""
    return "#" + sanitize_line(user)[:4]


def who(name: str, user: str) -> str:
    return f"{sanitize_line(name)}{short_id(user)}"


def nick_colour(user: str) -> int:
    return zlib.crc32(user.encode()) % NICK_COLOURS


def _clock(ts_ms: int) -> tuple[str, str]:
    t = time.localtime(ts_ms / 1000)
    return time.strftime("%H:%M", t), time.strftime("%Y-%m-%dT%H:%M:%S", t)


def line_for(m: Msg) -> Line:
    """The line for a room message: its kind decides the wording."""
    clock, iso = _clock(m.ts)
    nick = sanitize_line(m.name)
    if m.kind == "me":
        body = sanitize(m.text)
    elif m.kind == "join":
        body = "joined"
    elif m.kind == "leave":
        body = "left"
    elif m.kind == "nick":
        # The server puts the old name in ``text`` and the new one in ``name``.
        body = f"was {sanitize_line(m.text)}, now {nick}"
    else:
        body = sanitize(m.text)
    return Line(m.kind, clock, iso, nick, short_id(m.user), body, nick_colour(m.user))
