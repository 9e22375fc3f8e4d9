"""Fixtures for the TUI tests: an app on an in-memory server, and waiting helpers."""

from __future__ import annotations

import tempfile
import time
from collections.abc import Callable
from datetime import UTC
from pathlib import Path
from typing import Any

import pytest
from textual.pilot import Pilot
from tuitalk_cli.app import TuiTalkApp
from tuitalk_cli.config import CliConfig

from tests.tui.fakes import FakeServer

FAKE_URL = "ws://fake.invalid/ws"

try:
    import pytest_textual_snapshot
except ImportError:  # the snapshot tests then fail with "fixture 'snap_compare' not found"
    pytest_textual_snapshot = None
else:
    # pytest-textual-snapshot 1.0 names its extension with syrupy 4's ``_file_extension``;
    # syrupy >= 5 (the one that works with pytest 9) reads ``file_extension``, else the
    # baselines would be written as .raw files.
    pytest_textual_snapshot.SVGImageExtension.file_extension = "svg"


def pytest_configure(config: pytest.Config) -> None:
    # The plugin writes its HTML diff report into the working directory (the repository
    # root) by default; keep the tree clean and put it in the temp directory instead.
    if pytest_textual_snapshot is not None and \
            config.getoption("--snapshot-report") == "snapshot_report.html":
        config.option.snapshot_report = str(Path(tempfile.gettempdir()) /
                                            "tuitalk-snapshot-report.html")


@pytest.fixture
def server() -> FakeServer:
    return FakeServer()


def make_app(server: FakeServer, state_dir: Path, **config: Any) -> TuiTalkApp:
    """An app on the fake server; UTC times so screens are the same everywhere."""
    cfg = CliConfig(state_dir=state_dir, url=FAKE_URL, tz=UTC, **config)
    return TuiTalkApp(cfg, link_factory=server.link_factory())


async def wait_for(pilot: Pilot[Any], pred: Callable[[], Any], timeout: float = 5.0,
                   what: str = "") -> Any:
    """Let the app run until ``pred()`` is true (checked between short pauses)."""
    deadline = time.monotonic() + timeout
    while True:
        value = pred()
        if value:
            await pilot.pause()
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what or pred}")
        await pilot.pause(0.01)


def screen_text(app: TuiTalkApp) -> str:
    """What the terminal shows, as plain text (from the SVG-free console export)."""
    return app.export_screenshot()


def timeline_text(app: TuiTalkApp) -> list[str]:
    """The plain text of every row in the current timeline model (not just visible)."""
    room = app.model.view()
    rows = [it.prefix.plain + it.body.plain for it in room.items]
    rows += [it.prefix.plain + it.body.plain for it in room.pending.values()]
    return rows


def visible_rows(app: TuiTalkApp) -> list[str]:
    """The timeline rows currently on screen, as text."""
    t = app.timeline
    return ["".join(seg.text for seg in t.render_line(y)).rstrip()
            for y in range(t.size.height)]
