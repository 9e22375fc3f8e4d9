"""Fixtures of the Docker tests: an engine, the images, and one deployment per session.

The session starts its own engine when none runs (and stops exactly that one at the end),
builds the images when they are missing or stale (cheap when they are current), and
brings the compose project up under a project name of its own on free loopback ports, so
it never meets a deployment someone else runs. Every container of that project is removed
at the end, also when a test or the start-up failed; the containers' logs are kept in
``var/artifacts/docker/<project>/``.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterator

import pytest

from chaos.platforms.docker import DockerPlatform
from compose import dockerd, images
from compose.deploy import Deployment, Ports, remove_abandoned
from tests.docker.support import Timings
from tuitalk.launcher.cluster import repo_root

ARTIFACTS = repo_root() / "var" / "artifacts" / "docker"
PROJECT_PREFIX = "tuitalk-test-"
#: Tests send faster than people do (as tests/conftest.py's local cluster allows).
BACKEND_SETTINGS = {
    "TUITALK_RATE_PER_S": "2000", "TUITALK_RATE_BURST": "4000", "TUITALK_STREAM_MAX": "300",
    "TUITALK_PG_FAST": "1",
}


def pytest_configure(config: pytest.Config) -> None:
    # Also registered in pyproject.toml's markers; here so the directory runs on its own.
    config.addinivalue_line("markers", "docker: needs a Docker engine (started by the tests)")


@pytest.fixture(scope="session")
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(scope="session")
def docker_engine() -> Iterator[None]:
    started = dockerd.start()
    try:
        yield
    finally:
        if started:
            dockerd.stop()


@pytest.fixture(scope="session")
def timings(docker_engine: None) -> Timings:
    return Timings(images.ensure_images())


@pytest.fixture(scope="session")
def deployment(timings: Timings) -> Iterator[Deployment]:
    # A run that was killed (CI's time limit, Ctrl-C twice) could not remove its containers,
    # and the engine would restart its backends the next time it starts.
    remove_abandoned(PROJECT_PREFIX)
    project = f"{PROJECT_PREFIX}{secrets.token_hex(3)}"
    d = Deployment(project, Ports.free(), dict(BACKEND_SETTINGS))
    try:
        timings.up_s = d.up()
        yield d
    finally:
        try:
            d.save_logs(ARTIFACTS / project)
        finally:
            d.down()


@pytest.fixture
def platform(deployment: Deployment) -> Iterator[DockerPlatform]:
    """The deployment's platform, healthy at the start of the test and healed after it."""
    p = DockerPlatform(deployment.project)
    p.wait_healthy()
    yield p
    p.heal()
