"""tuitalk-cli against the real local cluster (Redis Cluster, PostgreSQL, 3 backends, nginx).

1. Two app instances (Pilot, one process) chat through nginx while the backends they are on
   are SIGKILLed; both end with exactly the server's sequence of (epoch, seq, id).
2. The real program in a real terminal (tmux): type, read back, receive a hostile corpus;
   the pane title, the screen and the clipboard stay ours; key->echo during a flood.
"""

from __future__ import annotations

import os
import re
import secrets
import shutil
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import UTC
from pathlib import Path
from typing import Any

import anyio
import pytest
from textual.pilot import Pilot
from tuitalk_cli.app import TuiTalkApp
from tuitalk_cli.config import CliConfig
from tuitalk_cli.prompt import ChatInput

from tests.helpers import chat_client
from tests.tui.conftest import wait_for
from tuitalk.client import events as ev
from tuitalk.client.session import ClientSession
from tuitalk.launcher.cluster import LocalCluster

pytestmark = [pytest.mark.anyio, pytest.mark.tui, pytest.mark.integration]

Key = tuple[str, int, str]


def _app(cluster: LocalCluster, state: Path, room: str, name: str) -> TuiTalkApp:
    return TuiTalkApp(CliConfig(state_dir=state, url=cluster.url, room=room, name=name, tz=UTC))


def _ready(app: TuiTalkApp, room: str) -> bool:
    v = app.session.rooms.get(room)
    return (app.session.connected and app.model.current == room and v is not None
            and v.joined and not v.history_pending and not app.catching_up())


async def _say(pilot: Pilot[None], text: str) -> None:
    prompt = pilot.app.query_one(ChatInput)
    prompt.value = text
    await pilot.press("enter")


async def _server_sequence(url: str, room: str) -> list[Key]:
    """Everything in ``room`` as the server has it: a third client joins and pages back."""
    async with chat_client(url, "reader", session=ClientSession(history_limit=500)) as r:
        r.driver.join(room)
        await r.wait_joined(room)
        keys: list[Key] = []

        def pages() -> list[ev.HistoryLoaded]:
            return [e for e in r.events if isinstance(e, ev.HistoryLoaded)]

        def more_than(n: int) -> Callable[[], bool]:
            return lambda: len(pages()) > n

        while True:
            n = len(pages())
            if r.driver.load_history(room):
                await r.wait_for(more_than(n), what="history page")
                continue
            if r.session.rooms[room].history_pending:
                await anyio.sleep(0.05)
                continue
            break
        for page in pages():  # each page is older than the one before: put it in front
            keys[:0] = [(m.epoch, m.seq, m.id) for m in page.messages]
        keys += [(m.epoch, m.seq, m.id) for m in r.shown(room)]
        return keys


async def test_two_apps_chat_through_a_backend_kill(
        healed: LocalCluster, tmp_path: Path,
        measure: Callable[[str, float, str], None]) -> None:
    cluster = healed
    room = "tui-" + secrets.token_hex(4)
    a = _app(cluster, tmp_path / "a", room, "ann")
    b = _app(cluster, tmp_path / "b", room, "ben")
    async with a.run_test(size=(100, 30)) as pa, b.run_test(size=(100, 30)) as pb:
        await wait_for(pa, lambda: _ready(a, room), timeout=15, what="a joined")
        await wait_for(pb, lambda: _ready(b, room), timeout=15, what="b joined")
        await wait_for(pa, lambda: len(a.model.rooms[room].members) == 2, what="a sees b")
        victims = sorted({a.session.backend, b.session.backend})
        sent: list[str] = []
        t_kill = 0.0
        for i in range(24):
            if i == 8:
                t_kill = time.monotonic()
                for name in victims:
                    cluster.kill(name)
            for pilot, who in ((pa, "ann"), (pb, "ben")):
                text = f"{who} {i}"
                await _say(pilot, text)
                sent.append(text)
            await anyio.sleep(0.05)

        def settled(app: TuiTalkApp) -> bool:
            texts = [it.body.plain for it in app.model.rooms[room].items if it.key]
            return _ready(app, room) and not app.session.outbox and all(
                t in texts for t in sent)

        await wait_for(pa, lambda: settled(a) and settled(b), timeout=30, what="both settled")
        back_s = {}
        for name, app in (("ann", a), ("ben", b)):
            assert app.session.reconnects >= 1, f"{name} never lost its backend"
            assert app.session.backend not in victims
            back_s[name] = _user_visible_outage(app, t_kill)
        server = await _server_sequence(cluster.url, room)
        reader_join = server[-1]
        await wait_for(pa, lambda: reader_join in a.model.rooms[room].shown_keys()
                       and reader_join in b.model.rooms[room].shown_keys(), what="reader seen")
        shown_a = a.model.rooms[room].shown_keys()
        shown_b = b.model.rooms[room].shown_keys()
        assert shown_a == server, _diff(shown_a, server)
        assert shown_b == server, _diff(shown_b, server)
        assert [k[1] for k in server] == list(range(1, len(server) + 1))
        texts = [it.body.plain for it in a.model.rooms[room].items if it.kind == "msg"]
        assert sorted(texts) == sorted(sent), "a message shows twice or not at all"
        assert not any(it.kind in ("pending", "failed") for it in a.model.rooms[room].items)
    for name, seconds in back_s.items():
        measure(f"{name}: backend kill -> connected and caught up, as the user sees it",
                seconds, "s")
    measure("messages in the room", len(server), "msgs")


def _user_visible_outage(app: TuiTalkApp, t_kill: float) -> float:
    """From the kill to the moment the app was connected and caught up again."""
    for t, state in app.recovery_log:
        if t >= t_kill and state:
            return t - t_kill
    raise AssertionError(f"no recovery recorded after the kill: {app.recovery_log}")


def _diff(got: list[Key], want: list[Key]) -> str:
    missing = [k for k in want if k not in got]
    extra = [k for k in got if k not in want]
    return f"missing {missing[:5]} extra {extra[:5]} (got {len(got)}, want {len(want)})"


# -- a real terminal -----------------------------------------------------------------------------

HOSTILE = [
    "osc title \x1b]2;PWNED\x07 after",
    "osc0 title \x1b]0;PWNED0\x1b\\ after",
    "csi clear \x1b[2J\x1b[H after",
    "osc52 \x1b]52;c;cHduZWQ=\x07 after",
    "bidi \u202eevil\u202c after",
    "c1 \x9b31m \x9d2;PWNED8\x9c after",
    "zwj z\u200dw\u200bj\u2060 after",
    "markup [@click=app.quit]click me[/] after",
    "bell \x07\x07 and cr \r overwrite after",
]


class Tmux:
    """A private tmux server (its own socket), killed at the end."""

    def __init__(self) -> None:
        self.socket = f"tuitalk-test-{os.getpid()}-{secrets.token_hex(4)}"
        self.socket_path = ""

    async def run(self, *args: str) -> str:
        proc = await anyio.run_process(["tmux", "-L", self.socket, *args], check=False)
        if proc.returncode != 0:
            raise AssertionError(f"tmux {args[0]} failed: {proc.stderr.decode()}")
        return proc.stdout.decode()

    async def screen(self) -> str:
        return await self.run("capture-pane", "-p", "-t", "main")

    async def fmt(self, what: str) -> str:
        return (await self.run("display-message", "-p", "-t", "main", what)).strip()

    async def wait_screen(self, pred: Callable[[str], Any], timeout: float = 15.0,
                          what: str = "") -> str:
        deadline = time.monotonic() + timeout
        while True:
            text = await self.screen()
            if pred(text):
                return text
            if time.monotonic() > deadline:
                raise AssertionError(f"screen never showed {what}:\n{text}")
            await anyio.sleep(0.05)

    def kill(self) -> None:
        subprocess.run(["tmux", "-L", self.socket, "kill-server"], capture_output=True,
                       check=False)
        if self.socket_path:
            Path(self.socket_path).unlink(missing_ok=True)


@asynccontextmanager
async def tmux_app(argv: list[str], size: tuple[int, int]) -> AsyncIterator[Tmux]:
    if shutil.which("tmux") is None:
        pytest.fail("tmux is not installed (./run installs it)")
    t = Tmux()
    try:
        await t.run("-f", "/dev/null", "new-session", "-d", "-s", "main", "-x", str(size[0]),
                    "-y", str(size[1]), "sleep 600")
        t.socket_path = await t.fmt("#{socket_path}")
        # An OSC 52 that got through would land in a tmux paste buffer.
        await t.run("set-option", "-s", "set-clipboard", "on")
        await t.run("set-option", "-g", "remain-on-exit", "on")
        await t.run("select-pane", "-t", "main", "-T", "tuitalk-test-title")
        await t.run("respawn-pane", "-k", "-t", "main", " ".join(argv))
        yield t
    finally:
        t.kill()


def _input_line(screen: str) -> str:
    """The input row: the line right above the key hints."""
    lines = screen.rstrip("\n").split("\n")
    return lines[-2] if len(lines) >= 2 else ""


async def test_real_terminal_survives_a_hostile_corpus(
        cluster: LocalCluster, tmp_path: Path,
        measure: Callable[[str, float, str], None]) -> None:
    room = "tty-" + secrets.token_hex(4)
    argv = [sys.executable, "-m", "tuitalk_cli", "--url", cluster.url, "--state-dir",
            str(tmp_path / "state"), "--room", room, "--name", "tester"]
    env_prefix = "env TERM=xterm-256color COLORTERM=truecolor TZ=UTC "
    async with tmux_app([env_prefix + argv[0], *argv[1:]], (100, 30)) as t:
        await t.wait_screen(lambda s: "connected" in s and f"#{room}" in s
                            and "tester joined" in s, what="the app, connected")
        title = await t.fmt("#{pane_title}")
        assert title == "tuitalk-test-title"
        await t.run("send-keys", "-t", "main", "-l", "hello from a real terminal")
        await t.run("send-keys", "-t", "main", "Enter")
        await t.wait_screen(lambda s: "tester: hello from a real terminal" in s,
                            what="own message")
        async with chat_client(cluster.url, "evil", name="mallory") as evil:
            await evil.wait_connected()
            evil.driver.join(room)
            await evil.wait_joined(room)
            ids = [evil.say(room, text) for text in HOSTILE]
            await evil.wait_acked(ids)
            screen = await t.wait_screen(lambda s: "cr ␍ overwrite after" in s,
                                         what="the whole corpus")
            assert await t.fmt("#{pane_title}") == title, "the pane title was changed"
            assert "PWNED" not in await t.fmt("#{pane_title}#{window_name}")
            assert (await t.run("list-buffers")).strip() == "", "OSC 52 reached tmux"
            assert await t.fmt("#{pane_dead}") == "0", "the app died"
            # Not cleared and not rewritten: our own line and the status line are there,
            # and the hostile lines show their escapes as inert symbols.
            assert "tester: hello from a real terminal" in screen
            assert "connected" in screen and f"#{room}" in screen
            assert "␛]2;PWNED␇ after" in screen
            assert "[@click=app.quit]click me[/] after" in screen
            assert "bidi evil after" in screen and "zwj zwj after" in screen
            assert not re.search(r"[\x00-\x08\x0b-\x1f\x7f]", screen)
            # Typing still works, and the echo is quick while 50 messages/s arrive.
            quiet, busy = await _echo_during_flood(t, evil, room)
        await t.run("send-keys", "-t", "main", "C-q")
        await t.wait_screen(lambda s: "connected" not in s, timeout=10, what="the app quit")
    quiet.sort()
    busy.sort()
    measure("real terminal key->echo p50, quiet", quiet[len(quiet) // 2] * 1000, "ms")
    measure("real terminal key->echo p50 during 50 msg/s", busy[len(busy) // 2] * 1000, "ms")
    measure("real terminal key->echo max during 50 msg/s", busy[-1] * 1000, "ms")
    assert busy[len(busy) // 2] < 0.25


async def _type_and_time(t: Tmux, text: str, typed: str = "") -> list[float]:
    """Send one key at a time; time until the pane shows it in the input line (which
    already holds ``typed``)."""
    latencies: list[float] = []
    for ch in text:
        typed += ch
        t0 = time.monotonic()
        await t.run("send-keys", "-t", "main", "-l", ch)
        while typed not in _input_line(await t.screen()):
            if time.monotonic() - t0 > 5:
                raise AssertionError(f"no echo of {typed!r}")
        latencies.append(time.monotonic() - t0)
    return latencies


async def _echo_during_flood(t: Tmux, evil: Any, room: str) -> tuple[list[float], list[float]]:
    quiet = await _type_and_time(t, "echo")
    async with anyio.create_task_group() as tg:

        async def flood() -> None:
            start = time.monotonic()
            n = 0
            while True:
                n += 1
                evil.say(room, f"flood {n}")
                await anyio.sleep(max(0.0, start + n * 0.02 - time.monotonic()))

        tg.start_soon(flood)
        await anyio.sleep(0.3)
        busy = await _type_and_time(t, "test", "echo")
        tg.cancel_scope.cancel()
    await t.run("send-keys", "-t", "main", "Enter")
    await t.wait_screen(lambda s: "tester: echotest" in s, what="sent after the flood")
    return quiet, busy
