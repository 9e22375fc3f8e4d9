"""Runs inside Pyodide (not on the host): pytest over the core's real unit tests.

``test_core_in_pyodide.py`` loads the page's own ``tuitalk_core`` wheel and the
pure-Python wheels of pytest, hypothesis and their dependencies, writes ``/tmp/repo.zip``
(the test files and a pytest.ini), then calls :func:`run` and asserts on the JSON it
returns.

Tests that need an operating system feature WebAssembly does not have are skipped here with
an explicit reason (:data:`SKIP_IN_PYODIDE`); the host test checks that exactly those were
skipped and that everything else passed.
"""

from __future__ import annotations

import hashlib
import importlib
import json
import os
import sys
import zipfile
from typing import Any

REPO = "/home/pyodide/repo"

SKIP_IN_PYODIDE = {
    "tests/unit/client/test_session.py::test_core_imports_no_io_library":
        "spawns a Python subprocess; WebAssembly has no processes",
}


class Collector:
    """A pytest plugin that records each test's outcome and applies the Pyodide skips."""

    def __init__(self) -> None:
        self.outcomes: dict[str, str] = {}
        self.skips: dict[str, str] = {}
        self.failures: dict[str, str] = {}
        self.collected: list[str] = []

    def pytest_configure(self, config: Any) -> None:
        # Imported here, after pytest loaded hypothesis' plugin (importing it earlier would
        # defeat assertion rewriting, a warning, hence an error).
        from hypothesis import settings

        # Timing is not what is tested here: WebAssembly is slower than the host, and
        # there is nowhere to keep a failure database between runs.
        settings.register_profile("pyodide", deadline=None, database=None)
        settings.load_profile("pyodide")

    def pytest_collection_modifyitems(self, items: list[Any]) -> None:
        import pytest

        for item in items:
            self.collected.append(item.nodeid)
            reason = SKIP_IN_PYODIDE.get(item.nodeid)
            if reason is not None:
                item.add_marker(pytest.mark.skip(reason=f"in Pyodide: {reason}"))

    def pytest_runtest_logreport(self, report: Any) -> None:
        if report.skipped:
            self.outcomes[report.nodeid] = "skipped"
            longrepr = report.longrepr
            self.skips[report.nodeid] = str(longrepr[2] if isinstance(longrepr, tuple)
                                            else longrepr)
        elif report.failed:
            self.outcomes[report.nodeid] = "failed"
            self.failures[report.nodeid] = str(report.longrepr)[-3000:]
        elif report.when == "call":
            self.outcomes.setdefault(report.nodeid, "passed")


def run(files: list[str]) -> str:
    with zipfile.ZipFile("/tmp/repo.zip") as zf:
        zf.extractall(REPO)
    importlib.invalidate_caches()
    os.chdir(REPO)
    sys.path.insert(0, REPO)

    import pytest

    import tuitalk

    core_dir = os.path.dirname(tuitalk.__file__)
    core_files = {}
    for dirpath, _dirs, names in os.walk(core_dir):
        for name in sorted(names):
            if name.endswith(".py"):
                path = os.path.join(dirpath, name)
                with open(path, "rb") as f:
                    rel = os.path.relpath(path, os.path.dirname(core_dir))
                    core_files[rel] = hashlib.sha256(f.read()).hexdigest()

    collector = Collector()
    code = pytest.main(
        ["-q", "-p", "no:cacheprovider", "-p", "no:faulthandler", "--capture=sys",
         "-c", "pytest.ini", "--rootdir", REPO, *files],
        plugins=[collector],
    )
    return json.dumps({
        "exit_code": int(code),
        "python": sys.version.split()[0],
        "platform": sys.platform,
        "core_dir": core_dir,
        "core_files": core_files,
        "collected": collector.collected,
        "outcomes": collector.outcomes,
        "skips": collector.skips,
        "failures": collector.failures,
    })


def guard_probe() -> str:
    """The browser driver's guard against frames that would kill the runtime."""
    from tuitalk.protocol import too_deep

    return json.dumps({
        "deep": too_deep('{"t":"pong","x":' + "[" * 10_000 + "]" * 10_000 + "}"),
        "brackets_in_text": too_deep(json.dumps({"t": "msg", "text": "[{" * 500})),
        "history_frame": too_deep(json.dumps(
            {"t": "history", "messages": [{"t": "msg", "seq": i} for i in range(100)]})),
    })


def deep_nesting_probe() -> str:
    """What the core's decoder does with a frame nested 10,000 deep (run last: in Pyodide
    it currently kills the runtime)."""
    from tuitalk import protocol as p
    from tuitalk.errors import RemoteProtocolError

    try:
        p.decode_server('{"t":"pong","x":' + "[" * 10_000 + "]" * 10_000 + "}")
    except RemoteProtocolError as exc:
        return exc.code
    return "decoded"
