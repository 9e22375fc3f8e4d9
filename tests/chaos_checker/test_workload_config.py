"""The workload's configuration from and to the environment."""

from __future__ import annotations

from pathlib import Path

import pytest

from chaos.workload.config import DEFAULT_URL, WorkloadConfig, parse_rooms
from chaos.workload.recorder import message_text, sent_at
from chaos.workload.run import WorkloadSpec, locust_argv, new_rooms


def test_defaults() -> None:
    cfg = WorkloadConfig.from_env({})
    assert cfg.url == DEFAULT_URL
    assert cfg.out is None
    assert len(cfg.rooms) == 4


def test_round_trip_through_the_environment(tmp_path: Path) -> None:
    cfg = WorkloadConfig(url="ws://h:1/ws", out=tmp_path, rooms=("a", "b"), rate_per_s=2.5,
                         churn=0.1, seed=9, max_sends=7, max_outbox=3, drain_s=1.5,
                         barrier_s=2.0, catchup_s=3.0)
    assert WorkloadConfig.from_env(cfg.to_env()) == cfg


def test_host_overrides_the_url() -> None:
    cfg = WorkloadConfig.from_env({"TUITALK_URL": "ws://a/ws"}, host="ws://b/ws")
    assert cfg.url == "ws://b/ws"


@pytest.mark.parametrize(("spec", "rooms"), [
    ("", ()), ("2", ("chaos-0", "chaos-1")), ("x, y ,", ("x", "y")),
])
def test_parse_rooms(spec: str, rooms: tuple[str, ...]) -> None:
    assert parse_rooms(spec) == rooms


@pytest.mark.parametrize("env", [
    {"CHAOS_RATE": "0"}, {"CHAOS_CHURN": "2"}, {"CHAOS_ROOMS": "Bad Room"},
    {"CHAOS_SEED": "x"},
])
def test_bad_values_are_refused(env: dict[str, str]) -> None:
    with pytest.raises(ValueError):  # noqa: PT011 -- each case has its own message
        WorkloadConfig.from_env(env)


def test_new_rooms_are_valid_and_unique() -> None:
    a, b = new_rooms(3), new_rooms(3)
    assert len(set(a)) == 3 and not set(a) & set(b)
    WorkloadConfig(rooms=a)  # validates the names


def test_locust_command_line(tmp_path: Path) -> None:
    cfg = WorkloadConfig(url="ws://h/ws", rooms=("a",), drain_s=1, barrier_s=1, catchup_s=1)
    argv = locust_argv(WorkloadSpec(cfg, users=4, spawn_rate=2, duration_s=5), tmp_path)
    joined = " ".join(argv)
    assert "--headless -u 4 -r 2 -t 5s --stop-timeout 8" in joined
    assert f"--csv {tmp_path}/locust" in joined and "--only-summary" in joined
    assert "--host ws://h/ws" in joined


def test_send_time_travels_in_the_text() -> None:
    text = message_text("u001", 3, 1234.5)
    assert sent_at(text) == 1234.5
    assert sent_at("hello") is None
