"""Make the page's start-up snapshot at build time, so that a first visit starts fast too.

Booting Python in the browser is most of a first visit: about 3-4 s to a ready interpreter
on this machine class (wasm compile plus CPython's own start), against about 1 s when a
memory snapshot of an interpreter that already imported the client is restored instead.
Returning visitors have long had such a snapshot, made by the page itself in a worker after
its first boot (``static/snapshot-worker.js``) and kept in Cache Storage. This script makes
the same snapshot once, here, so that the server can ship it to first-time visitors:

1. serve ``static/`` from a private HTTP server on a free loopback port;
2. open a blank page of it in headless Chromium (``/usr/bin/chromium``, the browser the tests
   drive; Playwright, no browser download) and run ``snapshot-worker.js`` there, exactly as a
   page does, with the wheels ``build_wheel.py`` wrote; the worker PUTs the snapshot back;
3. write ``static/snapshot/<pyodide version>-<core hash>-<web hash>.bin`` and a ``.gz`` copy
   (31 MB become 6 MB on the wire, nginx ``gzip_static``), drop older ones, and let
   ``build_wheel.py`` name the file in ``static/wheels/manifest.json``.

The name carries the Pyodide version and both wheels' hashes (the page's cache key), so a
page never restores an interpreter of other sources. The snapshot holds nothing of a user:
no token, no message, not even a session (the client is imported, never run). What does
differ between interpreters (the ``random`` module's state, the ``str`` hash seed) is not
used by the client for anything that must differ per user: its jitter and ids come from
``random.Random()`` / ``secrets`` created at run time, from the browser's crypto.

Nothing is done when the snapshot of the current wheels exists. Usage::

    python clients/web/build_snapshot.py [--strict]

Without ``--strict`` a failure only warns (the page then boots Python itself, as before, and
makes its own snapshot); ``--strict`` (the tests) makes it an error.
"""

from __future__ import annotations

import functools
import gzip
import http.server
import json
import sys
import threading
import time
from pathlib import Path
from typing import Any, Final

WEB: Final = Path(__file__).resolve().parent
sys.path.insert(0, str(WEB))

import build_wheel  # noqa: E402  (a script beside this one, not a package)

STATIC: Final = build_wheel.STATIC
OUT: Final = build_wheel.SNAPSHOTS
CHROMIUM: Final = "/usr/bin/chromium"
#: As the tests launch it: nothing leaves 127.0.0.1, no background traffic.
CHROMIUM_ARGS: Final = [
    "--no-sandbox", "--disable-gpu", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-quic",
    "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1",
]
#: Booting Pyodide and importing the client takes 3-5 s here; allow for a busy machine.
TIMEOUT_S: Final = 120.0
_PREFIX: Final = "/__snapshot__/"
_PAGE: Final = b"""<!doctype html><meta charset="utf-8"><title>snapshot build</title>
<script type="module" src="/__snapshot__/build.js"></script>"""
_SCRIPT: Final = b"""
const manifest = await (await fetch("/wheels/manifest.json", {cache: "no-store"})).json();
const worker = new Worker("/snapshot-worker.js", {type: "module"});
window.snapshotResult = new Promise((resolve) => { worker.onmessage = (e) => resolve(e.data); });
worker.postMessage({
  base: new URL("/pyodide/", location).href, upload: "/__snapshot__/upload",
  wheels: manifest.wheels.map((w) => new URL(`/wheels/${w.name}?v=${w.sha256.slice(0, 16)}`,
                                             location).href),
});
"""


class BuildError(Exception):
    """The snapshot could not be made (no browser, a boot failure, a time-out)."""


class _Handler(http.server.SimpleHTTPRequestHandler):
    extensions_map = {**http.server.SimpleHTTPRequestHandler.extensions_map,
                      ".mjs": "text/javascript", ".js": "text/javascript",
                      ".wasm": "application/wasm", ".json": "application/json"}
    #: Set by :func:`make`: where the uploaded snapshot lands.
    received: dict[str, bytes]

    def do_GET(self) -> None:
        if self.path.startswith(_PREFIX):
            body, kind = {"build.html": (_PAGE, "text/html"),
                          "build.js": (_SCRIPT, "text/javascript")}.get(
                self.path[len(_PREFIX):], (b"", ""))
            if not kind:
                self.send_error(404)
                return
            self.send_response(200)
            self.send_header("Content-Type", kind)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
            return
        super().do_GET()

    def do_PUT(self) -> None:
        if self.path != _PREFIX + "upload":
            self.send_error(404)
            return
        n = int(self.headers.get("Content-Length", "0"))
        self.received["snapshot"] = self.rfile.read(n)
        self.send_response(204)
        self.end_headers()

    def log_message(self, format: str, *args: Any) -> None:
        return


def make() -> bytes:
    """Boot Pyodide in headless Chromium, import the client, return the memory snapshot."""
    try:
        from playwright.sync_api import Error as PlaywrightError
        from playwright.sync_api import sync_playwright
    except ImportError as exc:
        raise BuildError("playwright is not installed (pip install -e '.[dev]')") from exc
    if not Path(CHROMIUM).exists():
        raise BuildError(f"{CHROMIUM} is missing (apt-get install chromium)")
    received: dict[str, bytes] = {}
    handler = functools.partial(
        type("Handler", (_Handler,), {"received": received}), directory=str(STATIC))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        origin = f"http://127.0.0.1:{server.server_address[1]}"
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            try:
                page = browser.new_page()
                page.goto(origin + _PREFIX + "build.html")
                page.wait_for_function("window.snapshotResult !== undefined",
                                       timeout=TIMEOUT_S * 1000)
                result = page.evaluate("window.snapshotResult")
            except PlaywrightError as exc:
                raise BuildError(f"the browser failed: {exc}") from exc
            finally:
                browser.close()
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)
    if not result.get("ok"):
        raise BuildError(f"the snapshot worker failed: {result.get('error')}")
    data = received.get("snapshot", b"")
    if len(data) != result.get("size"):
        raise BuildError(f"uploaded {len(data)} bytes, the worker made {result.get('size')}")
    return data


def current_name() -> str:
    manifest = json.loads((build_wheel.OUT / "manifest.json").read_text())
    return build_wheel.snapshot_name(manifest)


def build() -> list[Path]:
    """Make the snapshot of the current wheels if it is missing; return the paths written.

    Raises BuildError when it cannot be made.
    """
    build_wheel.build()  # the wheels and manifest this snapshot is of
    name = current_name()
    target, packed = OUT / name, OUT / (name + ".gz")
    written: list[Path] = []
    if not (target.exists() and packed.exists()):
        started = time.monotonic()
        data = make()
        OUT.mkdir(parents=True, exist_ok=True)
        for path, content in ((target, data), (packed, gzip.compress(data, 6, mtime=0))):
            tmp = path.with_name(path.name + ".tmp")
            tmp.write_bytes(content)
            tmp.replace(path)
            written.append(path)
        sys.stderr.write(f"made the start-up snapshot ({len(data) / 1e6:.1f} MB) in "
                         f"{time.monotonic() - started:.1f} s\n")
    for old in OUT.glob("*.bin*"):
        if old not in (target, packed):
            old.unlink()
            written.append(old)
    written += build_wheel.build()  # the manifest now names the snapshot
    return written


def main(argv: list[str]) -> int:
    try:
        changed = build()
    except BuildError as exc:
        sys.stderr.write(f"no start-up snapshot: {exc}\n"
                         "(the page still works; first visits boot Python themselves)\n")
        return 1 if "--strict" in argv else 0
    for path in changed:
        sys.stderr.write(f"wrote {path.relative_to(build_wheel.ROOT)}\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
