"""Fixtures of the browser tests; the machinery is in :mod:`tests.browser.browsers`."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests.browser.browsers import WEB, Built, ProfileTemplate, Web
from tuitalk.launcher.cluster import LocalCluster


@pytest.fixture(scope="session")
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(scope="session")
def web_built() -> Built:
    """The page's wheels, built from the current sources (cheap when nothing changed)."""
    if not (WEB / "node_modules" / "pyodide" / "pyodide.asm.wasm").exists():
        pytest.fail("clients/web/node_modules/pyodide is missing: run ./run setup")
    return Built()


@pytest.fixture(scope="session")
def profile_template(web_built: Built, tmp_path_factory: pytest.TempPathFactory) -> ProfileTemplate:
    return ProfileTemplate(tmp_path_factory.mktemp("chromium-template"))


@pytest.fixture
async def web(cluster: LocalCluster, profile_template: ProfileTemplate,
              tmp_path: Path) -> AsyncIterator[Web]:
    async with Web(cluster.http_url, tmp_path, profile_template) as w:
        yield w
        w.assert_all_local()


