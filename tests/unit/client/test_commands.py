"""The input line's command parser: pure functions, no app."""

from __future__ import annotations

import pytest

from tuitalk.client import commands as c


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ("hello", c.Say("hello")),
        ("  indented text", c.Say("  indented text")),
        ("//not a command", c.Say("/not a command")),
        ("/ slash first", c.Say("slash first")),
        ("/join dev", c.Join("dev")),
        ("/join #Dev", c.Join("dev")),
        ("/j dev", c.Join("dev")),
        ("/JOIN dev", c.Join("dev")),
        ("/leave", c.Leave()),
        ("/part", c.Leave()),
        ("/part #dev", c.Leave("dev")),
        ("/le dev", c.Leave("dev")),
        ("/nick  Ada Lovelace ", c.Nick("Ada Lovelace")),
        ("/me waves", c.Me("waves")),
        ("/who", c.Who()),
        ("/names", c.Who()),
        ("/history", c.History(1)),
        ("/history 3", c.History(3)),
        ("/help", c.Help("")),
        ("/help Join", c.Help("join")),
        ("/?", c.Help("")),
        ("/quit", c.Quit()),
        ("/exit", c.Quit()),
        ("/q", c.Quit()),
        ("hello\n", c.Say("hello")),
    ],
)
def test_parse(line: str, expected: c.Command) -> None:
    assert c.parse(line) == expected


@pytest.mark.parametrize("line", ["", "   ", "\n", "/ "])
def test_blank_lines_do_nothing(line: str) -> None:
    assert c.parse(line) is None


@pytest.mark.parametrize(
    ("line", "fragment"),
    [
        ("/join", "usage: /join ROOM"),
        ("/join two words", "usage: /join ROOM"),
        ("/join Bad!Room", "invalid room name"),
        ("/join " + "x" * 40, "invalid room name"),
        ("/leave a b", "usage: /leave"),
        ("/leave B@d", "invalid room name"),
        ("/nick", "usage: /nick NAME"),
        ("/nick " + "n" * 40, "invalid name"),
        ("/nick a\u202eb", "invalid name"),
        ("/nick zero\u200bwidth", "invalid name"),
        ("/me", "usage: /me ACTION"),
        ("/who me", "usage: /who"),
        ("/history x", "usage: /history"),
        ("/history 0", "usage: /history"),
        ("/history 51", "usage: /history"),
        ("/quit now", "usage: /quit"),
        ("/frobnicate", "unknown command /frobnicate"),
        ("/h", "ambiguous"),
    ],
)
def test_invalid_lines_explain_themselves(line: str, fragment: str) -> None:
    result = c.parse(line)
    assert isinstance(result, c.Invalid)
    assert fragment in result.message


def test_ambiguous_prefix_lists_the_candidates() -> None:
    result = c.parse("/h")
    assert isinstance(result, c.Invalid)
    assert "/help" in result.message and "/history" in result.message


def test_help_lines_cover_every_command_and_filter() -> None:
    everything = c.help_lines("", (("Ctrl+K", "room switcher"),))
    for name in c.command_names():
        assert any(left.startswith("/" + name) for left, _ in everything)
    assert any(left == "Ctrl+K" for left, _ in everything)
    only_join = c.help_lines("/join")
    assert only_join and all("join" in (a + b).casefold() for a, b in only_join)
    assert c.help_lines("no-such-topic") == []


def test_normalize_room() -> None:
    assert c.normalize_room(" #Lobby ") == "lobby"
    with pytest.raises(Exception, match="room"):
        c.normalize_room("no spaces")
