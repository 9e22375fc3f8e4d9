"""RoomDelivery: per-connection cursor, gap and epoch decisions."""

from __future__ import annotations

from tuitalk.bus.entries import Epochs
from tuitalk.protocol import Cursor, Msg
from tuitalk.server.delivery import RoomDelivery, Verdict

E1 = Epochs((("e1", 1),))
E12 = Epochs((("e1", 1), ("e2", 11)))  # e1 ended at 10; e2 starts at 11


def m(seq: int, epoch: str = "e1") -> Msg:
    return Msg(room="r", epoch=epoch, seq=seq, id=f"id{seq:06d}", user="u", name="n",
               kind="text", text=str(seq), ts=0)


def test_in_order_messages_are_sent_and_advance_the_cursor() -> None:
    d = RoomDelivery("r", Cursor("e1", 3))
    assert d.offer(m(4), E1) is Verdict.SEND
    assert d.cursor == Cursor("e1", 4)
    assert d.offer(m(4), E1) is Verdict.SKIP
    assert d.offer(m(2), E1) is Verdict.SKIP


def test_gap_enters_catch_up_and_holds_live_messages() -> None:
    d = RoomDelivery("r", Cursor("e1", 3))
    assert d.offer(m(6), E1) is Verdict.GAP
    assert d.catching_up
    assert d.offer(m(7), E1) is Verdict.HOLD
    assert d.replayed(m(4), E1) is Verdict.SEND
    assert d.replayed(m(5), E1) is Verdict.SEND
    out, verdict = d.finish_catch_up(E1)
    assert [x.seq for x in out] == [6, 7]
    assert verdict is Verdict.SEND
    assert not d.catching_up
    assert d.cursor.seq == 7


def test_finish_catch_up_with_a_remaining_hole_keeps_catching_up() -> None:
    d = RoomDelivery("r", Cursor("e1", 3), catching_up=True)
    d.offer(m(5), E1)
    out, verdict = d.finish_catch_up(E1)
    assert out == [] and verdict is Verdict.GAP
    assert d.catching_up and [x.seq for x in d.pending] == [5]


def test_pending_is_bounded_and_drops_oldest() -> None:
    d = RoomDelivery("r", Cursor("e1", 0), catching_up=True, pending_max=3)
    for s in range(1, 6):
        d.offer(m(s), E1)
    assert [x.seq for x in d.pending] == [3, 4, 5]
    assert d.pending_dropped == 2


def test_epoch_change_continues_when_cursor_survived_the_rollback() -> None:
    d = RoomDelivery("r", Cursor("e1", 10))
    assert d.offer(m(11, "e2"), E12) is Verdict.SEND
    assert d.cursor == Cursor("e2", 11)


def test_epoch_change_resets_a_cursor_that_saw_rolled_back_seqs() -> None:
    d = RoomDelivery("r", Cursor("e1", 12))  # saw e1:11,12 which e2 re-issued
    assert d.offer(m(11, "e2"), E12) is Verdict.RESET
    assert d.offer(m(13, "e2"), E12) is Verdict.RESET


def test_unknown_epoch_cursor_resets() -> None:
    d = RoomDelivery("r", Cursor("gone", 3))
    assert d.offer(m(4), E1) is Verdict.RESET


def test_old_epoch_messages_below_cursor_are_skipped() -> None:
    d = RoomDelivery("r", Cursor("e2", 15))
    assert d.offer(m(5, "e1"), E12) is Verdict.SKIP


def test_finish_catch_up_resets_on_diverged_pending() -> None:
    d = RoomDelivery("r", Cursor("e1", 12), catching_up=True)
    d.offer(m(13, "e2"), E12)
    _out, verdict = d.finish_catch_up(E12)
    assert verdict is Verdict.RESET
