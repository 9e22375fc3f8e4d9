"""The terminal client's key bindings as /help lists them."""

from __future__ import annotations

from typing import Final

__all__ = ["KEYS"]

#: Keys, as /help lists them (the bindings live in app.py).
KEYS: Final[tuple[tuple[str, str], ...]] = (
    ("Enter", "send the line"),
    ("Tab / Shift+Tab", "complete a name or command (again: next match)"),
    ("Up / Down", "recall lines you typed"),
    ("Ctrl+K", "fuzzy room switcher (type a new name to join it)"),
    ("Alt+1..9", "go to room 1..9"),
    ("Ctrl+N / Ctrl+P", "next / previous room"),
    ("Alt+A", "next room with unread messages (mentions first)"),
    ("Alt+N", "next room with an unread mention, at the mention"),
    ("Alt+U", "jump to the read marker (first unread line)"),
    ("PgUp / PgDn", "scroll; at the top older history loads"),
    ("Esc", "back to the newest message"),
    ("F8", "show or hide the member list"),
    ("F1", "this help"),
    ("Ctrl+Q", "quit"),
)

