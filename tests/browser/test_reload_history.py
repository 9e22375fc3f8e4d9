"""What a returning user expects: a reload keeps who they are, their rooms and their unsent
messages; older messages come back by scrolling up; everything works from the keyboard."""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.browser.browsers import SETTLED, User, Web, room_name
from tests.helpers import chat_client
from tuitalk.launcher.cluster import LocalCluster

pytestmark = [pytest.mark.anyio, pytest.mark.integration, pytest.mark.browser]


async def stored(user: User) -> dict[str, Any]:
    raw = await user.page.evaluate("localStorage.getItem('tuitalk.v1')")
    return dict(json.loads(raw))


async def own_joins(user: User, room: str, uid: str) -> int:
    return int(await user.page.locator(
        f"section[data-room='{room}'] li.msg[data-kind='join'][data-user='{uid}']").count())


async def test_reload_keeps_identity_name_rooms_and_unsent_messages(web: Web) -> None:
    r1, r2 = room_name("a"), room_name("b")
    u = await web.user("zed")
    await u.open(f"#{r1}")
    await u.type_line("/nick zed")
    await u.wait_for("() => window.tuitalk.state().name === 'zed'")
    await u.type_line(f"/join {r2}")
    await u.wait_for("r => window.tuitalk.state().active === r", r2)
    await u.type_line("hello from room two")
    await u.wait_for(SETTLED, [r2, 2])
    await u.page.keyboard.press("Alt+ArrowUp")  # back to the first room, from the keyboard
    await u.wait_for("r => window.tuitalk.state().active === r", r1)
    before = await u.state()
    r2_before = await u.shown(r2)

    # A message typed while the network is gone stays pending, and is in the stored outbox.
    await u.context.set_offline(True)
    await u.type_line("typed while offline")
    await u.wait_for("r => window.tuitalk.pending(r).length === 1", r1)
    [pending] = await u.pending(r1)
    assert pending["state"] == "pending"
    assert [e["id"] for e in (await stored(u))["session"]["outbox"]] == [pending["id"]]
    await u.context.set_offline(False)

    await u.reload()
    after = await u.state()
    assert (after["user"], after["name"], after["active"]) == (
        before["user"], "zed", r1)
    assert [r["room"] for r in await u.page.evaluate("window.tuitalk.rooms()")] == [r1, r2]
    # The unsent message went out exactly once, with the id it had before the reload.
    await u.wait_for("r => window.tuitalk.pending(r).length === 0", r1, timeout_s=20)
    ids = [i for _, _, i in await u.shown(r1)]
    assert ids.count(pending["id"]) == 1
    # Room two is resumed, not joined again, and its messages come back.
    await u.page.keyboard.press("Alt+2")
    await u.wait_for("([r, n]) => window.tuitalk.shown(r).length >= n", [r2, len(r2_before)])
    assert await u.shown(r2) == r2_before
    assert await own_joins(u, r1, before["user"]) == 1
    assert await own_joins(u, r2, before["user"]) == 1
    web.assert_no_errors()


async def test_history_pages_load_by_scrolling_up(cluster: LocalCluster, web: Web) -> None:
    room = room_name("h")
    n = 130
    async with chat_client(cluster.url, "poster", name="poster") as poster:
        poster.driver.join(room)
        await poster.wait_joined(room)
        ids = [poster.say(room, f"line {i:03d}") for i in range(n)]
        await poster.wait_acked(ids, timeout=30)

    u = await web.user("reader")
    await u.open(f"#{room}")
    log = u.page.locator(f"section[data-room='{room}']")
    # Joining shows the latest page (50) and the newest line at the bottom.
    await u.wait_for("r => window.tuitalk.shown(r).length >= 50", room)
    first_page = await u.shown(room)
    assert await log.evaluate("l => l.scrollHeight - l.scrollTop - l.clientHeight") < 48
    assert await log.get_attribute("data-more") == "yes"

    # Scroll up with the mouse wheel: the next page arrives above, and the line that was
    # at the top stays where the reader was looking.
    top_id = first_page[0][2]
    await log.hover()
    for _ in range(60):
        await u.page.mouse.wheel(0, -300)  # one notch at a time, like a person
        await u.page.wait_for_timeout(80)
        if len(await u.shown(room)) > len(first_page):
            break
    await u.wait_for("([r, n]) => window.tuitalk.shown(r).length >= n",
                     [room, len(first_page) + 50])
    anchor = u.page.locator(f"section[data-room='{room}'] li[data-id='{top_id}']")
    box, view = await anchor.bounding_box(), await log.bounding_box()
    assert box is not None and view is not None
    assert view["y"] <= box["y"] <= view["y"] + view["height"], "the reading position jumped"

    # The rest with the keyboard only: PageUp in the input scrolls the log.
    await u.page.locator("#input").focus()
    for _ in range(60):
        if await log.get_attribute("data-more") == "no":
            break
        await u.page.keyboard.press("PageUp")
        await u.page.wait_for_timeout(60)
    await u.wait_for(f"() => document.querySelector(\"section[data-room='{room}']\")"
                     ".dataset.more === 'no'")
    shown = await u.shown(room)
    seqs = [s for _, s, _ in shown]
    assert seqs == list(range(1, len(seqs) + 1)), "history has a gap or a double"
    assert len(shown) >= n + 2  # the poster's and the reader's joins, and every line
    assert await log.get_attribute("data-dups") == "0"
    assert "Beginning of" in await log.locator(".older").inner_text()
    web.assert_no_errors()


async def test_keyboard_sends_switches_rooms_and_recalls(cluster: LocalCluster, web: Web) -> None:
    r1, r2 = room_name("k"), room_name("l")
    u = await web.user("keys")
    await u.open(f"#{r1}")
    page = u.page
    # Focus starts in the input, whose label names the room.
    assert await page.evaluate("document.activeElement.id") == "input"
    label = await page.locator("#input").evaluate("i => i.labels[0].textContent")
    assert f"#{r1}" in label

    await page.keyboard.type(f"/join {r2}")
    await page.keyboard.press("Enter")
    await u.wait_for("r => window.tuitalk.state().active === r", r2)
    await page.keyboard.type("first line")
    await page.keyboard.press("Shift+Enter")
    await page.keyboard.type("second line")
    await page.keyboard.press("Enter")
    await page.keyboard.type("/me waves")
    await page.keyboard.press("Enter")
    await u.wait_for(SETTLED, [r2, 3])
    bodies = await page.locator(f"section[data-room='{r2}'] li.msg .body").all_inner_texts()
    assert "first line\nsecond line" in bodies
    me = page.locator(f"section[data-room='{r2}'] li.msg[data-kind='me']")
    assert "waves" in await me.inner_text()

    # Up recalls the last line sent; Escape from anywhere comes back to the input.
    await page.keyboard.press("ArrowUp")
    assert await page.locator("#input").input_value() == "/me waves"
    await page.locator("#input").fill("")
    await page.keyboard.press("Alt+1")
    await u.wait_for("r => window.tuitalk.state().active === r", r1)
    await page.keyboard.press("Alt+ArrowDown")
    await u.wait_for("r => window.tuitalk.state().active === r", r2)
    current = page.locator("#rooms button[aria-current='true']")
    assert await current.get_attribute("data-room") == r2

    # Messages in the room not shown are counted on its button and in the title, in words.
    async with chat_client(cluster.url, "other", name="other") as other:
        other.driver.join(r1)
        await other.wait_joined(r1)
        await other.wait_acked([other.say(r1, "psst"), other.say(r1, "over here")])
    r1_button = page.locator(f"#rooms button[data-room='{r1}']")
    await u.wait_for(f"() => document.querySelector(\"#rooms button[data-room='{r1}']\")"
                     ".textContent.includes('2 new')")
    assert await page.title() == "(2) TuiTalk"
    await page.keyboard.press("Alt+1")
    await u.wait_for("r => window.tuitalk.state().active === r", r1)
    assert "new" not in await r1_button.inner_text()
    assert await page.title() == "TuiTalk"
    await page.keyboard.press("Alt+2")
    await page.locator(f"section[data-room='{r2}']").focus()
    await page.keyboard.press("Escape")
    assert await page.evaluate("document.activeElement.id") == "input"

    # Tab order reaches the rooms, the log and the input: nothing is mouse-only.
    reached = set()
    await page.locator(".skip").focus()
    for _ in range(12):
        await page.keyboard.press("Tab")
        reached.add(await page.evaluate(
            "(() => { const a = document.activeElement;"
            " return a.id || a.dataset.room && ('room:' + a.tagName) || a.className })()"))
    assert {"input", "send", "room:BUTTON", "room:SECTION"} <= reached, reached

    # An unknown command is explained, and the line stays for fixing.
    await page.locator("#input").fill("/frobnicate")
    await page.keyboard.press("Enter")
    assert await page.locator("#input").input_value() == "/frobnicate"
    assert "unknown command" in await page.locator(
        f"section[data-room='{r2}'] li.sys").last.inner_text()
    web.assert_no_errors()
