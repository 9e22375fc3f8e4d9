"""The browser client's pure parts on CPython (no Chromium): line rendering, the
the wheel build, and static checks of the page's files."""

from __future__ import annotations

import ast
import importlib
import io
import re
import zipfile
from collections.abc import Iterator
from types import ModuleType

import pytest

from tests.browser.browsers import WEB, load_build_module
from tuitalk.protocol import Msg
from tuitalk.sanitize import sanitize

STATIC = WEB / "static"


@pytest.fixture(scope="module")
def web_pkg() -> Iterator[None]:
    with pytest.MonkeyPatch.context() as mp:
        mp.syspath_prepend(str(WEB))
        yield


def mod(name: str) -> ModuleType:
    return importlib.import_module(f"tuitalk_web.{name}")


# -- rendering ----------------------------------------------------------------------------------


def msg(kind: str, text: str, name: str = "ada") -> Msg:
    return Msg(room="r", epoch="e", seq=1, id="abcdefgh", user="0123456789abcdef",
               name=name, kind=kind, text=text, ts=1_700_000_000_000)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("kind", "text", "body"),
    [
        ("text", "hi <b>x</b>\x1b[2J", sanitize("hi <b>x</b>\x1b[2J")),
        ("me", "waves\u202e", "waves"),
        ("join", "", "joined"),
        ("leave", "", "left"),
        ("nick", "old\u200bname", "was oldname, now ada"),
    ],
)
def test_lines_are_sanitised_text(web_pkg: None, kind: str, text: str, body: str) -> None:
    line = mod("render").line_for(msg(kind, text))
    assert line.body == body
    assert line.kind == kind
    assert line.uid == "#0123"
    assert re.fullmatch(r"\d\d:\d\d", line.clock)


def test_names_are_one_sanitised_line(web_pkg: None) -> None:
    line = mod("render").line_for(msg("text", "x", name="a\nb\u202ec\x07"))
    assert line.nick == "a bc\u2407"


def test_nick_colours_stay_in_the_palette(web_pkg: None) -> None:
    render = mod("render")
    colours = {render.nick_colour(f"{i:016x}") for i in range(200)}
    assert colours == set(range(render.NICK_COLOURS))


# -- the wheels ------------------------------------------------------------------------------------


def test_core_wheel_holds_exactly_the_core_modules_and_builds_reproducibly() -> None:
    build = load_build_module()
    first, second = build.planned(), build.planned()
    assert first == second
    core = next(data for path, data in first.items() if path.name.startswith("tuitalk_core-"))
    with zipfile.ZipFile(io.BytesIO(core)) as zf:
        names = zf.namelist()
        modules = [n for n in names if not n.startswith("tuitalk_core-")]
        assert sorted(modules) == sorted(build.CORE_MODULES)
        for m in modules:
            source = zf.read(m).decode()
            assert not re.search(r"^\s*(import|from)\s+(js|pyodide|anyio|websockets)\b",
                                 source, re.MULTILINE), m
            assert source == (WEB.parent.parent / m).read_text()
        record = zf.read(next(n for n in names if n.endswith("RECORD"))).decode()
        assert len(record.splitlines()) == len(names)


# -- static checks of the page ---------------------------------------------------------------------

_SINKS = ("innerHTML", "outerHTML", "insertAdjacentHTML", "write", "writeln", "srcdoc",
          "createContextualFragment", "setHTMLUnsafe", "parseHTMLUnsafe")
_JS_SINKS = re.compile(r"\.(" + "|".join(_SINKS) + r")\b")


def test_no_markup_sinks_in_the_client() -> None:
    """Text reaches the DOM as text: no attribute or call that parses markup, anywhere."""
    py_files = list((WEB / "tuitalk_web").glob("*.py"))
    assert len(py_files) >= 6  # the glob found the package
    for f in py_files:
        tree = ast.parse(f.read_text())
        used = {n.attr for n in ast.walk(tree) if isinstance(n, ast.Attribute)}
        used |= {n.value for n in ast.walk(tree)  # setattr(node, "innerHTML", ...)
                 if isinstance(n, ast.Constant) and n.value in _SINKS}
        assert not used & set(_SINKS), (f, used & set(_SINKS))
    for f in STATIC.glob("*.js"):
        assert not _JS_SINKS.search(f.read_text()), f


def test_page_uses_relative_urls_only_and_no_inline_script() -> None:
    html = (STATIC / "index.html").read_text()
    for url in re.findall(r'(?:src|href)="([^"]*)"', html):
        assert not url.startswith(("/", "http:", "https:", "//")), url
    assert "<script>" not in html and "<script " not in html.replace(
        '<script type="module" src="app.js"></script>', "")
    assert re.search(r"\son[a-z]+=", html) is None  # no inline handlers
    for f in [*STATIC.glob("*.js"), *STATIC.glob("*.css"), STATIC / "index.html"]:
        assert not re.search(r"https?://(?!www\.w3\.org/2000/svg)", f.read_text()), f
    js = (STATIC / "app.js").read_text()
    assert 'import("./pyodide/pyodide.mjs")' in js
    assert "packageBaseUrl" in js and "indexURL" in js


def test_page_landmarks_and_labels() -> None:
    html = (STATIC / "index.html").read_text()
    assert '<html lang="en">' in html
    assert 'role="status" aria-live="polite"' in html
    assert '<label for="input"' in html
    assert "<main" in html and "<nav" in html and "<header" in html
    view = (WEB / "tuitalk_web" / "view.py").read_text()
    assert 'role="log"' in view
