"""A small chaos run on the Docker platform: the Locust workload (synthetic users that record
histories) against the Docker deployment, the nemesis kills the backend one user is on
(``container.kill()``, started again after 5 s), then the final reads and the checker, as
chaos/scenarios.py does for local processes. The checker's verdict must be *valid*.

The run directory is kept in ``var/artifacts/docker/chaos/<time>/`` (histories, nemesis
windows, Locust reports, checker output, results.json, timeline.png).
"""

from __future__ import annotations

import time
from typing import Any

import pytest

from chaos.platforms.docker import DockerPlatform
from chaos.scenarios import Chaos, Scenario, execute, judge
from compose.deploy import Deployment
from tuitalk.launcher.cluster import repo_root

pytestmark = [pytest.mark.docker]

RUNS = repo_root() / "var" / "artifacts" / "docker" / "chaos"


def _kill_backend_of_u001(c: Chaos) -> None:
    c.notes["target"] = target = c.backend_of("u001")
    c.nemesis.kill(target, down_s=5.0)


SMOKE = Scenario("docker_backend_killed", _kill_backend_of_u001, duration_s=20.0, users=8,
                 seed=7)


@pytest.mark.timeout(240)
def test_chaos_smoke_backend_killed_on_docker(
    platform: DockerPlatform, deployment: Deployment, measure: Any,
) -> None:
    out = RUNS / time.strftime("%Y%m%d-%H%M%S")
    out.mkdir(parents=True, exist_ok=True)
    notes: dict[str, Any] = {"platform": "docker", "project": deployment.project}
    error = execute(SMOKE, out, platform, None, url=platform.url, final_url=platform.url,
                    dsn=platform.pg_dsn, notes=notes)
    result = judge(SMOKE, out, notes, error)
    assert error is None, notes.get("nemesis_error")
    counts = result.results.get("counts", {})
    measure("chaos smoke on docker: acknowledged sends", counts.get("ok", 0), "msgs")
    for window in result.results.get("availability", []):
        resume = window.get("send_resume_s") or {}
        if resume.get("n"):
            measure(f"chaos smoke on docker: {window['fault']} {window['target']} -> "
                    "sends resume p99", resume["p99"])
    assert result.verdict == "valid", f"checker: see {out}/checker.txt"
    assert counts.get("ok", 0) > 0
