"""Every command and key binding of tuitalk-cli, driven by Pilot on an in-memory server."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
from textual.pilot import Pilot
from tuitalk_cli.app import TuiTalkApp
from tuitalk_cli.prompt import ChatInput
from tuitalk_cli.sidebar import MemberList, RoomList
from tuitalk_cli.status import StatusBar
from tuitalk_cli.switcher import RoomSwitcher

from tests.tui.conftest import FAKE_URL, make_app, timeline_text, visible_rows, wait_for
from tests.tui.fakes import FakeServer

pytestmark = [pytest.mark.anyio, pytest.mark.tui]


@asynccontextmanager
async def running(server: FakeServer, state: Path, size: tuple[int, int] = (100, 30),
                  **config: Any) -> AsyncIterator[tuple[TuiTalkApp, Pilot[None]]]:
    app = make_app(server, state, **config)
    async with app.run_test(size=size) as pilot:
        await wait_for(pilot, lambda: app.model.current is not None
                       and app.session.connected and not app.session.rooms[
                           app.model.current].history_pending, what="joined")
        yield app, pilot


async def type_line(pilot: Pilot[None], line: str) -> None:
    prompt = pilot.app.query_one(ChatInput)
    prompt.value = line
    prompt.cursor_position = len(line)
    await pilot.press("enter")
    await pilot.pause()


def status(app: TuiTalkApp) -> str:
    return str(app.query_one(StatusBar).render())


def rooms_text(app: TuiTalkApp) -> str:
    return str(app.query_one(RoomList).render())


async def test_first_start_joins_lobby_without_asking_anything(server: FakeServer,
                                                               tmp_path: Path) -> None:
    alice = server.add_member("lobby", "alice")
    server.post("lobby", *alice, "welcome, newcomer")
    async with running(server, tmp_path) as (app, _pilot):
        assert app.focused is app.query_one(ChatInput)
        assert app.model.current == "lobby"
        assert "connected" in status(app) and "#lobby" in status(app)
        assert "you: calm-heron" in status(app)  # the name the server suggested
        rows = visible_rows(app)
        assert any("alice: welcome, newcomer" in r for r in rows)
        assert any("calm-heron joined" in r for r in rows)
        assert "#lobby" in rooms_text(app)


async def test_say_shows_pending_dimmed_then_replaces_it_in_place(server: FakeServer,
                                                                tmp_path: Path) -> None:
    alice = server.add_member("lobby", "alice")
    async with running(server, tmp_path) as (app, pilot):
        server.hold = True
        await pilot.press(*"first!", "enter")
        await pilot.pause()
        room = app.model.view()
        assert [it.kind for it in room.pending.values()] == ["pending"]
        assert visible_rows(app)[-1].endswith("calm-heron: first!")
        assert visible_rows(app)[-1].lstrip().startswith("…")
        server.post("lobby", *alice, "meanwhile")
        await pilot.pause()
        # the pending line stays at the bottom, the other message comes above it
        assert visible_rows(app)[-2].endswith("alice: meanwhile")
        server.release()
        await wait_for(pilot, lambda: not room.pending, what="acked")
        assert visible_rows(app)[-1].endswith("calm-heron: first!")
        assert visible_rows(app)[-1].startswith("12:")
        assert room.items[-1].kind == "msg"


async def test_me_join_switch_and_leave(server: FakeServer, tmp_path: Path) -> None:
    async with running(server, tmp_path) as (app, pilot):
        await type_line(pilot, "/me waves")
        me = app.model.name
        await wait_for(pilot, lambda: any(f"* {me} waves" in r for r in visible_rows(app)))
        await type_line(pilot, "/join #Dev")
        await wait_for(pilot, lambda: app.model.current == "dev", what="dev")
        assert "#dev" in rooms_text(app) and "#lobby" in rooms_text(app)
        await type_line(pilot, "/j lobby")
        assert app.model.current == "lobby"
        await type_line(pilot, "/part dev")
        await wait_for(pilot, lambda: "dev" not in app.model.rooms, what="left dev")
        assert "#dev" not in rooms_text(app)
        await type_line(pilot, "/leave")
        await wait_for(pilot, lambda: app.model.current is None, what="left lobby")
        await type_line(pilot, "/leave")
        assert any("you are in no room" in r for r in timeline_text(app))
        await type_line(pilot, "hello?")
        assert any("/join ROOM first" in r for r in timeline_text(app))


async def test_nick_and_who(server: FakeServer, tmp_path: Path) -> None:
    server.add_member("lobby", "alice")
    server.add_member("lobby", "\u0430lice")  # Cyrillic a: a look-alike
    async with running(server, tmp_path) as (app, pilot):
        old = app.model.name
        await type_line(pilot, "/nick Ada Lovelace")
        await wait_for(pilot, lambda: "you: Ada Lovelace" in status(app), what="renamed")
        assert any(f"{old} is now known as Ada Lovelace" in r for r in visible_rows(app))
        await type_line(pilot, "/nick bad\u202ename")
        assert any("invalid name" in r for r in timeline_text(app))
        await type_line(pilot, "/who")
        text = "\n".join(timeline_text(app))
        assert "3 members in #lobby:" in text
        assert "alice#" in text and "\u0430lice#" in text and "Ada Lovelace#" in text
        assert "(you)" in text
        # look-alikes carry their id suffix in the member list too
        members = str(app.query_one(MemberList).query_one("#members-body").render())
        assert "alice#" in members and "\u0430lice#" in members


async def test_history_command_and_scrolling_up_load_older_pages(server: FakeServer,
                                                                 tmp_path: Path) -> None:
    server.preload("lobby", 700)
    async with running(server, tmp_path, history_page=200) as (app, pilot):
        room = app.model.view()
        first = room.first_seq()
        assert first is not None and len(room.shown_keys()) >= 200
        await type_line(pilot, "/history")
        await wait_for(pilot, lambda: (room.first_seq() or 0) < first, what="older page")
        second = room.first_seq()
        assert second is not None
        # the new page is on screen (the newest lines of it)
        await pilot.press("pageup")
        for _ in range(80):
            await pilot.press("pageup")
            if (room.first_seq() or 0) < second:
                break
        await wait_for(pilot, lambda: (room.first_seq() or 0) < second, what="scroll load")
        for _ in range(200):
            await pilot.press("pageup")
            if not room.more_history:
                break
        await wait_for(pilot, lambda: not room.more_history, what="all history")
        keys = room.shown_keys()
        assert [k[1] for k in keys] == list(range(1, len(keys) + 1))
        await type_line(pilot, "/history")
        assert timeline_text(app)[-1].endswith("no older messages in #lobby")
        await pilot.press("pagedown", "escape")
        assert app.timeline.is_vertical_scroll_end


async def test_help_command_and_f1(server: FakeServer, tmp_path: Path) -> None:
    async with running(server, tmp_path) as (app, pilot):
        await type_line(pilot, "/help join")
        text = "\n".join(timeline_text(app))
        assert "/join ROOM" in text and "/nick" not in text
        await pilot.press("f1")
        text = "\n".join(timeline_text(app))
        assert "/nick NAME" in text and "Ctrl+K" in text
        await type_line(pilot, "/frob")
        assert "unknown command /frob" in timeline_text(app)[-1]


async def test_tab_completes_names_and_keeps_focus(server: FakeServer, tmp_path: Path) -> None:
    alice = server.add_member("lobby", "alice")
    server.add_member("lobby", "alfred")
    server.post("lobby", *alice, "hi")  # alice spoke last: first candidate
    async with running(server, tmp_path) as (app, pilot):
        prompt = app.query_one(ChatInput)
        await pilot.press("a", "l", "tab")
        assert prompt.value == "alice: "
        await pilot.press("tab")
        assert prompt.value == "alfred: "
        await pilot.press("shift+tab")
        assert prompt.value == "alice: "
        assert app.focused is prompt
        await pilot.press(*"hi", "space", "a", "l", "f", "tab")
        assert prompt.value == "alice: hi alfred "
        prompt.value = "/jo"
        prompt.cursor_position = 3
        await pilot.press("tab")
        assert prompt.value == "/join "


async def test_up_and_down_recall_typed_lines(server: FakeServer, tmp_path: Path) -> None:
    async with running(server, tmp_path) as (app, pilot):
        prompt = app.query_one(ChatInput)
        await type_line(pilot, "one")
        await type_line(pilot, "two")
        await pilot.press(*"draft", "up")
        assert prompt.value == "two"
        await pilot.press("up")
        assert prompt.value == "one"
        await pilot.press("down", "down")
        assert prompt.value == "draft"


async def _three_rooms(app: TuiTalkApp, pilot: Pilot[None]) -> None:
    for room in ("dev", "ops"):
        await type_line(pilot, f"/join {room}")
        await wait_for(pilot, lambda r=room: app.model.current == r, what=room)


async def test_alt_digits_and_ctrl_n_p_switch_rooms(server: FakeServer, tmp_path: Path) -> None:
    async with running(server, tmp_path) as (app, pilot):
        await _three_rooms(app, pilot)
        await pilot.press("alt+1")
        assert app.model.current == "lobby"
        await pilot.press("alt+3")
        assert app.model.current == "ops"
        await pilot.press("alt+9")  # no ninth room: nothing happens
        assert app.model.current == "ops"
        await pilot.press("ctrl+n")
        assert app.model.current == "lobby"
        await pilot.press("ctrl+p")
        assert app.model.current == "ops"
        await pilot.click(RoomList, offset=(3, 1))
        assert app.model.current == "dev"


async def test_ctrl_k_fuzzy_switcher(server: FakeServer, tmp_path: Path) -> None:
    async with running(server, tmp_path) as (app, pilot):
        await _three_rooms(app, pilot)
        await pilot.press("ctrl+k")
        assert isinstance(app.screen, RoomSwitcher)
        await pilot.press("l", "b", "enter")
        assert app.model.current == "lobby" and not isinstance(app.screen, RoomSwitcher)
        await pilot.press("ctrl+k", "d", "escape")
        assert app.model.current == "lobby"
        await pilot.press("ctrl+k", *"brand-new", "enter")
        await wait_for(pilot, lambda: app.model.current == "brand-new", what="joined new")
        await pilot.press("ctrl+k", "down", "enter")
        assert app.model.current != "brand-new"


async def test_unread_mentions_and_their_keys(server: FakeServer, tmp_path: Path) -> None:
    bob = server.add_member("dev", "bob")
    server.add_member("ops", "carol")
    async with running(server, tmp_path) as (app, pilot):
        await _three_rooms(app, pilot)
        await pilot.press("alt+1")
        server.post("ops", *server.add_member("ops", "dan"), "plain")
        server.post("dev", *bob, "something")
        server.post("dev", *bob, f"hey {app.model.name}, look")
        await pilot.pause()
        await wait_for(pilot, lambda: app.model.rooms["dev"].mentions == 1, what="mention")
        assert "@1" in rooms_text(app) and "#ops" in rooms_text(app)
        assert app.model.rooms["ops"].unread == 1
        await pilot.press("alt+n")
        assert app.model.current == "dev"
        row = next(r for r in visible_rows(app) if "look" in r)
        assert f"hey {app.model.name}, look" in row
        mention = app.model.rooms["dev"].items[-1]
        assert mention.mention
        assert any("new messages" in r for r in visible_rows(app))  # the read marker
        await pilot.press("alt+u")
        await pilot.press("alt+a")  # next unread: ops
        assert app.model.current == "ops" and app.model.rooms["ops"].unread == 0
        await pilot.press("alt+a")
        assert app.model.current == "ops"  # nothing left: stays, says so
        await pilot.press("alt+n")
        assert app.model.current == "ops"


async def test_f8_toggles_the_member_list(server: FakeServer, tmp_path: Path) -> None:
    async with running(server, tmp_path, size=(120, 30)) as (app, pilot):
        members = app.query_one(MemberList)
        assert members.display and not members.has_class("-hidden")
        await pilot.press("f8")
        assert members.has_class("-hidden")
        await pilot.press("f8")
        assert not members.has_class("-hidden")
    async with running(FakeServer(), tmp_path / "narrow", size=(80, 24)) as (app, pilot):
        assert app.query_one(MemberList).has_class("-hidden")
        await pilot.press("f8")
        assert not app.query_one(MemberList).has_class("-hidden")


async def test_scrolled_up_shows_new_messages_bar_and_esc_jumps(server: FakeServer,
                                                                tmp_path: Path) -> None:
    server.preload("lobby", 300)
    alice = server.add_member("lobby", "alice")
    async with running(server, tmp_path, size=(80, 24)) as (app, pilot):
        bar = app.query_one("#newbar")
        await pilot.press("pageup")
        top_before = visible_rows(app)[0]
        for i in range(3):
            server.post("lobby", *alice, f"new {i}")
        await pilot.pause()
        await wait_for(pilot, lambda: app.timeline.new_below == 3, what="counted")
        assert bar.display and "3 new messages" in str(bar.render())
        assert visible_rows(app)[0] == top_before  # the view did not move
        await pilot.press("escape")
        assert app.timeline.new_below == 0 and not bar.display
        assert visible_rows(app)[-1].endswith("alice: new 2")


async def test_failed_send_is_marked(server: FakeServer, tmp_path: Path) -> None:
    async with running(server, tmp_path) as (app, pilot):
        server.refuse_says = "bad_text"
        await type_line(pilot, "refused message")
        await wait_for(pilot, lambda: app.model.view().items[-1].kind == "failed")
        assert "(not sent: refused [bad_text])" in timeline_text(app)[-1]
        assert not app.session.outbox


async def test_quit_saves_and_restart_resumes_with_unsent_outbox(server: FakeServer,
                                                                 tmp_path: Path) -> None:
    async with running(server, tmp_path) as (app, pilot):
        user = app.model.user
        await type_line(pilot, "/join dev")
        await wait_for(pilot, lambda: app.model.current == "dev")
        server.down = True
        for link in server.links:
            link.drop()
        await type_line(pilot, "typed while offline")
        assert app.session.outbox
        await type_line(pilot, "/quit")
    assert app.return_code == 0
    server.down = False
    async with running(server, tmp_path) as (app2, pilot2):
        assert app2.model.user == user  # same identity: the token was kept
        assert app2.model.current == "dev"  # and the room on screen
        assert list(app2.model.rooms) == ["lobby", "dev"]
        await wait_for(pilot2, lambda: not app2.session.outbox, what="outbox flushed")
        texts = [m.text for m in server.rooms["dev"].messages]
        assert texts.count("typed while offline") == 1
        await wait_for(pilot2, lambda: any("typed while offline" in r
                                           for r in visible_rows(app2)))


async def test_connection_state_is_quiet_for_a_blink_and_loud_for_an_outage(
        server: FakeServer, tmp_path: Path) -> None:
    async with running(server, tmp_path) as (app, pilot):
        link = server.links[0]
        link.drop()  # reconnects at once (first retry is immediate)
        await wait_for(pilot, lambda: app.session.connected, what="back")
        await pilot.pause(0.3)
        assert not any("reconnecting" in label for _, label in app.status_log)
        server.down = True
        link.drop()
        await wait_for(pilot, lambda: "reconnecting" in status(app), timeout=5,
                       what="alarm")
        server.down = False
        await wait_for(pilot, lambda: app.session.connected, timeout=15, what="reconnected")
        await wait_for(pilot, lambda: "● connected" in status(app), what="calm again")
        labels = [label for _, label in app.status_log]
        assert "catching up…" in labels or labels[-1] == "connected"


async def test_hostile_corpus_is_inert_and_clicks_do_nothing(server: FakeServer,
                                                             tmp_path: Path) -> None:
    evil = server.add_member("lobby", "[@click=app.quit]bob[/]")
    corpus = ["\x1b]2;PWNED\x07title", "\x1b[2Jclear", "\x1b]52;c;cHduZWQ=\x07clip",
              "\u202eevil\u202c", "\x9b31mC1\x85", "z\u200dw\u200bj", "[@click=app.quit]x[/]"]
    async with running(server, tmp_path) as (app, pilot):
        for text in corpus:
            server.post("lobby", *evil, text)
        await pilot.pause()
        await wait_for(pilot, lambda: any("[@click=app.quit]x[/]" in r
                                          for r in visible_rows(app)))
        t = app.timeline
        for y in range(t.size.height):
            for seg in t.render_line(y):
                assert not any(ord(ch) < 0x20 or 0x7F <= ord(ch) < 0xA0 for ch in seg.text)
                assert "\u202e" not in seg.text and "\u200b" not in seg.text
                assert seg.style is None or not seg.style.meta  # no @click actions
        rows = visible_rows(app)
        assert any("[@click=app.quit]bob[/]: " in r for r in rows)
        for y in range(t.size.height - 8, t.size.height):
            await pilot.click(t, offset=(12, y))
        assert app.is_running


async def test_alt_u_jumps_to_the_read_marker_and_pages_move(server: FakeServer,
                                                              tmp_path: Path) -> None:
    server.preload("dev", 150)
    carol = server.add_member("dev", "carol")
    async with running(server, tmp_path, size=(80, 24)) as (app, pilot):
        await type_line(pilot, "/join dev")
        await wait_for(pilot, lambda: app.model.current == "dev"
                       and not app.session.rooms["dev"].history_pending)
        await pilot.press("alt+1")
        for i in range(40):
            server.post("dev", *carol, f"unread {i}")
        await wait_for(pilot, lambda: app.model.rooms["dev"].unread == 40)
        await pilot.press("alt+2")
        # 40 unread lines do not fit: the view opens at the marker, not at the bottom
        assert any("new messages" in r for r in visible_rows(app)[:3])
        await pilot.press("escape")
        assert visible_rows(app)[-1].endswith("carol: unread 39")
        assert not any("new messages" in r for r in visible_rows(app))
        await pilot.press("alt+u")
        assert any("new messages" in r for r in visible_rows(app)[:3])
        top = visible_rows(app)[0]
        await pilot.press("pagedown")
        assert visible_rows(app)[0] != top
        await pilot.press("pageup")
        assert visible_rows(app)[0] == top


async def test_ctrl_q_quits_and_saves(server: FakeServer, tmp_path: Path) -> None:
    async with running(server, tmp_path) as (app, pilot):
        user = app.model.user
        await pilot.press("ctrl+q")
    assert app.return_code == 0
    saved = json.loads((tmp_path / "state.json").read_text())
    section = saved["servers"][FAKE_URL]
    assert section["session"]["user"] == user and section["ui"]["room"] == "lobby"
    assert section["session"]["rooms"]["lobby"]["seq"] >= 1


async def test_name_flag_renames_a_known_identity(server: FakeServer, tmp_path: Path) -> None:
    async with running(server, tmp_path) as (app, pilot):
        first = app.model.name
        await pilot.press("ctrl+q")
    async with running(server, tmp_path, name="Zed") as (app2, pilot2):
        await wait_for(pilot2, lambda: app2.model.name == "Zed", what="renamed")
        assert first != "Zed" and app2.config.name is None
        assert any(f"{first} is now known as Zed" in r for r in timeline_text(app2))
