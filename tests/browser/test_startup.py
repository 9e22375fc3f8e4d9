"""Start-up: time to interactive and bytes on the wire, cold and warm; the loading progress;
the page served by another HTTP server under another path.

Time to interactive (TTI) is measured in the page, from navigation start to the moment the
input is usable *and* the server's ``welcome`` has arrived (the later of the
``tuitalk:started`` and ``tuitalk:ready`` performance marks). Targets from the issue: 3 s
cold, 1.5 s warm, on the local cluster. The assertions below are looser ceilings that catch
regressions (a lost cache, a blocking step) without failing on a busy 2-core CI machine;
the measured numbers are printed at the end of the run.
"""

from __future__ import annotations

import functools
import http.server
import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

from tests.browser.browsers import WEB, Web

pytestmark = [pytest.mark.anyio, pytest.mark.integration, pytest.mark.browser]

COLD_TARGET_S = 3.0
WARM_TARGET_S = 1.5
#: Ceilings asserted (several times the targets: a loaded machine must not fail the suite).
COLD_CEILING_S = 20.0
WARM_CEILING_S = 10.0

_PROGRESS_JS = """
() => new Promise((resolve) => {
  const seen = [];
  const tick = () => {
    const bar = document.getElementById('boot-progress');
    const boot = document.getElementById('boot');
    if (bar) seen.push([bar.value, boot.hidden, document.getElementById('boot-label').textContent]);
    if (boot && boot.hidden) resolve(seen); else setTimeout(tick, 25);
  };
  tick();
})
"""


async def test_time_to_interactive_and_bytes_cold_and_warm(
    web: Web, tmp_path: Path, measure: Any,
) -> None:
    profile = tmp_path / "returning-visitor"
    profile.mkdir()
    first = await web.user("cold", profile=profile)
    await first.page.goto(web.base_url + "#startup", wait_until="commit")
    progress = await first.page.evaluate(_PROGRESS_JS)
    cold = await first.until_ready()
    cold_bytes = await first.page.evaluate("window.tuitalk.bytes()")
    marks = await first.page.evaluate("window.tuitalk.timings()")
    # A first visit restores the snapshot the server ships (build_snapshot.py) ...
    assert await first.page.evaluate("window.tuitalk.snapshot()") == "fetched"
    assert "from-snapshot" in marks and "pyodide" not in marks
    # ... and keeps it in Cache Storage once the chat is up.
    await first.wait_for("window.tuitalk.snapshot() === 'stored'", timeout_s=60)
    await first.context.close()
    web.users.remove(first)

    # The loading indicator moved while Pyodide booted, and said what it was doing.
    values = [v for v, _hidden, _label in progress]
    assert any(0 < v < 100 for v in values), values[:20]
    assert values == sorted(values), "the progress bar went backwards"
    assert any("Python runtime" in label for _v, _h, label in progress)

    # A returning visitor: the same profile (HTTP cache, code cache, identity), new browser.
    again = await web.user("warm", profile=profile)
    warm = await again.open("#startup")
    warm_bytes = await again.page.evaluate("window.tuitalk.bytes()")
    assert await again.page.evaluate("window.tuitalk.snapshot()") == "restored"
    reload_s = await again.reload()
    reload_bytes = await again.page.evaluate("window.tuitalk.bytes()")

    measure("cold time to interactive", cold)
    measure("cold: Python restored from the shipped snapshot", marks["from-snapshot"] / 1000)
    measure("cold bytes transferred", cold_bytes / 1e6, "MB")
    measure("warm (returning visitor) time to interactive", warm)
    measure("warm bytes transferred", warm_bytes / 1e3, "kB")
    measure("reload time to interactive (from the snapshot too)", reload_s)
    measure("reload bytes transferred", reload_bytes / 1e3, "kB")
    measure(f"cold within the {COLD_TARGET_S} s target (1 = yes)", float(cold <= COLD_TARGET_S),
            "")
    measure(f"warm within the {WARM_TARGET_S} s target (1 = yes)", float(warm <= WARM_TARGET_S),
            "")

    # Pyodide (6.4 MB gzipped) and the snapshot (6.2 MB gzipped), each once.
    assert 8e6 < cold_bytes < 20e6, cold_bytes
    # Warm: the interpreter comes from the start-up snapshot, the Pyodide files from the
    # HTTP cache (nginx: max-age on /pyodide/); only the no-cache page files are revalidated.
    assert warm_bytes < 100e3 and reload_bytes < 100e3, (warm_bytes, reload_bytes)
    assert cold < COLD_CEILING_S and warm < WARM_CEILING_S and reload_s < WARM_CEILING_S
    web.assert_no_errors()


class _StaticHandler(http.server.SimpleHTTPRequestHandler):
    # Python's defaults lack the module and WebAssembly types a browser insists on.
    extensions_map = {**http.server.SimpleHTTPRequestHandler.extensions_map,
                      ".mjs": "text/javascript", ".js": "text/javascript",
                      ".wasm": "application/wasm", ".json": "application/json"}

    def log_message(self, format: str, *args: Any) -> None:
        return


@contextmanager
def other_server(root: Path) -> Iterator[str]:
    handler = functools.partial(_StaticHandler, directory=str(root))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


async def test_page_boots_from_another_server_under_a_subpath(web: Web, tmp_path: Path) -> None:
    """Python's http.server serving static/ (its pyodide/ link included) at /chat/: every
    asset URL is relative, and the WebSocket URL follows the page's host."""
    root = tmp_path / "site"
    root.mkdir()
    os.symlink(WEB / "static", root / "chat")
    u = await web.user("elsewhere", warm=False)
    with other_server(root) as origin:
        await u.page.goto(origin + "/chat/")
        await u.wait_for("() => document.getElementById('boot').hidden", timeout_s=60)
        await u.wait_for("() => document.getElementById('status').dataset.alarm === '1'")
        status = await u.page.inner_text("#status")
        assert not await u.page.locator("#input").is_disabled()
        requested = [r for r in web.requested if r.startswith(("http", "ws"))]
    port = urlsplit(origin).port
    assert f"ws://127.0.0.1:{port}/ws" in requested
    assert all(urlsplit(r).port == port for r in requested), requested
    assert all(urlsplit(r).path.startswith("/chat/") for r in requested
               if r.startswith("http")), requested
    assert "Cannot reach the server" in status
    assert not web.page_errors


async def test_without_a_shipped_snapshot_the_page_boots_python_and_makes_its_own(
    web: Web, tmp_path: Path,
) -> None:
    """A server that ships no snapshot (the manifest names none): the first visit boots
    Python itself, then a worker makes the snapshot that the next visit restores."""
    profile = tmp_path / "no-shipped-snapshot"
    profile.mkdir()
    first = await web.user("fresh", profile=profile)

    async def without_snapshot(route: Any) -> None:
        resp = await route.fetch()
        manifest = await resp.json()
        assert "snapshot" in manifest  # what this test takes away
        del manifest["snapshot"]
        await route.fulfill(response=resp, json=manifest)

    await first.page.route("**/wheels/manifest.json", without_snapshot)
    await first.open("#fresh")
    marks = await first.page.evaluate("window.tuitalk.timings()")
    assert "pyodide" in marks and "from-snapshot" not in marks
    assert not [u for u in web.requested if "/snapshot/" in u]
    await first.wait_for("window.tuitalk.snapshot() === 'stored'", timeout_s=60)
    await first.context.close()
    web.users.remove(first)

    again = await web.user("fresh-again", profile=profile)
    await again.open("#fresh")
    assert await again.page.evaluate("window.tuitalk.snapshot()") == "restored"
    web.assert_no_errors()
