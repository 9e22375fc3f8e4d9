"""`pytest chaos`: every scenario is a test; `-m smoke` runs the CI set."""

from __future__ import annotations

import pytest

_RESULTS: list[str] = []


def record(line: str) -> None:
    _RESULTS.append(line)


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if _RESULTS:
        terminalreporter.section("chaos summary")
        for line in _RESULTS:
            terminalreporter.write_line(line)
