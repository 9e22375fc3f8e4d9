"""Tab completion (IRC style) and fuzzy matching for the room switcher. Pure functions.

Tab completion rules (irssi/WeeChat habits):

1. The word before the cursor is the prefix. On the first Tab it is replaced by the first
   candidate that starts with it (case-insensitively); each further Tab, with nothing
   typed in between, replaces it by the next candidate (Shift+Tab: the previous one).
2. A command name is completed when the word is the first one and starts with ``/``;
   after ``/join`` or ``/leave`` room names are completed; anywhere else member names.
3. A name completed at the start of the line gets ``": "`` after it, elsewhere ``" "``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

__all__ = ["Completion", "NickCompleter", "fuzzy_filter", "fuzzy_score"]


@dataclass(frozen=True, slots=True)
class Completion:
    value: str
    cursor: int


@dataclass(slots=True)
class _Cycle:
    start: int  # where the completed word starts
    candidates: list[str]
    index: int
    suffix: str
    result: Completion


class NickCompleter:
    """Stateful only between consecutive Tabs; typing anything else resets the cycle."""

    def __init__(self) -> None:
        self._cycle: _Cycle | None = None

    def reset(self) -> None:
        self._cycle = None

    def complete(
        self,
        value: str,
        cursor: int,
        *,
        names: Sequence[str],
        commands: Sequence[str] = (),
        rooms: Sequence[str] = (),
        backwards: bool = False,
    ) -> Completion | None:
        """The new input value and cursor, or None when nothing matches."""
        c = self._cycle
        if c is not None and c.result == Completion(value, cursor) and c.candidates:
            step = -1 if backwards else 1
            c.index = (c.index + step) % len(c.candidates)
            c.result = self._apply(value, c.start, cursor, c.candidates[c.index], c.suffix)
            return c.result
        self._cycle = None
        before = value[:cursor]
        start = max(before.rfind(" "), before.rfind("\t")) + 1
        word = before[start:]
        first_word = before[:start].strip() == ""
        if first_word and word.startswith("/"):
            pool = ["/" + name for name in commands]
            suffix = " "
        elif before[:start].split()[:1] in (["/join"], ["/j"], ["/leave"], ["/part"]):
            pool = list(rooms)
            suffix = " "
        else:
            pool = list(names)
            suffix = ": " if first_word else " "
        if not word:
            return None
        folded = word.casefold()
        candidates = [n for n in pool if n.casefold().startswith(folded)]
        if not candidates:
            return None
        index = len(candidates) - 1 if backwards else 0
        result = self._apply(value, start, cursor, candidates[index], suffix)
        self._cycle = _Cycle(start, candidates, index, suffix, result)
        return result

    @staticmethod
    def _apply(value: str, start: int, cursor: int, choice: str, suffix: str) -> Completion:
        # Replace from the word start up to the cursor, and a suffix a previous Tab added.
        rest = value[cursor:]
        inserted = choice + suffix
        return Completion(value[:start] + inserted + rest, start + len(inserted))


def fuzzy_score(query: str, candidate: str) -> float | None:
    """Score ``candidate`` for ``query`` (subsequence match), higher is better; None if
    the query's characters do not all appear in order."""
    q = query.casefold()
    c = candidate.casefold()
    if not q:
        return 0.0
    score = 0.0
    pos = 0
    prev = -2
    for ch in q:
        found = c.find(ch, pos)
        if found < 0:
            return None
        score += 1.0
        if found == prev + 1:
            score += 2.0  # consecutive run
        if found == 0 or c[found - 1] in "-_ ":
            score += 1.5  # start of a word
        prev = found
        pos = found + 1
    if c.startswith(q):
        score += 5.0
    return score - 0.01 * len(c)


def fuzzy_filter(query: str, candidates: Sequence[str]) -> list[str]:
    """Candidates matching ``query``, best first (ties keep their order)."""
    scored = [(s, i, cand) for i, cand in enumerate(candidates)
              if (s := fuzzy_score(query, cand)) is not None]
    scored.sort(key=lambda t: (-t[0], t[1]))
    return [cand for _, _, cand in scored]
