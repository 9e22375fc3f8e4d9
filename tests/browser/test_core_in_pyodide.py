"""The core's own unit tests, run by pytest inside Pyodide in Chromium.

"Runs unchanged in Pyodide" is checked, not assumed: the page's ``tuitalk_core`` wheel (the
one the chat page loads) is installed in Pyodide next to pytest and hypothesis, and the real
files of :data:`UNIT_FILES` (protocol, sanitiser, session, command parser) run there.
Every test the host collects must have run there too, and passed, except the ones
``pyodide_runner.SKIP_IN_PYODIDE`` names, which must be skipped for exactly that reason.
"""

from __future__ import annotations

import io
import json
import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path
from typing import Any

import anyio
import pytest
from playwright.async_api import Route

from tests.browser import pyodide_runner
from tests.browser.browsers import Built, Web, load_web_module
from tuitalk.launcher.cluster import LocalCluster, repo_root

pytestmark = [pytest.mark.anyio, pytest.mark.integration, pytest.mark.browser]

UNIT_FILES = [
    "tests/unit/test_protocol.py",
    "tests/unit/test_sanitize.py",
    "tests/unit/client/test_session.py",
    "tests/unit/client/test_session_paths.py",
    "tests/unit/client/test_commands.py",
]
PREFIX = "/__pyodide_tests__/"

PAGE = """<!doctype html><meta charset="utf-8"><title>core tests in Pyodide</title>
<script type="module">
try {
  const { loadPyodide } = await import("/pyodide/pyodide.mjs");
  const base = new URL("/pyodide/", location).href;
  const py = await loadPyodide({ indexURL: base, packageBaseUrl: base,
                                 stdout: (s) => console.log(s), stderr: (s) => console.log(s) });
  const extractDir = py.runPython("__import__('site').getsitepackages()[0]");
  const manifest = await (await fetch("/wheels/manifest.json")).json();
  for (const w of manifest.wheels) {  // tuitalk_core and tuitalk_web, as the chat page
    py.unpackArchive(await (await fetch("/wheels/" + w.name)).arrayBuffer(), "wheel",
                     { extractDir });
  }
  for (const name of TEST_WHEELS) {
    py.unpackArchive(await (await fetch("wheels/" + name)).arrayBuffer(), "wheel",
                     { extractDir });
  }
  for (const name of ["repo.zip", "pyodide_runner.py"]) {
    const data = new Uint8Array(await (await fetch(name)).arrayBuffer());
    py.FS.writeFile("/tmp/" + name, data);
  }
  py.runPython("import sys; sys.path.insert(0, '/tmp')");
  const runner = py.pyimport("pyodide_runner");
  const result = JSON.parse(runner.run(py.toPy(FILES)));
  result.guard = JSON.parse(runner.guard_probe());
  // Last, because when it fails it takes the runtime down with it.
  try {
    result.deep_nesting = runner.deep_nesting_probe();
  } catch (e) {
    result.deep_nesting = "crashed: " + String(e).slice(0, 200);
  }
  window.result = JSON.stringify(result);
} catch (e) {
  window.result = JSON.stringify({ error: String(e && e.stack || e) });
}
</script>"""


def _zip(files: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in files.items():
            zf.writestr(name, data)
    return buf.getvalue()


def pytest_ini() -> bytes:
    """The project's pytest settings, minus plugins that are not shipped to Pyodide."""
    pyproject = tomllib.loads((repo_root() / "pyproject.toml").read_text())
    opts = pyproject["tool"]["pytest"]["ini_options"]
    lines = ["[pytest]", "addopts = " + " ".join(opts.get("addopts", [])),
             f"xfail_strict = {str(opts.get('xfail_strict', False)).lower()}",
             "filterwarnings =", *[f"    {w}" for w in opts.get("filterwarnings", [])],
             "markers =", *[f"    {m}" for m in opts.get("markers", [])]]
    return ("\n".join(lines) + "\n").encode()


async def _collect_into(out: list[list[str]]) -> None:
    """The host's node ids for the same files (run in a thread, while Pyodide works)."""
    out.append(await anyio.to_thread.run_sync(host_collection))


def host_collection() -> list[str]:
    out = subprocess.run(
        [sys.executable, "-m", "pytest", "--collect-only", "-q", "-p", "no:cacheprovider",
         *UNIT_FILES], cwd=repo_root(), capture_output=True, text=True, timeout=120,
        check=True)
    return [line for line in out.stdout.splitlines() if "::" in line]


def build_assets() -> dict[str, bytes]:
    root = repo_root()
    wheels = load_web_module("pyodide_test_wheels").ensure()
    page = PAGE.replace("TEST_WHEELS", json.dumps([w.name for w in wheels]))
    return {
        "index.html": page.replace("FILES", json.dumps(UNIT_FILES)).encode(),
        **{f"wheels/{w.name}": w.read_bytes() for w in wheels},
        "repo.zip": _zip({**{f: (root / f).read_bytes() for f in UNIT_FILES},
                          "pytest.ini": pytest_ini()}),
        "pyodide_runner.py": Path(pyodide_runner.__file__).read_bytes(),
    }


@pytest.fixture(scope="module")
async def pyodide_run(
    cluster: LocalCluster, web_built: Built, tmp_path_factory: pytest.TempPathFactory,
) -> dict[str, Any]:
    """One Pyodide page running the unit tests and the probes; its JSON report."""
    assets = build_assets()
    content_types = {"html": "text/html", "py": "text/plain", "zip": "application/zip",
                     "whl": "application/zip"}

    async def serve(route: Route) -> None:
        name = route.request.url.split(PREFIX, 1)[1]
        await route.fulfill(body=assets[name],
                            content_type=content_types[name.rsplit(".", 1)[1]])

    async with Web(cluster.http_url, tmp_path_factory.mktemp("pyodide-tests"), None) as web:
        u = await web.user("pyodide-tests", warm=False)
        log: list[str] = []
        u.page.on("console", lambda m: log.append(m.text))
        await u.context.route(f"**{PREFIX}**", serve)
        await u.page.goto(web.base_url.rstrip("/") + PREFIX + "index.html")
        host: list[list[str]] = []
        async with anyio.create_task_group() as tg:
            tg.start_soon(_collect_into, host)
            await u.page.wait_for_function("window.result !== undefined", timeout=180_000)
        result: dict[str, Any] = json.loads(await u.page.evaluate("window.result"))
        web.assert_all_local()
    assert "error" not in result, "\n".join([*log[-40:], result.get("error", "")])
    result["host_collected"] = host[0]
    result["log"] = log
    return result


async def test_core_unit_tests_pass_inside_pyodide(
    pyodide_run: dict[str, Any], web_built: Built, measure: Any,
) -> None:
    result = pyodide_run
    # The code under test is the page's wheel: exactly the core modules, byte for byte the
    # repository's sources when the session built it.
    assert result["platform"] == "emscripten"
    assert result["python"].startswith("3.14")
    assert "site-packages" in result["core_dir"]
    assert result["core_files"] == web_built.core_digests

    # Every host test ran in Pyodide; all passed but the named, explained skips.
    assert result["collected"] == result["host_collected"]
    assert not result["failures"], "\n\n".join(result["failures"].values())
    assert result["exit_code"] == 0, "\n".join(result["log"][-60:])
    skipped = {k for k, v in result["outcomes"].items() if v == "skipped"}
    assert skipped == set(pyodide_runner.SKIP_IN_PYODIDE)
    for nodeid, reason in result["skips"].items():
        assert pyodide_runner.SKIP_IN_PYODIDE[nodeid] in reason
    passed = [k for k, v in result["outcomes"].items() if v == "passed"]
    assert len(passed) == len(result["collected"]) - len(skipped)
    measure("core unit tests passed in Pyodide", len(passed), "tests")
    measure("core unit tests skipped in Pyodide (explained)", len(skipped), "tests")


async def test_browser_driver_refuses_frames_that_would_kill_pyodide(
    pyodide_run: dict[str, Any],
) -> None:
    """tuitalk_web.guard, run in Pyodide: deep nesting refused, real frames let through."""
    assert pyodide_run["guard"] == {"deep": True, "brackets_in_text": False,
                                    "history_frame": False}


async def test_deeply_nested_frame_is_refused_not_fatal(pyodide_run: dict[str, Any]) -> None:
    assert pyodide_run["deep_nesting"] == "bad_json"
