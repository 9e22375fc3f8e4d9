"""The blocking driver and the synthetic users, against the in-memory peer server.

The peer (loadtests/peer.py) speaks protocol v1 without Redis or PostgreSQL, so these
tests check the driver, the recorder, the end-of-run protocol, the final read and the
checker together in a few seconds; the control run against the real cluster is in
test_workload_control.py.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from chaos.checker import check_run, summary
from chaos.workload import history as h
from chaos.workload.actor import ChatActor, EndBarrier
from chaos.workload.config import WorkloadConfig
from chaos.workload.driver import SyncDriver
from chaos.workload.final import final_read
from loadtests.peer import PeerHandle, serve_in_thread
from tuitalk.client import events as ev
from tuitalk.client.session import ClientSession
from tuitalk.protocol import CloseCode


@pytest.fixture
def peer() -> Iterator[PeerHandle]:
    with serve_in_thread() as handle:
        yield handle


def wait_for(cond: object, timeout_s: float = 5.0) -> None:
    assert callable(cond)
    deadline = time.monotonic() + timeout_s
    while not cond():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.01)


def test_driver_connects_joins_sends_and_stops(peer: PeerHandle) -> None:
    got: list[ev.Event] = []
    session = ClientSession()
    driver = SyncDriver(peer.url, session, on_events=got.extend)
    driver.start()
    try:
        driver.join("lobby")
        wait_for(lambda: any(isinstance(e, ev.RoomJoined) for e in got))
        msg_id = driver.say("lobby", "hello")
        wait_for(lambda: any(isinstance(e, ev.Acked) and e.id == msg_id for e in got))
        wait_for(lambda: any(isinstance(e, ev.MessageShown) and e.msg.id == msg_id
                             for e in got))
    finally:
        driver.stop()
    assert not driver.running
    assert driver.connects == 1


def test_driver_reconnects_after_a_slow_consumer_close(peer: PeerHandle) -> None:
    got: list[ev.Event] = []
    session = ClientSession()
    driver = SyncDriver(peer.url, session, on_events=got.extend)
    driver.start()
    try:
        driver.join("lobby")
        wait_for(lambda: session.rooms.get("lobby") is not None
                 and session.rooms["lobby"].cursor is not None)
        peer.close_all(CloseCode.SLOW_CONSUMER, "too slow")
        wait_for(lambda: driver.connects == 2)
        msg_id = driver.say("lobby", "after")
        wait_for(lambda: any(isinstance(e, ev.Acked) and e.id == msg_id for e in got))
        assert session.reconnects == 1
    finally:
        driver.stop()


def run_actors(url: str, out: Path, *, seconds: float, users: int = 4,
               disturb: object = None) -> None:
    cfg = WorkloadConfig(url=url, out=out, rooms=("a", "b", "c"), rate_per_s=30.0,
                         churn=0.05, drain_s=3, barrier_s=3, catchup_s=3)
    (out / "run.json").write_text(json.dumps({"rooms": list(cfg.rooms)}))
    barrier = EndBarrier()
    actors = [ChatActor(f"u{i}", cfg, seed=i, barrier=barrier) for i in range(users)]
    for a in actors:
        barrier.register()
        a.start()
    t0 = time.monotonic()
    disturbed = False
    while time.monotonic() - t0 < seconds:
        for a in actors:
            a.step()
        if callable(disturb) and not disturbed and time.monotonic() - t0 > seconds / 2:
            disturb()
            disturbed = True
        time.sleep(0.01)
    threads = [threading.Thread(target=a.finish) for a in actors]
    for t in threads:
        t.start()
    for t in threads:
        t.join(15)


def test_actors_record_a_valid_history(peer: PeerHandle, tmp_path: Path) -> None:
    run_actors(peer.url, tmp_path, seconds=2.0)
    final_read(tmp_path, peer.url)
    result = check_run(tmp_path)
    assert result.verdict == "valid", summary(result)
    assert result.counts["ok"] > 50
    assert result.counts["delivered"] > result.counts["ok"]
    recs = h.read_history(tmp_path / "histories" / "u0.jsonl")
    assert recs[0].TYPE == "start"
    assert {r.TYPE for r in recs} >= {"connect", "invoke", "ok", "deliver", "join", "attach",
                                      "end", "stats"}


def test_history_survives_forced_reconnects(peer: PeerHandle, tmp_path: Path) -> None:
    run_actors(peer.url, tmp_path, seconds=3.0,
               disturb=lambda: peer.close_all(CloseCode.SLOW_CONSUMER, "too slow"))
    final_read(tmp_path, peer.url)
    result = check_run(tmp_path)
    assert result.verdict == "valid", summary(result)
    assert result.counts["disconnects"].get(str(CloseCode.SLOW_CONSUMER), 0) >= 1
    assert result.counts["connects"] > 4


def test_checker_catches_a_bug_planted_in_a_recorded_history(peer: PeerHandle,
                                                              tmp_path: Path) -> None:
    """The self-tests' synthetic histories are not the only shape the checker knows: drop
    one real delivery from a real recording and the run must turn invalid."""
    run_actors(peer.url, tmp_path, seconds=1.5, users=3)
    final_read(tmp_path, peer.url)
    assert check_run(tmp_path).verdict == "valid"
    path = tmp_path / "histories" / "u1.jsonl"
    lines = path.read_text().splitlines(keepends=True)
    texts = [i for i, line in enumerate(lines) if '"type":"deliver"' in line
             and '"kind":"text"' in line]
    del lines[texts[len(texts) // 2]]
    path.write_text("".join(lines))
    result = check_run(tmp_path)
    assert result.verdict == "invalid"
    assert result.bad["undelivered"].count == 1
