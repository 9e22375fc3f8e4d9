"""Pack the browser client's Python into wheels that the page loads without micropip.

Two wheels go to ``static/wheels/``, built from the repository sources every time they
change, so the browser always runs the same code as the terminal:

- ``tuitalk_core-<ver>-py3-none-any.whl``: exactly the stdlib-only client core
  (:data:`CORE_MODULES`), nothing else of the ``tuitalk`` package;
- ``tuitalk_web-<ver>-py3-none-any.whl``: the browser driver and DOM view
  (``clients/web/tuitalk_web``), which import ``js`` and ``pyodide`` and only run there.

``static/wheels/manifest.json`` names them (with their sha256, used to bust caches) and gives
the sizes of the Pyodide files, which the page uses for its loading progress bar. The build
also links ``static/pyodide`` to ``node_modules/pyodide``, so that any static file server
pointed at ``static/`` serves a working page (nginx maps ``/pyodide/`` itself), and writes
``.gz`` copies of Pyodide's compressible files next to them, for servers that serve
precompressed files (nginx ``gzip_static on``): 13.6 MB on the wire become 6.4 MB.

The output is reproducible (fixed timestamps and order) and only rewritten when its content
changes, so running this on every ``./run`` is cheap. Usage::

    python clients/web/build_wheel.py [--check]

``--check`` builds nothing and exits 1 if the output is missing or stale.
"""

from __future__ import annotations

import base64
import gzip
import hashlib
import io
import json
import re
import sys
import zipfile
from pathlib import Path
from typing import Any, Final

WEB: Final = Path(__file__).resolve().parent
ROOT: Final = WEB.parent.parent
STATIC: Final = WEB / "static"
OUT: Final = STATIC / "wheels"
#: Start-up snapshots made by build_snapshot.py (named by :func:`snapshot_name`).
SNAPSHOTS: Final = STATIC / "snapshot"
PYODIDE: Final = WEB / "node_modules" / "pyodide"

#: The client core: stdlib only, runs unchanged in Pyodide (tuitalk/client/__init__.py says
#: which modules that is). The asyncio driver (tuitalk.client.aio) is deliberately absent.
CORE_MODULES: Final = (
    "tuitalk/__init__.py",
    "tuitalk/errors.py",
    "tuitalk/protocol.py",
    "tuitalk/sanitize.py",
    "tuitalk/client/__init__.py",
    "tuitalk/client/backoff.py",
    "tuitalk/client/commands.py",
    "tuitalk/client/events.py",
    "tuitalk/client/intents.py",
    "tuitalk/client/session.py",
)
#: Pyodide files the page fetches while booting, for the progress bar (name -> bytes).
PYODIDE_BOOT_FILES: Final = (
    "pyodide.mjs", "pyodide.asm.mjs", "pyodide.asm.wasm", "python_stdlib.zip",
    "pyodide-lock.json",
)
#: Pyodide files worth precompressing (python_stdlib.zip is already compressed).
PRECOMPRESS: Final = ("pyodide.asm.wasm", "pyodide.asm.mjs", "pyodide.mjs", "pyodide-lock.json")
_EPOCH: Final = (1980, 1, 1, 0, 0, 0)  # zip's earliest date: reproducible archives


def version() -> str:
    text = (ROOT / "tuitalk" / "__init__.py").read_text(encoding="utf-8")
    found = re.search(r'^__version__ = "([^"]+)"', text, re.MULTILINE)
    if found is None:
        raise SystemExit("tuitalk/__init__.py has no __version__")
    return found.group(1)


def web_modules() -> list[str]:
    return sorted(
        p.relative_to(WEB).as_posix() for p in (WEB / "tuitalk_web").rglob("*.py")
    )


def _record_hash(data: bytes) -> str:
    digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=")
    return "sha256=" + digest.decode()


def build_wheel(dist: str, ver: str, files: dict[str, bytes], summary: str) -> bytes:
    """A pure-Python wheel holding ``files`` (archive path -> content), reproducibly."""
    info = f"{dist}-{ver}.dist-info"
    meta = {
        f"{info}/METADATA": (
            f"Metadata-Version: 2.1\nName: {dist}\nVersion: {ver}\nSummary: {summary}\n"
            "Requires-Python: >=3.11\n"
        ).encode(),
        f"{info}/WHEEL": (
            b"Wheel-Version: 1.0\nGenerator: clients/web/build_wheel.py\n"
            b"Root-Is-Purelib: true\nTag: py3-none-any\n"
        ),
    }
    entries = {**files, **meta}
    record = "".join(f"{name},{_record_hash(data)},{len(data)}\n"
                     for name, data in entries.items())
    record += f"{info}/RECORD,,\n"
    entries[f"{info}/RECORD"] = record.encode()
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as zf:
        for name, data in entries.items():
            zi = zipfile.ZipInfo(name, _EPOCH)
            zi.compress_type = zipfile.ZIP_DEFLATED
            zi.external_attr = 0o644 << 16
            zf.writestr(zi, data)
    return buf.getvalue()


def snapshot_name(manifest: dict[str, Any]) -> str:
    """The file name of the start-up snapshot of ``manifest``'s wheels and Pyodide (the
    page's cache key for it, too: app.js ``snapshotKey``)."""
    wheels = "-".join(w["sha256"][:16] for w in manifest["wheels"])
    return f"{manifest['pyodide']['version']}-{wheels}.bin"


def planned() -> dict[Path, bytes]:
    """Every output file and its content."""
    ver = version()
    core = build_wheel(
        "tuitalk_core", ver, {m: (ROOT / m).read_bytes() for m in CORE_MODULES},
        "TuiTalk protocol, sanitiser and sans-I/O client session (stdlib only)",
    )
    web = build_wheel(
        "tuitalk_web", ver, {m: (WEB / m).read_bytes() for m in web_modules()},
        "TuiTalk browser driver and DOM view (runs in Pyodide)",
    )
    names = {
        "core": f"tuitalk_core-{ver}-py3-none-any.whl",
        "web": f"tuitalk_web-{ver}-py3-none-any.whl",
    }
    sizes = {n: (PYODIDE / n).stat().st_size for n in PYODIDE_BOOT_FILES
             if (PYODIDE / n).exists()}
    pyodide_version = ""
    if (PYODIDE / "package.json").exists():
        pyodide_version = json.loads((PYODIDE / "package.json").read_text())["version"]
    manifest = {
        "version": ver,
        "wheels": [
            {"name": names[key], "sha256": hashlib.sha256(data).hexdigest(),
             "size": len(data)}
            for key, data in (("core", core), ("web", web))
        ],
        "pyodide": {"version": pyodide_version, "sizes": sizes},
    }
    # Named once build_snapshot.py has made it; the page boots Python itself without it.
    snapshot = SNAPSHOTS / snapshot_name(manifest)
    if snapshot.exists():
        manifest["snapshot"] = {"file": f"snapshot/{snapshot.name}",
                                "size": snapshot.stat().st_size}
    return {
        OUT / names["core"]: core,
        OUT / names["web"]: web,
        OUT / "manifest.json": (json.dumps(manifest, indent=1, sort_keys=True) + "\n").encode(),
    }


def _link_pyodide() -> bool:
    link = STATIC / "pyodide"
    if link.is_symlink() or link.exists():
        return False
    link.symlink_to(Path("..") / "node_modules" / "pyodide", target_is_directory=True)
    return True


def _precompress() -> list[Path]:
    written = []
    for name in PRECOMPRESS:
        src = PYODIDE / name
        dst = src.with_name(name + ".gz")
        if not src.exists() or (dst.exists() and dst.stat().st_mtime >= src.stat().st_mtime):
            continue
        tmp = dst.with_suffix(".gz.tmp")
        tmp.write_bytes(gzip.compress(src.read_bytes(), compresslevel=9, mtime=0))
        tmp.replace(dst)
        written.append(dst)
    return written


def build(check: bool = False) -> list[Path]:
    """Write what changed; return the paths written (or, with ``check``, stale)."""
    changed = []
    plan = planned()
    for path, data in plan.items():
        if path.exists() and path.read_bytes() == data:
            continue
        changed.append(path)
        if not check:
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_suffix(path.suffix + ".tmp")
            tmp.write_bytes(data)
            tmp.replace(path)
    if not check:
        # Wheels of older versions would otherwise pile up.
        for old in OUT.glob("*.whl"):
            if old not in plan:
                old.unlink()
                changed.append(old)
        if _link_pyodide():
            changed.append(STATIC / "pyodide")
        changed += _precompress()
    return changed


def main(argv: list[str]) -> int:
    check = "--check" in argv
    changed = build(check=check)
    for path in changed:
        verb = "stale" if check else "wrote"
        sys.stderr.write(f"{verb} {path.relative_to(ROOT)}\n")
    return 1 if check and changed else 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
