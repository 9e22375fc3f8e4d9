"""Big rooms and floods: opening 5,000 history lines, typing during 50 messages/s.

Measured on the in-memory server, so the numbers are the app's own cost (the client core,
the model, layout and rendering), not the network's. Bounds are loose (CI machines are
slow); the measured values are printed at the end of the run.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from pathlib import Path

import anyio
import pytest
from textual import events
from tuitalk_cli.link import SessionEvents
from tuitalk_cli.prompt import ChatInput

from tests.tui.conftest import make_app, timeline_text, visible_rows, wait_for
from tests.tui.fakes import EPOCH, T0_MS, FakeServer
from tuitalk import protocol as p
from tuitalk.client import events as ev

pytestmark = [pytest.mark.anyio, pytest.mark.tui]


def history(room: str, n: int, start: int = 1) -> tuple[p.Msg, ...]:
    return tuple(p.Msg(room=room, epoch=EPOCH, seq=i, id=f"big{i:07d}", user=f"u{i % 7}",
                       name=f"user-{i % 7}", kind="text",
                       text=f"history line {i} " + "lorem ipsum " * (i % 9),
                       ts=T0_MS + i * 1000) for i in range(start, start + n))


async def test_opening_a_room_with_5000_history_lines(
        server: FakeServer, tmp_path: Path,
        measure: Callable[[str, float, str], None]) -> None:
    app = make_app(server, tmp_path, save_state=False)
    async with app.run_test(size=(120, 40)) as pilot:
        await wait_for(pilot, lambda: app.model.current == "lobby" and app.session.connected)
        await pilot.press(*"/join big", "enter")
        await wait_for(pilot, lambda: app.model.current == "big")
        msgs = history("big", 5000)
        shown_at: list[float] = []

        def on_screen() -> bool:
            if any("history line 5000" in r for r in visible_rows(app)):
                shown_at.append(time.perf_counter())
                return True
            return False

        t0 = time.perf_counter()
        app.post_message(SessionEvents([ev.HistoryLoaded("big", msgs, False)]))
        await wait_for(pilot, on_screen, what="history on screen")
        page_s = shown_at[0] - t0
        assert len(app.model.rooms["big"].shown_keys()) == 5001  # and our join
        # switching away and back re-lays out all 5,000 items
        await pilot.press("alt+1")
        t0 = time.perf_counter()
        await pilot.press("alt+2")
        switch_s = time.perf_counter() - t0
        assert any("history line 5000" in r for r in visible_rows(app))
        # scrolling to the very top renders only what is on screen
        t0 = time.perf_counter()
        app.timeline.scroll_home(animate=False, immediate=True)
        await pilot.pause()
        top_s = time.perf_counter() - t0
        assert any("this is the beginning of #big" in r for r in visible_rows(app))
    measure("5000-line history page to screen", page_s, "s")
    measure("switch to a 5000-line room", switch_s, "s")
    measure("jump to the top of 5000 lines", top_s, "s")
    assert page_s < 2.0 and switch_s < 1.0


async def test_typing_stays_responsive_during_a_50_per_second_flood(
        server: FakeServer, tmp_path: Path,
        measure: Callable[[str, float, str], None]) -> None:
    flooder = server.add_member("lobby", "flooder")
    app = make_app(server, tmp_path, save_state=False)
    async with app.run_test(size=(100, 30)) as pilot:
        await wait_for(pilot, lambda: app.model.current == "lobby" and app.session.connected)
        prompt = app.query_one(ChatInput)

        async def type_and_time(text: str) -> list[float]:
            """Post each key as the terminal driver does; time until the input has it.
            (Pilot.press waits for the app to be idle, which it never is in a flood.)"""
            out = []
            for ch in text:
                before = prompt.value
                key = events.Key(ch, ch)
                key.set_sender(app)
                t0 = time.perf_counter()
                app.post_message(key)
                while prompt.value == before:  # noqa: ASYNC110 (polling is the measurement)
                    await anyio.sleep(0.0005)
                out.append(time.perf_counter() - t0)
                assert prompt.value == before + ch
                await anyio.sleep(0.03)
            prompt.value = ""
            return out

        quiet = await type_and_time("the quick brown fox")
        sent = 0

        async def flood() -> None:
            nonlocal sent
            start = time.monotonic()
            while True:
                server.post("lobby", *flooder, f"flood {sent + 1} " + "x" * (sent % 60))
                sent += 1
                await anyio.sleep(max(0.0, start + sent * 0.02 - time.monotonic()))

        async with anyio.create_task_group() as tg:
            tg.start_soon(flood)
            await anyio.sleep(0.5)
            busy = await type_and_time("jumps over the lazy dog, twice over")
            tg.cancel_scope.cancel()
        await wait_for(pilot, lambda: any(f": flood {sent} " in r + " " for r in
                                          timeline_text(app)[-3:]), what="flood shown")
        assert any(f"flood {sent}" in r for r in visible_rows(app))
    p50, p95 = statistics.median(busy), statistics.quantiles(busy, n=20)[-1]
    measure("key->input p50, quiet", statistics.median(quiet) * 1000, "ms")
    measure("key->input p50 during 50 msg/s", p50 * 1000, "ms")
    measure("key->input p95 during 50 msg/s", p95 * 1000, "ms")
    measure("key->input max during 50 msg/s", max(busy) * 1000, "ms")
    measure("flood messages shown", sent, "msgs")
    assert sent >= 40
    assert p95 < 0.1, f"typing lags during the flood: p95 {p95 * 1000:.0f} ms"
