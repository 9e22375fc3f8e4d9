"""The deployment itself: built without a registry, up on loopback only, configured as the
local launcher configures its processes."""

from __future__ import annotations

import json
import subprocess
from typing import Any

import pytest

from chaos.platforms.docker import DockerPlatform
from compose import images, render
from compose.deploy import Deployment
from tests.docker.support import Timings

pytestmark = [pytest.mark.docker]


def _listeners() -> list[tuple[str, int]]:
    """``(address, port)`` of every listening TCP socket on the machine."""
    out = subprocess.run(["ss", "-ltnH"], capture_output=True, text=True, check=True).stdout
    found = []
    for line in out.splitlines():
        local = line.split()[3]
        addr, _, port = local.rpartition(":")
        found.append((addr.strip("[]"), int(port)))
    return found


def test_images_current_configs_in_step_and_loopback_only(
    timings: Timings, deployment: Deployment, platform: DockerPlatform, measure: Any,
) -> None:
    for step, seconds in timings.images.seconds.items():
        measure(f"images: {step}", seconds)
    measure("deployment up: compose up -d until every part serves", timings.up_s)

    # A second look builds nothing: the images carry the hash of their inputs.
    again = images.ensure_images()
    assert again.built == [], "rebuilt although nothing changed (or a source was edited mid-run)"
    measure("images: up-to-date check", again.seconds["total"])

    # nginx.conf and redis.conf are the launcher's own output (and committed as such).
    assert render.write(check=True) == []

    # Every port of the deployment, Redis cluster bus included, listens on 127.0.0.1 only.
    ours = set(platform.ports.values()) | {p + 10000 for n, p in platform.ports.items()
                                           if n.startswith("redis-")}
    listening = [(a, p) for a, p in _listeners() if p in ours]
    assert {p for _, p in listening} == ours, "a node is not listening"
    assert all(a == "127.0.0.1" for a, _ in listening), listening

    # Every container runs on the host network (no bridge, no private-range address).
    for node in platform.node_names():
        assert platform.container(node).attrs["HostConfig"]["NetworkMode"] == "host", node

    sizes = {}
    for image in images.IMAGES:
        raw = subprocess.run(["docker", "image", "inspect", image.tag], capture_output=True,
                             text=True, check=True).stdout
        sizes[image.name] = json.loads(raw)[0]["Size"] / 1e6
        measure(f"image size {image.tag}", sizes[image.name], "MB")
