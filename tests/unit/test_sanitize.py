"""The sanitiser against a corpus of hostile strings."""

from __future__ import annotations

import unicodedata

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tuitalk.sanitize import sanitize, sanitize_line

HOSTILE = {
    "osc_title": "\x1b]0;pwned\x07",
    "osc_title_st": "\x1b]2;pwned\x1b\\",
    "osc8_link": "\x1b]8;;http://evil.example/\x1b\\click\x1b]8;;\x1b\\",
    "osc52_clipboard": "\x1b]52;c;cm0gLXJmIH4=\x07",
    "csi_clear": "\x1b[2J\x1b[H",
    "csi_color": "\x1b[31mred\x1b[0m",
    "csi_cursor_up": "line\x1b[1A\x1b[2Kfake",
    "c1_csi": "\x9b2J",
    "c1_osc": "\x9d0;title\x9c",
    "dcs": "\x1bP+q544e\x1b\\",
    "bell_flood": "\x07" * 10,
    "backspace_overwrite": "safe\x08\x08\x08\x08evil",
    "carriage_return": "shown\rhidden",
    "bidi_override": "abc\u202edcba",
    "bidi_isolates": "\u2066x\u2069\u2067y\u2069\u2068z\u2069",
    "rlm_lrm": "a\u200fb\u200ec",
    "zwj": "ad\u200dmin",
    "zwsp": "ad\u200bmin",
    "bom": "\ufeffadmin",
    "tag_chars": "hi\U000e0041\U000e0042",
    "hangul_filler": "\u3164",
    "nul": "a\x00b",
    "del": "a\x7fb",
    "line_sep": "a\u2028b\u2029c",
    "lone_surrogate": "a\ud800b",
}

FORBIDDEN = {chr(c) for c in range(0x20) if c != 0x0A} | {chr(c) for c in range(0x7F, 0xA0)}
FORBIDDEN |= {"\u202a", "\u202b", "\u202c", "\u202d", "\u202e", "\u2066", "\u2067", "\u2068",
              "\u2069", "\u200b", "\u200c", "\u200d", "\u200e", "\u200f", "\ufeff", "\u2028",
              "\u2029"}


@pytest.mark.parametrize("name", sorted(HOSTILE))
def test_hostile_corpus_is_inert(name: str) -> None:
    out = sanitize(HOSTILE[name])
    assert not (set(out) & FORBIDDEN), repr(out)
    assert not any(0xD800 <= ord(ch) <= 0xDFFF for ch in out)
    assert not any(0xE0000 <= ord(ch) <= 0xE007F for ch in out)


def test_escape_becomes_visible_picture() -> None:
    assert sanitize("\x1b[2J") == "\u241b[2J"
    assert sanitize("\x07") == "\u2407"
    assert sanitize("a\x7fb") == "a\u2421b"
    assert sanitize("\x9b") == "\ufffd"


def test_newlines_kept_only_when_multiline() -> None:
    assert sanitize("a\nb") == "a\nb"
    assert sanitize_line("a\nb") == "a b"
    assert sanitize("a\u2028b") == "a\nb"
    assert sanitize("a\tb") == "a b"
    assert sanitize("a\rb") == "a\u240db"


def test_invisible_spoofing_characters_are_removed() -> None:
    assert sanitize("ad\u200dmin") == "admin"
    assert sanitize("abc\u202edcba") == "abcdcba"
    assert sanitize("\ufeffx\u00ady") == "xy"


def test_plain_text_and_emoji_unchanged() -> None:
    for s in ["hello, world!", "grüße 👋", "日本語のテキスト", "[bold]not markup[/bold]"]:
        assert sanitize(s) == unicodedata.normalize("NFC", s)


@given(st.text())
def test_never_emits_forbidden_characters(text: str) -> None:
    out = sanitize(text)
    assert not (set(out) & FORBIDDEN)
    assert sanitize(out) == out  # idempotent
