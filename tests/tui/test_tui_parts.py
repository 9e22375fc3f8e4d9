"""Pure parts of tuitalk-cli: completion, names, rendering, state, status and the model."""

from __future__ import annotations

import json
import os
import stat
import unicodedata
from datetime import UTC
from pathlib import Path

import pytest
from tuitalk_cli import names, render
from tuitalk_cli.completion import NickCompleter, fuzzy_filter, fuzzy_score
from tuitalk_cli.config import DEFAULT_URL, default_state_dir, parse_args
from tuitalk_cli.model import SYSTEM, ChatModel
from tuitalk_cli.prompt import InputHistory
from tuitalk_cli.state import StateStore
from tuitalk_cli.status import ConnIndicator

from tuitalk import protocol as p
from tuitalk.client import events as ev
from tuitalk.client.session import ClientSession

HOSTILE = ("\x1b]2;PWNED\x07 \x1b[2J \x1b]52;c;cHduZWQ=\x07 \u202eevil\u202c \x9b31m "
           "z\u200dw\u200bj [@click=app.quit]x[/]")


def msg(seq: int, text: str = "hi", user: str = "u1", name: str = "alice",
        kind: p.Kind = "text", room: str = "lobby") -> p.Msg:
    return p.Msg(room=room, epoch="e1", seq=seq, id=f"id{seq:06d}", user=user, name=name,
                 kind=kind, text=text, ts=1_735_732_800_000 + seq * 1000)


# -- completion ----------------------------------------------------------------------------------


def test_tab_completes_a_name_at_line_start_and_cycles() -> None:
    c = NickCompleter()
    names_ = ["alice", "alfred", "bob"]
    r1 = c.complete("al", 2, names=names_)
    assert r1 is not None and (r1.value, r1.cursor) == ("alice: ", 7)
    r2 = c.complete(r1.value, r1.cursor, names=names_)
    assert r2 is not None and r2.value == "alfred: "
    r3 = c.complete(r2.value, r2.cursor, names=names_)
    assert r3 is not None and r3.value == "alice: "
    back = c.complete(r3.value, r3.cursor, names=names_, backwards=True)
    assert back is not None and back.value == "alfred: "


def test_tab_mid_line_keeps_the_rest_and_uses_a_space() -> None:
    c = NickCompleter()
    r = c.complete("hi B and more", 4, names=["alice", "Bob"])
    assert r is not None and (r.value, r.cursor) == ("hi Bob  and more", 7)


def test_tab_completes_commands_and_rooms_and_fails_cleanly() -> None:
    c = NickCompleter()
    r = c.complete("/jo", 3, names=[], commands=["join", "who"])
    assert r is not None and r.value == "/join "
    c.reset()
    r = c.complete("/join de", 8, names=["dennis"], rooms=["dev", "lobby"])
    assert r is not None and r.value == "/join dev "
    assert c.complete("zz", 2, names=["alice"]) is None
    assert c.complete("", 0, names=["alice"]) is None


def test_fuzzy_matching_prefers_prefixes_and_runs() -> None:
    assert fuzzy_score("xyz", "lobby") is None
    assert fuzzy_filter("dv", ["lobby", "dev", "random-devices"])[0] == "dev"
    assert fuzzy_filter("", ["b", "a"]) == ["b", "a"]
    assert fuzzy_filter("lob", ["global-bits", "lobby"])[0] == "lobby"


def test_input_history_recalls_like_a_shell() -> None:
    h = InputHistory()
    for line in ["one", "two", "two", "three"]:
        h.add(line)
    assert h.lines == ["one", "two", "three"]
    assert h.older("draft") == "three"
    assert h.older("three") == "two"
    assert h.older("two") == "one"
    assert h.older("one") is None
    assert h.newer() == "two"
    assert h.newer() == "three"
    assert h.newer() == "draft"
    assert h.newer() is None


# -- names -----------------------------------------------------------------------------------------


def test_look_alike_names_get_an_id_suffix() -> None:
    members = {"aaaa1111": "alice", "bbbb2222": "\u0430lice", "cccc3333": "bob",
               "dddd4444": "ALICE"}
    labels = names.labels(members)
    assert labels["aaaa1111"] == "alice#aaaa"
    assert labels["bbbb2222"] == "\u0430lice#bbbb"
    assert labels["dddd4444"] == "ALICE#dddd"
    assert labels["cccc3333"] == "bob"
    assert names.labels({"cccc3333": "bob"}, always_id=True)["cccc3333"] == "bob#cccc"


@pytest.mark.parametrize(("a", "b"), [("paypal", "p\u0430yp\u0430l"), ("bill", "b1ll"),
                                      ("modern", "rnodern"), ("Zoe", "zo\u00e9"),
                                      ("ab", "\uff41\uff42")])
def test_skeleton_collides_confusables(a: str, b: str) -> None:
    assert names.skeleton(a) == names.skeleton(b)


def test_names_from_the_network_are_cleaned_and_capped() -> None:
    assert names.clean_name("\x1b]2;x\x07bob") == "\u241b]2;x\u2407bob"
    assert len(names.clean_name("n" * 100)) == names.MAX_NAME_CELLS
    assert names.clean_name("\u202e\u200b") == "?"
    assert names.name_color("u1") == names.name_color("u1")


def test_mentions_are_whole_words_any_case() -> None:
    assert names.mentions("hey Bob, bobby and bob-cat and BOB!", "bob") == [(4, 7), (31, 34)]
    assert names.mentions("anything", "") == []


def test_candidates_put_recent_speakers_first() -> None:
    members = {"u1": "alice", "u2": "bob", "u3": "carol", "me": "me"}
    assert names.ordered_candidates(members, ["u3", "u1", "gone"], exclude="me") == [
        "carol", "alice", "bob"]


# -- render ----------------------------------------------------------------------------------------


def test_hostile_text_renders_inert() -> None:
    item = render.message_item(msg(1, HOSTILE, name="[@click=app.quit]bob[/]\x1b[31m"),
                               ("x", ""), mine=False, my_name="me", tz=UTC)
    plain = item.prefix.plain + item.body.plain
    assert "\x1b" not in plain and "\x07" not in plain and "\x9b" not in plain
    assert "\u202e" not in plain and "\u200b" not in plain and "\u200d" not in plain
    assert "[@click=app.quit]x[/]" in plain  # shown as text, not interpreted
    assert not any(span.style and "@click" in str(span.style) for span in item.body.spans)


def test_zalgo_and_line_floods_are_capped() -> None:
    zalgo = "a" + "\u0301" * 50 + "b"
    out = render.clean_text(zalgo)
    assert sum(unicodedata.combining(ch) > 0 for ch in out) <= render.MAX_COMBINING
    assert out.endswith("b") and len(out) <= 2 + render.MAX_COMBINING
    many = "\n".join(str(i) for i in range(100))
    out = render.clean_text(many)
    assert out.count("\n") == render.MAX_MESSAGE_LINES
    assert out.endswith("[60 more lines not shown]")


def test_message_items_by_kind() -> None:
    m = render.message_item(msg(1, "hello ME there"), ("alice", ""), mine=False,
                            my_name="me", tz=UTC)
    assert m.prefix.plain == "12:00 alice: " and m.mention and m.key == ("e1", 1, "id000001")
    me = render.message_item(msg(2, "waves", kind="me"), ("alice", "#u1"), mine=False,
                             my_name="x", tz=UTC)
    assert me.prefix.plain == "12:00 * alice#u1 " and not me.mention
    join = render.message_item(msg(3, kind="join"), ("alice", ""), mine=False, my_name="",
                               tz=UTC)
    assert join.kind == "event" and join.body.plain == "alice joined"
    nick = render.message_item(msg(4, "old", kind="nick"), ("new", ""), mine=False,
                               my_name="", tz=UTC)
    assert nick.body.plain == "old is now known as new"
    own = render.message_item(msg(5, "me me"), ("me", ""), mine=True, my_name="me", tz=UTC)
    assert not own.mention
    assert render.format_time(2**53, UTC) == "--:--"


def test_pending_and_failed_items() -> None:
    pend = render.pending_item("x1", "text", "text", ("me", ""), "u")
    assert pend.kind == "pending" and pend.prefix.plain.startswith("  …")
    failed = render.pending_item("x1", "text", "text", ("me", ""), "u", failed="too big")
    assert failed.kind == "failed" and "(not sent: too big)" in failed.body.plain


# -- state -----------------------------------------------------------------------------------------


def test_state_round_trip_is_atomic_private_and_per_server(tmp_path: Path) -> None:
    store = StateStore(tmp_path / "st")
    assert store.load(DEFAULT_URL) is None
    s = ClientSession(token="tok", name="ada", rooms={"lobby": p.Cursor("e1", 7)})
    s.say("lobby", "unsent", 0.0)
    store.save(DEFAULT_URL, {"session": s.snapshot(), "ui": {"room": "lobby"}})
    store.save("ws://other/ws", {"session": {"token": "t2"}})
    mode = stat.S_IMODE(os.stat(store.path).st_mode)
    assert mode == 0o600
    assert stat.S_IMODE(os.stat(store.directory).st_mode) == 0o700
    assert [f.name for f in store.directory.iterdir()] == ["state.json"]  # no temp left
    loaded = store.load(DEFAULT_URL)
    assert loaded is not None
    back = ClientSession.restore(loaded["session"])
    assert back.token == "tok" and back.name == "ada"
    assert back.rooms["lobby"].cursor == p.Cursor("e1", 7)
    assert [e.text for e in back.outbox.values()] == ["unsent"]
    assert store.load("ws://other/ws") == {"session": {"token": "t2"}}


def test_corrupt_state_is_set_aside(tmp_path: Path) -> None:
    store = StateStore(tmp_path)
    store.path.write_text("{not json")
    assert store.load(DEFAULT_URL) is None
    assert (tmp_path / "state.json.bad").exists()
    store.save(DEFAULT_URL, {"ui": {}})
    assert json.loads(store.path.read_text())["servers"][DEFAULT_URL] == {"ui": {}}


# -- config ----------------------------------------------------------------------------------------


def test_config_defaults_and_flags(tmp_path: Path) -> None:
    env = {"HOME": str(tmp_path)}
    assert default_state_dir(env) == tmp_path / ".local/state/tuitalk"
    assert default_state_dir({"XDG_STATE_HOME": "/x"}) == Path("/x/tuitalk")
    cfg = parse_args([], env)
    assert cfg.url == DEFAULT_URL and cfg.room == "lobby" and cfg.name is None
    cfg = parse_args(["--url", "ws://h:1/ws", "--room", "#Dev", "--name", "Ada",
                      "--state-dir", str(tmp_path)], {"TUITALK_URL": "ws://e/ws"})
    assert (cfg.url, cfg.room, cfg.name, cfg.state_dir) == ("ws://h:1/ws", "dev", "Ada",
                                                            tmp_path)
    assert parse_args([], {"TUITALK_URL": "ws://e/ws", "TUITALK_STATE_DIR": "/s"}).url == \
        "ws://e/ws"
    with pytest.raises(SystemExit):
        parse_args(["--url", "http://x"], env)
    with pytest.raises(SystemExit):
        parse_args(["--room", "bad room"], env)


# -- status ----------------------------------------------------------------------------------------


def test_a_failover_under_a_second_shows_no_alarm() -> None:
    c = ConnIndicator()
    c.update(ev.StateChanged("connecting"), 0.0)
    assert c.view(0.0).label == "connecting…"
    c.update(ev.StateChanged("connected"), 0.1)
    c.update(ev.StateChanged("reconnecting", since_s=0.0), 5.0)
    assert c.view(5.5).label == "connected"
    c.update(ev.StateChanged("connected", since_s=0.6), 5.6)
    c.set_catching_up(True, 5.6)
    assert c.view(5.7) .label == "connected"  # quiet even while the gap fills
    c.set_catching_up(False, 5.8)
    assert c.view(5.8).label == "connected"


def test_a_long_outage_shows_reconnecting_then_catching_up() -> None:
    c = ConnIndicator()
    c.update(ev.StateChanged("connected"), 0.0)
    c.update(ev.StateChanged("reconnecting"), 1.0)
    c.tick(2.5)
    v = c.view(2.5)
    assert v.label == "reconnecting… 1s" and v.severity == "warn"
    assert c.view(20.0).severity == "error"
    c.update(ev.StateChanged("connected", since_s=2.0), 3.0)
    c.set_catching_up(True, 3.0)
    assert c.view(3.0).label == "catching up…"
    c.set_catching_up(False, 3.2)
    assert c.view(3.2).label == "connected"


def test_never_connected_turns_into_an_error() -> None:
    c = ConnIndicator()
    c.update(ev.StateChanged("connecting"), 0.0)
    c.update(ev.StateChanged("reconnecting", "refused"), 0.1)
    assert c.view(5.0).label == "connecting…"
    assert c.view(11.0).severity == "error"


# -- model -----------------------------------------------------------------------------------------


def _joined(room: str, *members: tuple[str, str]) -> ev.RoomJoined:
    return ev.RoomJoined(room, tuple(p.Member(u, n) for u, n in members), resumed=False)


def test_model_counts_unread_and_mentions_only_off_screen() -> None:
    m = ChatModel(tz=UTC)
    m.apply([ev.Welcomed("me", "ada", "b1"), _joined("lobby", ("u1", "bob")),
             _joined("dev", ("u1", "bob"))], 0)
    assert m.current == "lobby"
    ch = m.apply([ev.MessageShown(msg(1, "hi", room="dev"), True, False),
                  ev.MessageShown(msg(2, "hey ada!", room="dev"), True, False),
                  ev.MessageShown(msg(3, "in lobby", room="lobby"), True, False),
                  ev.MessageShown(msg(4, "mine", user="me", room="dev"), True, True)], 0)
    dev = m.rooms["dev"]
    assert dev.items[0].kind == "day"  # 2025 is not today: the day is shown
    assert (dev.unread, dev.mentions, dev.marker) == (2, 1, 0)
    assert m.rooms["lobby"].unread == 0
    assert ch.notify and "ada" in ch.notify[0]
    assert m.next_room(unread=True) == "dev" and m.next_room(mention=True) == "dev"
    assert m.switch("dev")
    assert (dev.unread, dev.mentions) == (0, 0) and dev.first_mention() == 2
    assert m.switch("lobby") and dev.marker is None and dev.read_upto == 4


def test_model_pending_is_replaced_by_the_real_message() -> None:
    m = ChatModel(tz=UTC)
    m.apply([ev.Welcomed("me", "ada", "b1"), _joined("lobby")], 0)
    m.apply([ev.Pending("x1", "lobby", "hello", "text"),
             ev.Pending("x2", "lobby", "world", "text")], 0)
    room = m.rooms["lobby"]
    assert list(room.pending) == ["x1", "x2"] and not room.items
    real = p.Msg(room="lobby", epoch="e1", seq=1, id="x1", user="me", name="ada", kind="text",
                 text="hello", ts=0)
    m.apply([ev.MessageShown(real, True, True), ev.Acked("x1", "lobby", "e1", 1)], 0)
    assert list(room.pending) == ["x2"] and room.shown_keys() == [("e1", 1, "x1")]
    m.apply([ev.SendFailed("x2", "lobby", "bad_text", "too long")], 0)
    assert not room.pending and room.items[-1].kind == "failed"


def test_model_history_prepends_and_marks_the_beginning() -> None:
    m = ChatModel(tz=UTC)
    ch = m.apply([_joined("lobby")], 0)
    assert ch.want_history == ["lobby"]
    m.apply([ev.MessageShown(msg(5), True, False)], 0)
    ch = m.apply([ev.HistoryLoaded("lobby", (msg(3), msg(4)), True)], 0)
    assert ch.prepended == {"lobby": 3}  # two messages and the day rule moved above them
    assert [k[1] for k in m.rooms["lobby"].shown_keys()] == [3, 4, 5]
    m.apply([ev.HistoryLoaded("lobby", (msg(1), msg(2)), False)], 0)
    assert [it.kind for it in m.rooms["lobby"].items] == ["notice", "day"] + ["msg"] * 5
    assert m.rooms["lobby"].items[0].body.plain == "this is the beginning of #lobby"


def test_model_trims_old_items_and_reports_the_first_seq() -> None:
    m = ChatModel(tz=UTC, max_items=100)
    m.apply([_joined("lobby")], 0)
    ch = m.apply([ev.MessageShown(msg(i), True, False) for i in range(1, 102)], 0)
    room = m.rooms["lobby"]
    assert len(room.items) <= 91 and ch.trimmed == {"lobby": room.first_seq()}
    assert room.shown_keys()[-1][1] == 101 and room.more_history


def test_model_leave_reset_errors_and_system_buffer() -> None:
    m = ChatModel(tz=UTC)
    m.apply([_joined("lobby"), _joined("dev")], 0)
    m.switch("dev")
    m.apply([ev.RoomLeft("dev")], 0)
    assert m.current == "lobby" and "dev" not in m.rooms
    assert m.rooms["lobby"].items[-1].body.plain == "you left #dev"
    m.apply([ev.MessageShown(msg(1), True, False), ev.RoomReset("lobby", "failover")], 0)
    room = m.rooms["lobby"]
    assert not room.history_requested and room.shown_keys() == []
    m.apply([ev.ServerError("bad_room", "\x1b[2Jnope", "lobby")], 0)
    assert "\x1b" not in room.items[-1].body.plain
    m.apply([ev.RoomLeft("lobby")], 0)
    assert m.current is None and m.view().name == SYSTEM


def test_day_rules_between_days_and_joined_up_with_history() -> None:
    day = 86_400_000
    base = 1_735_732_800_000  # 2025-01-01 12:00 UTC

    def at(seq: int, ts: int) -> p.Msg:
        return p.Msg(room="lobby", epoch="e1", seq=seq, id=f"d{seq:06d}", user="u1",
                     name="alice", kind="text", text=f"m{seq}", ts=ts)

    m = ChatModel(tz=UTC)
    m.apply([_joined("lobby")], 0)
    m.apply([ev.MessageShown(at(5, base + 2 * day), True, False),
             ev.MessageShown(at(6, base + 2 * day + 1000), True, False),
             ev.MessageShown(at(7, base + 3 * day), True, False)], 0)

    def kinds() -> list[str]:
        return [it.body.plain if it.kind == "day" else str(it.key[1] if it.key else "?")
                for it in m.rooms["lobby"].items]

    assert kinds() == ["Friday 3 January 2025", "5", "6", "Saturday 4 January 2025", "7"]
    # a page ending on the same day: the rule above 5 moves to the top of the page
    m.apply([ev.HistoryLoaded("lobby", (at(3, base + day), at(4, base + 2 * day - 5)), True)],
            0)
    assert kinds() == ["Thursday 2 January 2025", "3", "Friday 3 January 2025", "4", "5",
                       "6", "Saturday 4 January 2025", "7"]
