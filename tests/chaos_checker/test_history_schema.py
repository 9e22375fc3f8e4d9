"""The history schema: every record type round-trips; malformed lines are refused."""

from __future__ import annotations

from pathlib import Path

import pytest

from chaos.workload import history as h

RECORDS: list[h.Record] = [
    h.Start("u1", 1.5, "ws://x/ws", 7, 123),
    h.Connect("u1", 2.0, "backend-2", "abc", 1),
    h.Disconnect("u1", 3.0, "backend-2", 4008, "slow consumer"),
    h.Disconnect("u1", 3.0, "backend-2", None, "dead peer"),
    h.Invoke("u1", 4.0, "room", "id1", "héllo t=4.000000"),
    h.Ok("u1", 4.1, "room", "id1", "e1", 5),
    h.Fail("u1", 4.2, "room", "id2", "not_member", "join first"),
    h.Info("u1", 4.3, "room", "id3", "unacked at end"),
    h.Deliver("u1", 4.4, "room", "e1", 5, "id1", "abc", "text", True),
    h.Join("u1", 4.5, "room", "e1", 1),
    h.Leave("u1", 4.6, "room", None, None),
    h.Leave("u1", 4.6, "room", "e1", 9),
    h.Attach("u1", 4.7, "room", "e1", 0, False),
    h.Reset("u1", 4.8, "room", "failover", "e1", 3),
    h.End("u1", 4.9, "room", "e1", 10, 10),
    h.Stats("u1", 5.0, 1, 2, 3, 4, 5),
    h.Error("u1", 5.1, "rate_limited", "slow down", "id4"),
]


@pytest.mark.parametrize("record", RECORDS, ids=lambda r: r.TYPE)
def test_round_trip(record: h.Record) -> None:
    line = h.encode(record)
    assert "\n" not in line
    assert h.decode(line) == record


def test_times_may_be_integers_on_the_wire() -> None:
    rec = h.decode('{"type":"info","process":"u","time":3,"room":"r","id":"i","reason":"x"}')
    assert rec == h.Info("u", 3.0, "r", "i", "x")
    assert isinstance(rec.time, float)


@pytest.mark.parametrize("line", [
    "not json",
    "[1, 2]",
    '{"type": "nope", "process": "u", "time": 1}',
    '{"type": "ok", "process": "u", "time": 1, "room": "r", "id": "i", "epoch": "e"}',
    '{"type": "ok", "process": "u", "time": 1, "room": "r", "id": "i", "epoch": "e", '
    '"seq": "5"}',
    '{"type": "deliver", "process": "u", "time": 1, "room": "r", "epoch": "e", "seq": 1, '
    '"id": "i", "sender": "s", "kind": "text", "live": 1}',
    '{"type": "ok", "process": "u", "time": true, "room": "r", "id": "i", "epoch": "e", '
    '"seq": 5}',
])
def test_malformed_lines_are_refused(line: str) -> None:
    with pytest.raises(h.HistoryFormatError):
        h.decode(line)


def test_writer_appends_and_reader_reads(tmp_path: Path) -> None:
    path = tmp_path / "histories" / "u1.jsonl"
    w = h.HistoryWriter(path)
    for r in RECORDS:
        w.write(r)
    w.close()
    w.write(RECORDS[0])  # after close: ignored
    assert h.read_history(path) == RECORDS
    with pytest.raises(FileExistsError):
        h.HistoryWriter(path)  # two processes never share a file


def test_bad_line_in_the_middle_names_file_and_line(tmp_path: Path) -> None:
    path = tmp_path / "u.jsonl"
    path.write_text(h.encode(RECORDS[0]) + "\ngarbage\n" + h.encode(RECORDS[1]) + "\n")
    with pytest.raises(h.HistoryFormatError, match=r"u\.jsonl:2"):
        h.read_history(path)


def test_final_read_round_trip() -> None:
    msgs = [h.FinalMessage("e1", 1, "ev1", "u", "join", 10),
            h.FinalMessage("e1", 2, "m1", "u", "text", 11)]
    fr = h.FinalRead("room", 9.5, "reader", msgs, msgs[:1], False, "")
    assert h.FinalRead.from_json(fr.to_json()) == fr
    failed = h.FinalRead("room", 9.5, "", None, None, False, "not joined")
    assert h.FinalRead.from_json(failed.to_json()) == failed
    with pytest.raises(h.HistoryFormatError):
        h.FinalRead.from_json('{"room": "r", "api": 5}')
