"""Fetch the pure-Python wheels that run the core's unit tests inside Pyodide.

``tests/browser/test_core_in_pyodide.py`` runs ``tests/unit/test_protocol.py``,
``test_sanitize.py`` and ``client/test_session.py`` with pytest in the browser. Pyodide's npm
package ships no wheels and micropip is not used, so pytest, hypothesis and their
dependencies are downloaded once, as ``py3-none-any`` wheels, into :data:`DEST`
(``clients/web/build/``, not committed), and the test serves them to the page.

Versions are pinned; they match the host's dev dependencies except hypothesis: from 6.156 on
it ships a compiled extension, so 6.155.7, its last pure-Python release, is used in Pyodide.

Usage (``./run`` calls it; idempotent, no network when everything is present)::

    python clients/web/pyodide_test_wheels.py
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Final

DEST: Final = Path(__file__).resolve().parent / "build" / "pyodide-test-wheels"
PINS: Final = (
    "pytest==9.2.0",
    "pluggy==1.7.0",
    "iniconfig==2.3.1",
    "packaging==26.4",
    "pygments==2.21.0",
    "sortedcontainers==2.4.0",
    "hypothesis==6.155.7",
)


def _present(pin: str) -> Path | None:
    name, version = pin.split("==")
    found = sorted(DEST.glob(f"{name}-{version}-*.whl"))
    return found[0] if found else None


def missing() -> list[str]:
    return [pin for pin in PINS if _present(pin) is None]


def ensure() -> list[Path]:
    """The wheels, downloading the missing ones with pip (raises if pip fails)."""
    need = missing()
    if need:
        DEST.mkdir(parents=True, exist_ok=True)
        subprocess.run(
            [sys.executable, "-m", "pip", "download", "--quiet", "--disable-pip-version-check",
             "--no-deps", "--only-binary=:all:", "--platform", "any",
             "--python-version", "3.14", "--implementation", "py", "--dest", str(DEST),
             *need],
            check=True,
        )
    wheels = [_present(pin) for pin in PINS]
    absent = [pin for pin, w in zip(PINS, wheels, strict=True) if w is None]
    if absent:
        raise RuntimeError(f"pip did not fetch {absent}")
    return [w for w in wheels if w is not None]


if __name__ == "__main__":
    for wheel in ensure():
        sys.stdout.write(f"{wheel.name}\n")
