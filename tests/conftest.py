"""Shared fixtures. Integration tests get a real local cluster on free ports."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tuitalk.launcher.cluster import ClusterSpec, LocalCluster, repo_root


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def make_cluster(base: Path, **overrides: object) -> LocalCluster:
    web = repo_root() / "clients" / "web"
    spec = ClusterSpec(
        base=base,
        masters=3,
        backends=3,
        fast_postgres=True,
        ephemeral=True,
        # Tests send faster than people do; the rate limit itself has its own test.
        backend_args=["--rate", "2000", "--burst", "4000", "--stream-max", "300"],
        # nginx serves the browser client when it is built (clients/web).
        web_root=web / "static" if (web / "static").is_dir() else None,
        pyodide_dir=web / "node_modules" / "pyodide",
    )
    for k, v in overrides.items():
        setattr(spec, k, v)
    return LocalCluster(spec)


@pytest.fixture(scope="session")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalCluster]:
    """One cluster for the integration session; tests that break a node heal it after."""
    c = make_cluster(tmp_path_factory.mktemp("cluster"))
    c.start()
    try:
        yield c
    finally:
        c.stop()


@pytest.fixture
def healed(cluster: LocalCluster) -> Iterator[LocalCluster]:
    """The shared cluster, restored after the test: dead nodes restarted, frozen thawed."""
    yield cluster
    for name in cluster.node_names():
        proc = cluster.process(name)
        if proc.frozen:
            proc.thaw()
    for name in cluster.node_names():
        if not cluster.process(name).alive():
            cluster.start_node(name)
    cluster.redis.wait_healthy(30)
    for b in cluster.backends:
        cluster.wait_backend_ready(b)


_MEASURED: list[tuple[str, str, float, str]] = []


@pytest.fixture
def measure(request: pytest.FixtureRequest):  # type: ignore[no-untyped-def]
    """Record a measured number; all of them are printed at the end of the run."""

    def record(what: str, value: float, unit: str = "s") -> None:
        _MEASURED.append((request.node.name, what, value, unit))

    return record


def pytest_terminal_summary(terminalreporter) -> None:  # type: ignore[no-untyped-def]
    if not _MEASURED:
        return
    terminalreporter.section("measurements")
    for test, what, value, unit in _MEASURED:
        terminalreporter.write_line(f"{test}: {what} = {value:.3f} {unit}")
