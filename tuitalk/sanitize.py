"""Make text from the network safe to show, in a terminal or a browser.

Everything a client renders that came over the wire (message text, names, room topics)
goes through :func:`sanitize` first. It is stdlib only and runs in Pyodide.

What it neutralises, and how:

- **C0 controls** (U+0000..U+001F) and DEL become their Unicode *Control Pictures*
  (``ESC`` -> ``␛``, ``BEL`` -> ``␇``), so a hostile sequence shows up as visible, inert
  text rather than vanishing. With ``multiline=True`` a newline stays a newline; a tab
  becomes a space; a carriage return is shown as ``␍`` (a bare CR could overwrite a line).
- **ESC sequences** (CSI ``ESC [ ... final``, OSC ``ESC ] ... BEL|ST``, DCS/APC/PM/SOS
  strings, two-byte escapes) lose their ESC, which is what makes a terminal interpret them;
  the rest of the sequence is left visible after the ``␛`` picture. A terminal never sees
  an escape, so a title change (OSC 0/2), screen clear (CSI 2J), hyperlink (OSC 8) or
  clipboard write (OSC 52) is just text.
- **C1 controls** (U+0080..U+009F, including the 8-bit CSI U+009B and OSC U+009D that some
  terminals honour) become ``�`` (U+FFFD).
- **Bidi controls** (embeddings, overrides, isolates, LRM/RLM/ALM) and **invisible
  characters** (zero-width space/joiners, word joiner, BOM, soft hyphen, invisible math
  operators, Hangul fillers, interlinear annotation, tag characters) are removed: they carry
  no meaning in chat and are the tools of spoofing ("Trojan Source") attacks.
- **Line and paragraph separators** (U+2028/U+2029) become a newline (or a space) and
  lone surrogates become ``�``.
"""

from __future__ import annotations

import re
import unicodedata
from typing import Final

__all__ = ["sanitize", "sanitize_line"]

_BIDI_AND_INVISIBLE: Final = frozenset(
    [
        *range(0x202A, 0x202F),  # LRE RLE PDF LRO RLO
        *range(0x2066, 0x206A),  # LRI RLI FSI PDI
        0x200E, 0x200F, 0x061C,  # LRM RLM ALM
        *range(0x200B, 0x200E),  # ZWSP ZWNJ ZWJ
        0x2060, 0x2061, 0x2062, 0x2063, 0x2064,  # word joiner, invisible operators
        0xFEFF,  # BOM / zero-width no-break space
        0x00AD,  # soft hyphen
        0x180E,  # Mongolian vowel separator
        0x115F, 0x1160, 0x3164, 0xFFA0,  # Hangul fillers (render blank, used for spoofing)
        0xFFF9, 0xFFFA, 0xFFFB,  # interlinear annotation
    ]
)
_TAG_CHARS: Final = range(0xE0000, 0xE0080)  # invisible "tag" characters (ASCII smuggling)

_CONTROL_PICTURE_BASE: Final = 0x2400  # U+2400 SYMBOL FOR NULL ... U+241F
_DEL_PICTURE: Final = "\u2421"
_REPLACEMENT: Final = "\ufffd"
_SURROGATES: Final = re.compile("[\ud800-\udfff]")


def _build_table(multiline: bool) -> dict[int, str | None]:
    table: dict[int, str | None] = {}
    for cp in range(0x20):
        table[cp] = chr(_CONTROL_PICTURE_BASE + cp)
    table[0x7F] = _DEL_PICTURE
    for cp in range(0x80, 0xA0):
        table[cp] = _REPLACEMENT
    for cp in _BIDI_AND_INVISIBLE:
        table[cp] = None
    for cp in _TAG_CHARS:
        table[cp] = None
    table[0x09] = " "
    if multiline:
        table[0x0A] = "\n"
        table[0x2028] = "\n"
        table[0x2029] = "\n"
    else:
        table[0x0A] = " "
        table[0x2028] = " "
        table[0x2029] = " "
    return table


_MULTI: Final = _build_table(multiline=True)
_SINGLE: Final = _build_table(multiline=False)


def sanitize(text: str, *, multiline: bool = True) -> str:
    """Return ``text`` with every control, escape, bidi and invisible character neutralised.

    The result contains no character below U+0020 except ``\\n`` (only with ``multiline``),
    no C1 control, no bidi control and no surrogate, so it is safe to write to a terminal
    and to insert as a DOM text node. It is NFC-normalised.
    """
    out = text.translate(_MULTI if multiline else _SINGLE)
    if _SURROGATES.search(out):
        out = _SURROGATES.sub(_REPLACEMENT, out)
    return unicodedata.normalize("NFC", out)


def sanitize_line(text: str) -> str:
    """Like :func:`sanitize` but folds line breaks to spaces: for names and one-line fields."""
    return sanitize(text, multiline=False)
