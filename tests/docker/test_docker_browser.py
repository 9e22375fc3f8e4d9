"""The browser page works from the Docker deployment: nginx's container serves the page and
the self-hosted Pyodide, and two Chromium users chat through it."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import anyio
import pytest

from chaos.platforms.docker import DockerPlatform
from tests.browser.browsers import Web, artifact
from tests.docker.support import room_name, wait_archived

pytestmark = [pytest.mark.anyio, pytest.mark.docker, pytest.mark.browser]


@pytest.fixture
async def web(platform: DockerPlatform, tmp_path: Path) -> AsyncIterator[Web]:
    # No warmed profile template: these users load the page and Pyodide cold, from the
    # container, which is what this test is about.
    async with Web(platform.http_url, tmp_path, None) as w:
        yield w
        w.assert_all_local()


async def test_page_loads_from_the_docker_deployment_and_chats(
    platform: DockerPlatform, web: Web, measure: Any,
) -> None:
    room = room_name("w")
    alice = await web.user("alice", warm=False)
    bob = await web.user("bob", warm=False)
    started = time.monotonic()
    boot: dict[str, float] = {}

    async def open_page(label: str, user: Any) -> None:
        boot[label] = await user.open(f"#{room}")

    async with anyio.create_task_group() as tg:
        tg.start_soon(open_page, "alice", alice)
        tg.start_soon(open_page, "bob", bob)
    measure("cold page load from the nginx container until ready (2 browsers at once)",
            time.monotonic() - started)
    for label, seconds in boot.items():
        measure(f"{label}: page's own navigation-to-ready mark", seconds)

    await alice.type_line("/nick alice")
    await bob.type_line("/nick bob")
    for u in (alice, bob):
        await u.wait_for("n => window.tuitalk.state().name === n", u.label)
    lines = []
    for i in range(3):
        for u in (alice, bob):
            text = f"{u.label} from docker {i}"
            await u.type_line(text)
            lines.append(text)

    section = f"section[data-room='{room}']"

    async def settled() -> bool:
        """Every line typed is shown on both pages and nothing is pending any more."""
        for u in (alice, bob):
            text = await u.page.inner_text(section)
            if not all(line in text for line in lines) or await u.pending(room):
                return False
        return True

    deadline = time.monotonic() + 30
    while not await settled():
        assert time.monotonic() < deadline, "the pages never showed every line"
        await anyio.sleep(0.1)
    n = max(s for _, s, _ in (await alice.shown(room)))
    server = wait_archived(platform, room, n)
    for u in (alice, bob):
        assert await u.shown(room) == server, u.label
        assert await u.pending(room) == []
    assert {(await alice.state())["backend"], (await bob.state())["backend"]} <= set(
        platform.backends())
    await alice.page.screenshot(path=str(artifact("docker-browser-conversation.png")))
    web.assert_no_errors()
