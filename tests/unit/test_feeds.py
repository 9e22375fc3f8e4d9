"""RoomFeed: turning lossy, reordered pub/sub into the exact committed sequence."""

from __future__ import annotations

from tuitalk.bus.entries import Epochs, RoomState
from tuitalk.protocol import Msg
from tuitalk.server.feeds import STASH_MAX, RoomFeed


def m(seq: int, epoch: str = "e1") -> Msg:
    return Msg(room="r", epoch=epoch, seq=seq, id=f"id{seq:06d}", user="u", name="n",
               kind="text", text=str(seq), ts=0)


def state(commit: int, epochs: str = "e1:1", epoch: str = "e1") -> RoomState:
    return RoomState(True, epoch, commit, commit, 0, Epochs.parse(epochs))


def ready_feed(head: int = 5) -> RoomFeed:
    f = RoomFeed("r")
    f.on_position(state(head))
    return f


def test_live_messages_before_ready_are_stashed_then_emitted_after_head() -> None:
    f = RoomFeed("r")
    assert not f.on_live(m(6)).emit
    assert not f.on_live(m(7)).emit
    step = f.on_position(state(5))
    assert [x.seq for x in step.emit] == [6, 7]
    assert f.ready and f.head == 7


def test_in_order_emit_and_stale_ignored() -> None:
    f = ready_feed()
    assert [x.seq for x in f.on_live(m(6)).emit] == [6]
    assert f.on_live(m(6)).emit == ()
    assert f.on_live(m(3)).emit == ()


def test_gap_asks_for_fill_and_fill_emits_in_order() -> None:
    f = ready_feed()
    step = f.on_live(m(9))
    assert step.emit == () and step.fill == (5, 8)
    assert f.on_live(m(10)).fill is None  # one fill at a time
    step = f.on_filled([m(6), m(7), m(8)])
    assert [x.seq for x in step.emit] == [6, 7, 8, 9, 10]
    assert f.head == 10 and not f.filling


def test_position_check_finds_silently_lost_messages() -> None:
    f = ready_feed()
    step = f.on_position(state(8))
    assert step.fill == (5, 8)
    step = f.on_filled([m(6), m(7), m(8)])
    assert f.head == 8


def test_fill_without_progress_does_not_loop() -> None:
    f = ready_feed()
    f.on_live(m(9))
    step = f.on_filled([])
    assert step.fill is None and not f.filling


def test_unknown_epoch_asks_for_refresh_first() -> None:
    f = ready_feed(10)
    step = f.on_live(m(11, "e2"))
    assert step.refresh and step.emit == ()
    step = f.on_position(state(11, "e1:1,e2:11", "e2"))
    assert [x.seq for x in step.emit] == [11]
    assert f.epoch == "e2"


def test_rollback_moves_head_back_to_last_surviving_seq() -> None:
    f = ready_feed(12)  # emitted e1:11,12 which were rolled back
    step = f.on_position(state(11, "e1:1,e2:11", "e2"))
    assert f.head == 10 and step.fill == (10, 11)
    step = f.on_filled([m(11, "e2")])
    assert [(x.epoch, x.seq) for x in step.emit] == [("e2", 11)]


def test_stash_is_bounded_keeping_lowest_seqs() -> None:
    f = ready_feed(0)
    f.on_live(m(2))  # gap at 1: everything else is stashed
    for s in range(3, STASH_MAX + 10):
        f.on_live(m(s))
    assert len(f.stash) == STASH_MAX
    assert min(f.stash) == 2
    assert f.stash_dropped > 0


def test_missing_meta_keeps_feed_usable() -> None:
    f = RoomFeed("r")
    step = f.on_position(RoomState(False, "", 0, 0, 0, Epochs(())))
    assert f.ready and step.emit == ()
