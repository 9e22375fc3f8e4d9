"""Browsers for the tests: headless system Chromium (/usr/bin/chromium) through Playwright.

Every test gets a :class:`Web`: it starts Playwright, opens one Chromium per user, each with
its own profile directory (own ``localStorage`` and identity), and records every URL any of
them requested. No request may leave 127.0.0.1: Chromium resolves every other host name to
"not found" (``--host-resolver-rules``), and each test asserts that nothing else was even
attempted. (Playwright's request interception is not used for that, because it disables the
HTTP cache and so would make the warm-start measurement meaningless.)

Booting Pyodide from an empty profile takes seconds; users therefore start from a copy of a
profile that visited the page once per session (``profile_template``): HTTP cache, code
cache and the page's start-up snapshot (Cache Storage), but not its ``localStorage``, so
they are returning visitors without an identity. Tests that measure a cold start ask for an
empty profile (``warm=False``).
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path
from types import ModuleType
from typing import Any
from urllib.parse import urlsplit

from playwright.async_api import BrowserContext, Page, async_playwright

from tuitalk.launcher.cluster import repo_root

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox", "--disable-gpu", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--no-first-run",
    "--disable-quic", "--disable-features=Translate,OptimizationHints,MediaRouter",
    # Any host but the loopback address fails to resolve: nothing can leave the machine.
    "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1",
]
VIEWPORT = {"width": 1100, "height": 700}
WEB = repo_root() / "clients" / "web"
ARTIFACTS = repo_root() / "var" / "artifacts"
#: A page boots Pyodide in 1.5-3 s on an idle 2-core machine; waits allow for a busy one.
BOOT_TIMEOUT_MS = 60_000
#: Page predicate: at least n messages shown in room r, none of the user's own pending.
SETTLED = ("([r, n]) => window.tuitalk.shown(r).length >= n"
           " && !window.tuitalk.pending(r).length")
#: Profile parts that hold identity; left out when a warmed profile is copied.
_STORAGE = ("Local Storage", "Session Storage", "IndexedDB", "Singleton*", "*.lock", "LOCK")


def load_web_module(name: str) -> ModuleType:
    """A script of clients/web (not a package) as a module."""
    spec = importlib.util.spec_from_file_location(f"clients_web_{name}", WEB / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def load_build_module() -> ModuleType:
    return load_web_module("build_wheel")


class Built:
    """The page as built for this session: the static root and, per core module, the sha256
    of the repository source that went into the page's core wheel. The start-up snapshot
    that the server ships to first visits is made too (``build_snapshot.py``)."""

    def __init__(self) -> None:
        self.static = WEB / "static"
        self.core_digests: dict[str, str] = {}
        for _ in range(3):  # others may edit the sources while this runs: build again
            if self._build():
                return
        raise AssertionError("clients/web/static/wheels keeps going stale")

    def _build(self) -> bool:
        build = load_build_module()
        # A process of its own: it drives Chromium through Playwright's sync API, which
        # refuses to run inside the tests' event loop.
        subprocess.run([sys.executable, str(WEB / "build_snapshot.py"), "--strict"],
                       check=True, timeout=300)
        build.build()
        root = WEB.parent.parent
        self.core_digests = {
            m: hashlib.sha256((root / m).read_bytes()).hexdigest() for m in build.CORE_MODULES}
        manifest = json.loads((self.static / "wheels" / "manifest.json").read_text())
        core = next(w["name"] for w in manifest["wheels"] if w["name"].startswith("tuitalk_core"))
        with zipfile.ZipFile(self.static / "wheels" / core) as zf:
            in_wheel = {n: hashlib.sha256(zf.read(n)).hexdigest() for n in zf.namelist()
                        if n.endswith(".py")}
        return in_wheel == self.core_digests


def is_local(url: str) -> bool:
    parts = urlsplit(url)
    if parts.scheme in ("data", "blob", "about", "chrome-error"):
        return True
    return parts.hostname == "127.0.0.1"


class User:
    """One person's browser: a Chromium with its own profile, one page."""

    def __init__(self, web: Web, label: str, context: BrowserContext, page: Page) -> None:
        self.web = web
        self.label = label
        self.context = context
        self.page = page

    async def open(self, path: str = "", wait: bool = True) -> float:
        """Load the page (``path`` relative to the site, e.g. ``#room``); returns seconds
        from navigation to ready (input usable and ``welcome`` received)."""
        await self.page.goto(self.web.base_url + path)
        return await self.until_ready() if wait else 0.0

    async def reload(self) -> float:
        await self.page.reload()
        return await self.until_ready()

    async def until_ready(self) -> float:
        await self.page.wait_for_function(
            "window.tuitalk && (window.tuitalk.state().ready"
            " || document.body.dataset.state === 'failed')", timeout=BOOT_TIMEOUT_MS)
        state = await self.state()
        assert state["ready"], await self.page.inner_text("#status")
        marks = await self.page.evaluate("window.tuitalk.timings()")
        return float(max(marks["ready"], marks["started"])) / 1000

    async def state(self) -> dict[str, Any]:
        return dict(await self.page.evaluate("window.tuitalk.state()"))

    async def type_line(self, text: str) -> None:
        """Type into the input like a person and press Enter."""
        box = self.page.locator("#input")
        await box.fill(text)
        await box.press("Enter")

    async def shown(self, room: str) -> list[tuple[str, int, str]]:
        rows = await self.page.evaluate("r => window.tuitalk.shown(r)", room)
        return [(str(e), int(s), str(i)) for e, s, i in rows]

    async def pending(self, room: str) -> list[dict[str, str]]:
        return list(await self.page.evaluate("r => window.tuitalk.pending(r)", room))

    async def wait_for(self, js: str, arg: Any = None, timeout_s: float = 30.0) -> None:
        await self.page.wait_for_function(js, arg=arg, timeout=timeout_s * 1000)


class Web:
    """Starts users' browsers against one site; records every URL they asked for."""

    def __init__(self, base_url: str, tmp: Path, template: ProfileTemplate | None) -> None:
        self.base_url = base_url
        self.tmp = tmp
        self.template = template
        self.requested: list[str] = []
        self.console_errors: list[str] = []
        self.page_errors: list[str] = []
        self.users: list[User] = []
        self._pw: Any = None

    async def __aenter__(self) -> Web:
        self._pw = await async_playwright().start()
        if self.template is not None:
            await self.template.warm(self._pw, self.base_url)
        return self

    async def __aexit__(self, *exc: object) -> None:
        for u in self.users:
            await u.context.close()
        await self._pw.stop()

    def _profile(self, label: str, warm: bool) -> Path:
        path = self.tmp / f"profile-{label}-{len(self.users)}"
        if warm and self.template is not None:
            shutil.copytree(self.template.path, path, symlinks=True,
                            ignore=shutil.ignore_patterns(*_STORAGE))
        else:
            path.mkdir()
        return path

    async def user(self, label: str, *, warm: bool = True, profile: Path | None = None) -> User:
        context = await self._pw.chromium.launch_persistent_context(
            str(profile or self._profile(label, warm)), executable_path=CHROMIUM,
            headless=True, args=CHROMIUM_ARGS, viewport=VIEWPORT,
        )
        context.on("request", lambda r: self.requested.append(r.url))
        page = context.pages[0] if context.pages else await context.new_page()
        page.on("websocket", lambda ws: self.requested.append(ws.url))
        page.on("pageerror", lambda e: self.page_errors.append(f"{label}: {e}"))
        page.on("console", lambda m: self.console_errors.append(f"{label}: {m.text}")
                if m.type == "error" else None)
        u = User(self, label, context, page)
        self.users.append(u)
        return u

    def assert_all_local(self) -> None:
        remote = [u for u in self.requested if not is_local(u)]
        assert not remote, f"requests left 127.0.0.1: {remote[:5]}"
        assert self.requested, "no request was recorded at all"

    def assert_no_errors(self) -> None:
        assert not self.page_errors, self.page_errors
        assert not self.console_errors, self.console_errors


class ProfileTemplate:
    """A Chromium profile that loaded the page once (HTTP and code caches warm)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.ready = False

    async def warm(self, pw: Any, url: str) -> Path:
        if not self.ready:
            ctx = await pw.chromium.launch_persistent_context(
                str(self.path), executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS,
                viewport=VIEWPORT)
            page = ctx.pages[0] if ctx.pages else await ctx.new_page()
            await page.goto(url + "#warmup")
            await page.wait_for_function("window.tuitalk && window.tuitalk.state().ready",
                                         timeout=BOOT_TIMEOUT_MS)
            # The start-up snapshot is made in the background after the first visit.
            await page.wait_for_function("window.tuitalk.snapshot() === 'stored'",
                                         timeout=BOOT_TIMEOUT_MS, polling=250)
            await ctx.close()
            self.ready = True
        return self.path


def artifact(name: str) -> Path:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    return ARTIFACTS / name


def rel_luminance(rgb: tuple[float, float, float]) -> float:
    def chan(c: float) -> float:
        c /= 255
        return c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4

    r, g, b = (chan(c) for c in rgb)
    return 0.2126 * r + 0.7152 * g + 0.0722 * b


def contrast(fg: tuple[float, float, float], bg: tuple[float, float, float]) -> float:
    a, b = sorted((rel_luminance(fg), rel_luminance(bg)), reverse=True)
    return (a + 0.05) / (b + 0.05)


def room_name(prefix: str = "w") -> str:
    return prefix + os.urandom(4).hex()

