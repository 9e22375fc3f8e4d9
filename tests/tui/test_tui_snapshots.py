"""SVG snapshots of tuitalk-cli at 80x24 and 120x40 (pytest-textual-snapshot).

Every scene runs on the in-memory server with fixed ids, names, timestamps (UTC) and a
manual clock for the connection indicator, so the pictures are the same on every machine.
Update the baselines with ``pytest tests/tui --snapshot-update`` after checking the report.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from textual.pilot import Pilot
from tuitalk_cli.app import TuiTalkApp
from tuitalk_cli.prompt import ChatInput

from tests.tui.conftest import make_app, wait_for
from tests.tui.fakes import FakeServer

pytestmark = [pytest.mark.tui]

SIZES = [pytest.param((80, 24), id="80x24"), pytest.param((120, 40), id="120x40")]
Scene = Callable[[TuiTalkApp, Pilot[None], FakeServer], Awaitable[None]]


@pytest.fixture(autouse=True)
def _in_colour(monkeypatch: pytest.MonkeyPatch) -> None:
    """The baselines are in colour; Textual turns NO_COLOR (even empty) into monochrome."""
    monkeypatch.delenv("NO_COLOR", raising=False)


class ManualClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def conversation(server: FakeServer) -> None:
    """A lived-in lobby: look-alike names, a mention, hostile text, a long line."""
    alice = server.add_member("lobby", "alice")
    fake = server.add_member("lobby", "\u0430lice")
    bob = server.add_member("lobby", "[@click=app.quit]bob[/]")
    server.post("lobby", *alice, "morning all")
    server.post("lobby", *fake, "hi, I am the real alice")
    server.post("lobby", *bob, "\x1b]2;PWNED\x07 \x1b[2J\u202eevil\u202c [@click=app.quit]x[/]")
    server.post("lobby", *alice, "waves", kind="me")
    server.post("lobby", *alice, "a long line that has to wrap under its prefix, because the "
                "timeline keeps a hanging indent for continuation rows like WeeChat does")


async def _joined(app: TuiTalkApp, pilot: Pilot[None]) -> None:
    await wait_for(pilot, lambda: app.model.current is not None and app.session.connected
                   and not app.session.rooms[app.model.current].history_pending
                   and app.model.view().items, what="joined")


def shoot(snap_compare: Any, tmp_path: Path, size: tuple[int, int], server: FakeServer,
          scene: Scene, **config: Any) -> bool:
    clock = ManualClock()
    app = make_app(server, tmp_path, save_state=False, **config)
    app.clock = clock

    async def run_before(pilot: Pilot[None]) -> None:
        await _joined(app, pilot)
        await scene(app, pilot, server)
        await pilot.pause()
        app.clear_notifications()
        await pilot.pause()

    return bool(snap_compare(app, terminal_size=size, run_before=run_before))


async def _say(pilot: Pilot[None], text: str) -> None:
    prompt = pilot.app.query_one(ChatInput)
    prompt.value = text
    await pilot.press("enter")
    await pilot.pause()


@pytest.mark.parametrize("size", SIZES)
def test_snapshot_conversation(snap_compare: Any, tmp_path: Path, size: tuple[int, int],
                               server: FakeServer) -> None:
    conversation(server)

    async def scene(app: TuiTalkApp, pilot: Pilot[None], server: FakeServer) -> None:
        alice = next(u for u, n in server.rooms["lobby"].members.items() if n == "alice")
        server.post("lobby", alice, "alice", f"{app.model.name}: are you there?")
        await wait_for(pilot, lambda: app.model.view().items[-1].mention)
        await _say(pilot, "sent and sequenced")
        await wait_for(pilot, lambda: not app.session.outbox)
        server.refuse_says = "bad_text"
        await _say(pilot, "refused by the server")
        await wait_for(pilot, lambda: app.model.view().items[-1].kind == "failed")
        server.refuse_says = None
        server.hold = True
        await _say(pilot, "still pending")

    assert shoot(snap_compare, tmp_path, size, server, scene)


@pytest.mark.parametrize("size", SIZES)
def test_snapshot_light_theme(snap_compare: Any, tmp_path: Path, size: tuple[int, int],
                              server: FakeServer) -> None:
    conversation(server)

    async def scene(app: TuiTalkApp, pilot: Pilot[None], server: FakeServer) -> None:
        app.theme = "textual-light"

    assert shoot(snap_compare, tmp_path, size, server, scene)


@pytest.mark.parametrize("size", SIZES)
def test_snapshot_rooms_unread_and_read_marker(snap_compare: Any, tmp_path: Path,
                                               size: tuple[int, int],
                                               server: FakeServer) -> None:
    carol = server.add_member("dev", "carol")
    dan = server.add_member("ops", "dan")
    for i in range(3):
        server.post("dev", *carol, f"read before {i}")

    async def scene(app: TuiTalkApp, pilot: Pilot[None], server: FakeServer) -> None:
        for room in ("dev", "ops", "random"):
            await _say(pilot, f"/join {room}")
            await wait_for(pilot, lambda r=room: app.model.current == r)
        await pilot.press("alt+2")
        await pilot.press("alt+1")
        server.post("dev", *carol, "this arrived while you were away")
        server.post("dev", *carol, f"{app.model.name}, have a look")
        server.post("ops", *dan, "deploy done")
        await wait_for(pilot, lambda: app.model.rooms["dev"].mentions == 1)
        await pilot.press("alt+n")

    assert shoot(snap_compare, tmp_path, size, server, scene)


@pytest.mark.parametrize("size", SIZES)
def test_snapshot_help(snap_compare: Any, tmp_path: Path, size: tuple[int, int],
                       server: FakeServer) -> None:
    async def scene(app: TuiTalkApp, pilot: Pilot[None], server: FakeServer) -> None:
        await pilot.press("f1")

    assert shoot(snap_compare, tmp_path, size, server, scene)


@pytest.mark.parametrize("size", SIZES)
def test_snapshot_room_switcher(snap_compare: Any, tmp_path: Path, size: tuple[int, int],
                                server: FakeServer) -> None:
    async def scene(app: TuiTalkApp, pilot: Pilot[None], server: FakeServer) -> None:
        for room in ("dev", "design", "ops"):
            await _say(pilot, f"/join {room}")
            await wait_for(pilot, lambda r=room: app.model.current == r)
        await pilot.press("ctrl+k", "d", "e")

    assert shoot(snap_compare, tmp_path, size, server, scene)


@pytest.mark.parametrize("size", SIZES)
def test_snapshot_reconnecting_and_new_below(snap_compare: Any, tmp_path: Path,
                                             size: tuple[int, int], server: FakeServer) -> None:
    server.preload("lobby", 120)
    alice = server.add_member("lobby", "alice")

    async def scene(app: TuiTalkApp, pilot: Pilot[None], server: FakeServer) -> None:
        await pilot.press("pageup")
        for i in range(4):
            server.post("lobby", *alice, f"new while scrolled up {i}")
        await wait_for(pilot, lambda: app.timeline.new_below == 4)
        server.down = True
        server.links[0].drop()
        await wait_for(pilot, lambda: not app.session.connected)
        assert isinstance(app.clock, ManualClock)
        app.clock.now += 5.0
        await pilot.pause(0.4)  # the status line refreshes every 0.25 s

    assert shoot(snap_compare, tmp_path, size, server, scene)
