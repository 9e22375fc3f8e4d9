"""The chaos scenarios as tests. Each asserts the delivery contract holds and reports
its timings; the run directory is kept under chaos/store/<scenario>/<time>/."""

from __future__ import annotations

import pytest

from chaos.conftest import record
from chaos.scenarios import SCENARIOS, Scenario, run_scenario


def _params() -> list[object]:
    out: list[object] = []
    for s in SCENARIOS:
        marks = [pytest.mark.smoke] if s.smoke else [pytest.mark.slow]
        out.append(pytest.param(s, id=s.name, marks=marks))
    return out


@pytest.mark.timeout(240)
@pytest.mark.parametrize("scenario", _params())
def test_scenario(scenario: Scenario) -> None:
    result = run_scenario(scenario)
    record(result.summary() + f"  -> {result.out}")
    assert result.error is None, f"the nemesis failed: {result.notes.get('nemesis_error')}"
    assert result.verdict == "valid", (
        f"{scenario.name}: checker says {result.verdict}; see {result.out}/checker.txt"
    )
