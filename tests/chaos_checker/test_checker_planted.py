"""The checker catches every planted bug, and passes a clean history."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest

from chaos.checker import check_run, summary
from chaos.checker.__main__ import main as checker_main
from chaos.checker.verdict import FAILING, CheckResult
from chaos.workload import history as h
from tests.chaos_checker.synthetic import EPOCH, SynthRun


def check(run: SynthRun, tmp_path: Path) -> CheckResult:
    return check_run(run.write(tmp_path / "run"))


def failing(result: CheckResult) -> dict[str, int]:
    return {k: result.bad[k].count for k in FAILING if result.bad[k].count}


def test_clean_history_is_valid(tmp_path: Path) -> None:
    result = check(SynthRun(), tmp_path)
    assert result.verdict == "valid", summary(result)
    assert result.exit_code == 0
    assert result.counts["ok"] == 18
    assert result.counts["delivered"] > 18
    assert failing(result) == {}
    saved = json.loads((tmp_path / "run" / "results.json").read_text())
    assert saved["valid"] is True


def test_dropped_fan_out_is_caught(tmp_path: Path) -> None:
    run = SynthRun()
    victim = run.deliveries("u1", "r0")[2]
    run.remove("u1", victim)
    result = check(run, tmp_path)
    assert result.verdict == "invalid"
    assert result.bad["undelivered"].count == 1
    assert result.bad["undelivered"].examples[0]["seq"] == victim.seq
    assert result.bad["gaps"].count == 1


def test_dropped_last_fan_out_is_caught_by_the_end_head(tmp_path: Path) -> None:
    run = SynthRun()
    run.remove("u2", run.deliveries("u2", "r1")[-1])
    result = check(run, tmp_path)
    assert failing(result) == {"undelivered": 1}


def test_reordered_deliveries_are_caught(tmp_path: Path) -> None:
    run = SynthRun()
    recs = run.records["u0"]
    a, b = run.deliveries("u0", "r0")[1:3]
    i, j = recs.index(a), recs.index(b)
    recs[i], recs[j] = b, a
    result = check(run, tmp_path)
    assert result.verdict == "invalid"
    assert result.bad["nonmonotonic"].count == 1
    assert result.bad["gaps"].count == 0  # the skipped seq came right after: filled


def test_duplicate_delivery_is_caught(tmp_path: Path) -> None:
    run = SynthRun()
    d = run.deliveries("u2", "r1")[3]
    recs = run.records["u2"]
    recs.insert(recs.index(d) + 1, dataclasses.replace(d, time=d.time + 0.0001))
    result = check(run, tmp_path)
    assert failing(result) == {"duplicates_shown": 1}


def test_same_id_at_two_positions_is_a_duplicate(tmp_path: Path) -> None:
    run = SynthRun()
    first, second = run.deliveries("u0", "r1")[1:3]
    recs = run.records["u0"]
    recs[recs.index(second)] = dataclasses.replace(second, id=first.id)
    result = check(run, tmp_path)
    assert result.bad["duplicates_shown"].count == 1
    assert result.bad["inconsistent_ids"].count == 1  # everyone else saw another id there


def test_lost_acked_message_is_caught(tmp_path: Path) -> None:
    run = SynthRun()
    lost = run.text("r0", 4)
    run.messages["r0"].remove(lost)
    for p in run.records:
        for d in run.deliveries(p, "r0"):
            if d.id == lost.id:
                run.remove(p, d)
    result = check(run, tmp_path)
    assert result.verdict == "invalid"
    assert result.bad["lost"].count == 1
    assert result.bad["lost"].examples[0]["id"] == lost.id
    assert result.bad["lost_archive"].count == 1


def test_acked_message_missing_only_from_the_archive_is_caught(tmp_path: Path) -> None:
    run = SynthRun()
    out = run.write(tmp_path / "run")
    f = h.FinalRead.from_json((out / "final" / "r1.json").read_text())
    assert f.pg is not None and f.api is not None
    gone = next(m for m in f.pg if m.kind == "text")
    f = dataclasses.replace(f, pg=[m for m in f.pg if m != gone])
    (out / "final" / "r1.json").write_text(f.to_json())
    result = check_run(out)
    assert failing(result) == {"lost_archive": 1}
    assert result.info["archive_behind"].count == 1


def test_two_ids_for_one_seq_are_caught(tmp_path: Path) -> None:
    run = SynthRun()
    d = run.deliveries("u2", "r0")[2]
    other = run.text("r1", 0)
    recs = run.records["u2"]
    recs[recs.index(d)] = dataclasses.replace(d, id=other.id)
    result = check(run, tmp_path)
    assert result.verdict == "invalid"
    assert result.bad["inconsistent_ids"].count == 1
    ex = result.bad["inconsistent_ids"].examples[0]
    assert ex["seq"] == d.seq and set(ex["ids"]) == {d.id, other.id}


def test_unfilled_gap_is_caught(tmp_path: Path) -> None:
    run = SynthRun()
    for d in run.deliveries("u1", "r1")[2:4]:
        run.remove("u1", d)
    result = check(run, tmp_path)
    assert result.bad["gaps"].count == 2
    assert result.bad["gaps"].examples[0]["missing"] == [
        d.seq for d in SynthRun().deliveries("u1", "r1")[2:4]]
    assert result.bad["undelivered"].count == 2


def test_unexpected_message_is_caught(tmp_path: Path) -> None:
    run = SynthRun()
    run.messages["r0"].append(
        type(run.text("r0", 0))("r0", 99, "never-sent", "id-u0", "text", 1500.0))
    result = check(run, tmp_path)
    assert result.bad["unexpected"].count >= 1
    assert result.verdict == "invalid"


def test_join_and_leave_events_are_not_unexpected(tmp_path: Path) -> None:
    result = check(SynthRun(), tmp_path)
    assert result.bad["unexpected"].count == 0  # join events and the reader's join


def test_unknown_outcome_is_not_lost(tmp_path: Path) -> None:
    run = SynthRun()
    run.records["u0"] += [h.Invoke("u0", 1500.0, "r0", "maybe-1", "x"),
                          h.Info("u0", 1501.0, "r0", "maybe-1", "unacked at end"),
                          h.Invoke("u0", 1502.0, "r0", "maybe-2", "y")]  # crashed: no outcome
    result = check(run, tmp_path)
    assert result.verdict == "valid", summary(result)
    assert result.counts["info"] == 2
    assert result.info["recovered"].count == 0


def test_unknown_outcome_that_persisted_is_recovered(tmp_path: Path) -> None:
    run = SynthRun()
    m = run.text("r1", 2)
    recs = run.records[next(p for p in run.records if run.uid(p) == m.user)]
    ok = next(r for r in recs if isinstance(r, h.Ok) and r.id == m.id)
    recs[recs.index(ok)] = h.Info(ok.process, ok.time, ok.room, ok.id, "unacked at end")
    result = check(run, tmp_path)
    assert result.verdict == "valid", summary(result)
    assert result.info["recovered"].count == 1


def test_refused_send_that_persisted_is_caught(tmp_path: Path) -> None:
    run = SynthRun()
    m = run.text("r0", 1)
    recs = run.records[next(p for p in run.records if run.uid(p) == m.user)]
    ok = next(r for r in recs if isinstance(r, h.Ok) and r.id == m.id)
    recs[recs.index(ok)] = h.Fail(ok.process, ok.time, ok.room, ok.id, "not_member", "no")
    result = check(run, tmp_path)
    assert result.bad["failed_but_present"].count >= 1


def test_leave_tail_is_reported_not_failed(tmp_path: Path) -> None:
    """u1 leaves r0 while the last two messages are in flight to it."""
    run = SynthRun()
    last = run.messages["r0"][-1]
    leave_seq = last.seq + 1
    run.messages["r0"].append(type(last)("r0", leave_seq, "ev-leave-u1", run.uid("u1"),
                                         "leave", last.time + 0.01))
    for d in run.deliveries("u1", "r0")[-2:]:
        run.remove("u1", d)
    run.records["u1"] = [r for r in run.records["u1"]
                         if not (isinstance(r, h.End) and r.room == "r0")]
    run.records["u1"].append(h.Leave("u1", last.time + 0.02, "r0", None, None))
    for p in ("u0", "u2"):
        run.records[p].append(h.Deliver(p, last.time + 0.02, "r0", EPOCH, leave_seq,
                                        "ev-leave-u1", run.uid("u1"), "leave", True))
        run.records[p] = [r for r in run.records[p] if not isinstance(r, h.End | h.Stats)]
    result = check(run, tmp_path)
    assert result.verdict == "valid", summary(result)
    assert result.info["leave_tail"].count == 2


def test_reset_hole_is_excused(tmp_path: Path) -> None:
    """u2 is reset in r1 and resumes at a later head: the skipped messages are allowed."""
    run = SynthRun()
    ds = run.deliveries("u2", "r1")
    cut, resume = ds[1], ds[4]
    for d in ds[2:4]:
        run.remove("u2", d)
    recs = run.records["u2"]
    i = recs.index(resume)
    recs[i:i] = [h.Reset("u2", resume.time - 0.002, "r1", "failover", EPOCH, cut.seq),
                 h.Attach("u2", resume.time - 0.001, "r1", EPOCH, resume.seq - 1, False)]
    result = check(run, tmp_path)
    assert result.verdict == "valid", summary(result)


def test_missing_final_read_is_unknown(tmp_path: Path) -> None:
    out = SynthRun().write(tmp_path / "run")
    (out / "final" / "r1.json").unlink()
    result = check_run(out)
    assert result.verdict == "unknown"
    assert result.exit_code == 2
    assert any("r1" in r for r in result.unknown_reasons)


def test_no_acknowledged_send_is_unknown(tmp_path: Path) -> None:
    run = SynthRun(msgs_per_user=0)
    result = check(run, tmp_path)
    assert result.verdict == "unknown"


def test_invalid_beats_unknown(tmp_path: Path) -> None:
    run = SynthRun()
    run.remove("u1", run.deliveries("u1", "r0")[2])
    out = run.write(tmp_path / "run")
    (out / "final" / "r1.json").unlink()
    assert check_run(out).verdict == "invalid"


def test_raw_duplicates_are_reported_not_failed(tmp_path: Path) -> None:
    run = SynthRun()
    recs = run.records["u0"]
    stats = next(r for r in recs if isinstance(r, h.Stats))
    recs[recs.index(stats)] = dataclasses.replace(stats, raw_duplicates=7)
    result = check(run, tmp_path)
    assert result.verdict == "valid"
    assert result.info["raw_duplicates"].count == 7


def test_torn_last_history_line_is_tolerated(tmp_path: Path) -> None:
    out = SynthRun().write(tmp_path / "run")
    f = out / "histories" / "u0.jsonl"
    f.write_text(f.read_text() + '{"type":"deliver","proc')
    assert check_run(out).verdict == "valid"


def test_availability_per_fault_window(tmp_path: Path) -> None:
    run = SynthRun()
    oks = sorted(r.time for r in run.records["u0"] if isinstance(r, h.Ok))
    t = oks[2] - 0.001
    run.nemesis = [{"t": t, "end": t + 0.5, "fault": "kill", "target": "backend-1"}]
    result = check(run, tmp_path)
    (w,) = result.availability
    assert w["fault"] == "kill" and w["duration_s"] == 0.5
    assert w["send_resume_s"]["n"] == 3
    assert w["send_resume_s"]["p50"] is not None and w["send_resume_s"]["p50"] < 0.05
    assert w["recv_resume_s"]["never"] == 0
    assert "fault kill backend-1" in summary(result)


@pytest.mark.parametrize(("plant", "code"), [(None, 0), ("drop", 1), ("nofinal", 2)])
def test_cli_exit_codes(tmp_path: Path, plant: str | None, code: int,
                        capsys: pytest.CaptureFixture[str]) -> None:
    run = SynthRun()
    if plant == "drop":
        run.remove("u1", run.deliveries("u1", "r0")[2])
    out = run.write(tmp_path / "run")
    if plant == "nofinal":
        for f in (out / "final").iterdir():
            f.unlink()
    assert checker_main([str(out)]) == code
    assert ("VALID", "INVALID", "UNKNOWN")[code] in capsys.readouterr().out
    assert (out / "results.json").exists()


def test_cli_rejects_a_missing_directory(tmp_path: Path) -> None:
    assert checker_main([str(tmp_path / "nope")]) == 254
