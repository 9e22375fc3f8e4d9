"""Display names: look-alike detection, short id suffixes, colours and mentions.

TuiTalk has no accounts, so a name proves nothing: anyone can call themselves ``alice``,
or the same with a Cyrillic U+0430 for the ``a``. The server forbids invisible and bidi
characters in names; this module makes the rest visible:

- :func:`skeleton` folds a name to a key in which look-alikes collide (NFKC, casefold and a
  small confusables table in the spirit of UTS #39: Cyrillic/Greek letters that look Latin,
  ``0``/``o``, ``1``/``l``/``I``, ``rn``/``m``...). It is deliberately coarse: a false
  collision only costs a four-character suffix.
- :func:`labels` gives every member of a room its label: the name alone when no other
  member's skeleton matches, otherwise ``name#abcd`` with a short piece of the user id.
- The colour of a name comes from the *user id*, not the name, so an impostor has a
  different colour too.

Everything returned here has gone through :func:`tuitalk.sanitize.sanitize_line`.
"""

from __future__ import annotations

import re
import unicodedata
import zlib
from collections.abc import Iterable, Mapping
from functools import lru_cache
from typing import Final

from tuitalk.sanitize import sanitize_line

__all__ = [
    "NameIndex",
    "clean_name",
    "label",
    "labels",
    "mention_regex",
    "mentions",
    "name_color",
    "needs_suffix",
    "ordered_candidates",
    "short_id",
    "skeleton",
]

#: Longest name we display; the protocol caps names at 32 characters, a hostile server
#: might not.
MAX_NAME_CELLS: Final = 32
SHORT_ID_CHARS: Final = 4

# Characters that render like a Latin letter (Cyrillic, Greek, digits, symbols), written
# as escapes so this file itself holds no look-alikes. Each string maps to the letter.
_CONFUSABLE_GROUPS: Final[dict[str, str]] = {
    "-": "_.\u2013\u2014",
    "a": "\u0430\u03b1@",
    "b": "\u0432\u03b28\u00df",
    "c": "\u0441\u03f2",
    "d": "\u0501",
    "e": "\u0435\u0451\u03b53",
    "g": "\u02619",
    "h": "\u043d\u04bb",
    "j": "\u0458",
    "k": "\u043a\u03ba",
    "l": "\u0456\u0457\u04cf\u03b9\u0131i\u0142|!1",
    "m": "\u043c",
    "n": "\u03b7",
    "o": "\u043e\u03bf0",
    "p": "\u0440\u03c1",
    "q": "\u051b",
    "s": "\u04555$",
    "t": "\u0442\u03c47",
    "u": "\u03c5",
    "v": "\u03bd",
    "w": "\u051d\u03c9",
    "x": "\u0445\u03c7",
    "y": "\u0443",
}
_CONFUSABLES: Final[dict[int, str]] = {
    ord(ch): target for target, chars in _CONFUSABLE_GROUPS.items() for ch in chars
}
_MULTI: Final = (("rn", "m"), ("vv", "w"), ("cl", "d"))

# Colours readable on both dark and light backgrounds.
_PALETTE: Final = (
    "#e06c75", "#d19a66", "#98c379", "#56b6c2", "#61afef", "#c678dd",
    "#e5a50a", "#2ec27e", "#3584e4", "#c061cb", "#f66151", "#26a269",
)


@lru_cache(maxsize=4096)
def clean_name(name: str) -> str:
    """The display form of a name from the network: sanitised, one line, length-capped."""
    out = sanitize_line(name).strip() or "?"
    if len(out) > MAX_NAME_CELLS:
        out = out[: MAX_NAME_CELLS - 1] + "…"
    return out


def short_id(user: str) -> str:
    """A short, stable, printable piece of a user id (ids are hex; sanitised anyway)."""
    return sanitize_line(user)[:SHORT_ID_CHARS] or "????"


@lru_cache(maxsize=4096)
def skeleton(name: str) -> str:
    """The look-alike key of ``name``: equal skeletons are easy to confuse on screen."""
    s = unicodedata.normalize("NFKD", name).casefold()
    # Drop combining marks: "alicé" looks like "alice" at a glance.
    s = "".join(ch for ch in s if not unicodedata.combining(ch))
    s = s.translate(_CONFUSABLES)
    for a, b in _MULTI:
        s = s.replace(a, b)
    return "".join(s.split())


def label(user: str, name: str, members: Mapping[str, str]) -> tuple[str, str]:
    """``(clean name, "#abcd" or "")`` for ``user`` as shown among ``members``."""
    return NameIndex(members).label(user, name)


class NameIndex:
    """Members by skeleton, so labelling a message is O(1) in a room of any size."""

    def __init__(self, members: Mapping[str, str]) -> None:
        self.members = dict(members)
        self._owners: dict[str, set[str]] = {}
        for user, name in self.members.items():
            self._owners.setdefault(skeleton(name), set()).add(user)

    def label(self, user: str, name: str, *, always_id: bool = False) -> tuple[str, str]:
        """``(clean name, "#abcd" or "")``: the suffix when another member looks alike."""
        owners = self._owners.get(skeleton(name), set())
        clash = always_id or any(u != user for u in owners)
        return clean_name(name), (f"#{short_id(user)}" if clash else "")


def labels(members: Mapping[str, str], *, always_id: bool = False) -> dict[str, str]:
    """``{user: "name"}`` for every member; look-alike names get a ``#abcd`` id suffix."""
    index = NameIndex(members)
    return {u: "".join(index.label(u, n, always_id=always_id)) for u, n in members.items()}


def needs_suffix(user: str, name: str, members: Mapping[str, str]) -> bool:
    """True when another member of the room has a name that looks like ``name``."""
    k = skeleton(name)
    return any(u != user and skeleton(n) == k for u, n in members.items())


def name_color(user: str) -> str:
    """A colour derived from the user id (stable, and different for an impostor)."""
    return _PALETTE[zlib.crc32(user.encode("utf-8", "replace")) % len(_PALETTE)]


@lru_cache(maxsize=64)
def mention_regex(name: str) -> re.Pattern[str] | None:
    """A pattern matching ``name`` as a whole word, case-insensitively (None if empty)."""
    name = name.strip()
    if not name:
        return None
    return re.compile(r"(?<![\w-])" + re.escape(name) + r"(?![\w-])", re.IGNORECASE)


def mentions(text: str, name: str) -> list[tuple[int, int]]:
    """Spans of ``text`` where ``name`` is mentioned (as a word, any case)."""
    rx = mention_regex(name)
    if rx is None:
        return []
    return [m.span() for m in rx.finditer(text)]


def ordered_candidates(members: Mapping[str, str], recent: Iterable[str],
                       exclude: str = "") -> list[str]:
    """Names for Tab completion: recent speakers first (newest first), then the rest
    alphabetically; ``exclude`` (the user's own id) is left out."""
    seen: set[str] = set()
    out: list[str] = []
    for user in recent:
        if user in members and user != exclude and user not in seen:
            seen.add(user)
            out.append(clean_name(members[user]))
    rest = sorted((clean_name(n) for u, n in members.items() if u not in seen and u != exclude),
                  key=str.casefold)
    return out + rest
