"""The client core with a fake clock and a scripted server: every path, no I/O."""

from __future__ import annotations

import json
import random
import subprocess
import sys

import pytest

from tuitalk import protocol as p
from tuitalk.client import events as ev
from tuitalk.client.backoff import Backoff
from tuitalk.client.session import MAX_IN_FLIGHT, ClientSession
from tuitalk.errors import LocalProtocolError


class Harness:
    """A session plus a fake clock; server frames are fed by the test."""

    def __init__(self, **kwargs: object) -> None:
        self.now = 0.0
        self.s = ClientSession(rng=random.Random(7), **kwargs)  # type: ignore[arg-type]
        self.sent: list[dict[str, object]] = []
        self.events: list[ev.Event] = []

    def pump(self) -> None:
        self.sent += [json.loads(f) for f in self.s.frames_to_send()]
        self.events += self.s.events()

    def connect(self, user: str = "u1", backend: str = "b1") -> None:
        assert self.s.wants_connect(self.now)
        self.s.connecting(self.now)
        self.s.connection_made(self.now)
        self.pump()
        self.feed(p.Welcome(token=f"{user}.tok", user=user, name="me", backend=backend))

    def feed(self, frame: p.ServerFrame) -> None:
        self.s.frame_received(p.encode(frame), self.now)
        self.pump()

    def tick(self, dt: float) -> None:
        self.now += dt
        self.s.tick(self.now)
        self.pump()

    def sent_of(self, t: str) -> list[dict[str, object]]:
        return [f for f in self.sent if f["t"] == t]

    def shown(self) -> list[tuple[str, int]]:
        return [(e.msg.epoch, e.msg.seq) for e in self.events if isinstance(e, ev.MessageShown)]


def msg(seq: int, epoch: str = "e1", user: str = "u2", mid: str | None = None) -> p.Msg:
    return p.Msg(room="r", epoch=epoch, seq=seq, id=mid or f"id{seq:06d}", user=user,
                 name="x", kind="text", text=f"t{seq}", ts=0)


def joined(h: Harness, head: int = 0, epoch: str = "e1", resumed: bool = False) -> None:
    h.feed(p.Joined(room="r", epoch=epoch, head=head, members=(), resumed=resumed, top=head))


def test_hello_carries_cursors_and_name() -> None:
    h = Harness(name="alice", rooms={"r": p.Cursor("e1", 4)}, token="t.x")
    h.connect()
    hello = h.sent_of("hello")[0]
    assert hello["name"] == "alice" and hello["token"] == "t.x"
    assert hello["rooms"] == {"r": {"epoch": "e1", "seq": 4}}


def test_messages_shown_once_in_order_and_duplicates_counted() -> None:
    h = Harness()
    h.connect()
    h.s.join("r", h.now)
    h.pump()
    joined(h)
    for s in (1, 2, 2, 3, 1):
        h.feed(msg(s))
    assert h.shown() == [("e1", 1), ("e1", 2), ("e1", 3)]
    assert h.s.raw_duplicates == 2


def test_out_of_order_is_held_and_a_gap_triggers_resync() -> None:
    h = Harness()
    h.connect()
    h.s.join("r", h.now)
    joined(h)
    h.feed(msg(1))
    h.feed(msg(3))
    assert h.shown() == [("e1", 1)]
    resync = [f for f in h.sent_of("join") if "since" in f]
    assert resync == [{"t": "join", "room": "r", "since": {"epoch": "e1", "seq": 1}}]
    h.feed(msg(2))
    assert h.shown() == [("e1", 1), ("e1", 2), ("e1", 3)]


def test_epoch_change_is_accepted_when_contiguous() -> None:
    h = Harness()
    h.connect()
    h.s.join("r", h.now)
    joined(h, head=10)
    h.feed(msg(11, epoch="e2"))
    assert h.shown() == [("e2", 11)]
    assert h.s.rooms["r"].cursor == p.Cursor("e2", 11)


def test_reset_clears_cursor_and_rejoin_restarts_from_head() -> None:
    h = Harness()
    h.connect()
    h.s.join("r", h.now)
    joined(h, head=5)
    h.feed(p.Reset(room="r", reason="failover"))
    assert any(isinstance(e, ev.RoomReset) for e in h.events)
    assert h.s.rooms["r"].cursor is None
    joined(h, head=20, epoch="e9")
    h.feed(msg(21, epoch="e9"))
    assert h.shown()[-1] == ("e9", 21)


def test_outbox_resends_with_same_id_after_reconnect_and_dedups() -> None:
    h = Harness()
    h.connect()
    h.s.join("r", h.now)
    joined(h)
    mid = h.s.say("r", "hello", h.now)
    h.pump()
    assert [f["id"] for f in h.sent_of("say")] == [mid]
    assert any(isinstance(e, ev.Pending) for e in h.events)
    h.s.connection_lost(h.now, 1006)
    h.pump()
    assert h.s.wants_connect(h.now)  # first retry is immediate
    h.connect()
    assert [f["id"] for f in h.sent_of("say")] == [mid, mid]
    h.feed(p.Ack(id=mid, room="r", epoch="e1", seq=1))
    h.feed(msg(1, user="u1", mid=mid))
    acks = [e for e in h.events if isinstance(e, ev.Acked)]
    assert len(acks) == 1 and not h.s.outbox


def test_message_shown_before_its_ack_acks_it_once() -> None:
    h = Harness()
    h.connect()
    h.s.join("r", h.now)
    joined(h)
    mid = h.s.say("r", "x", h.now)
    h.feed(msg(1, user="u1", mid=mid))
    h.feed(p.Ack(id=mid, room="r", epoch="e1", seq=1))
    assert len([e for e in h.events if isinstance(e, ev.Acked)]) == 1


def test_ack_timeout_resends() -> None:
    h = Harness(ack_timeout_s=2.0)
    h.connect()
    h.s.join("r", h.now)
    joined(h)
    h.s.say("r", "x", h.now)
    h.pump()
    h.tick(1.0)
    h.feed(p.Pong())
    assert len(h.sent_of("say")) == 1
    h.tick(1.1)
    assert len(h.sent_of("say")) == 2


def test_retryable_error_resends_later_and_fatal_error_fails() -> None:
    h = Harness()
    h.connect()
    h.s.join("r", h.now)
    joined(h)
    a = h.s.say("r", "a", h.now)
    b = h.s.say("r", "b", h.now)
    h.pump()
    h.feed(p.ErrorFrame(code=p.ErrorCode.UNAVAILABLE, detail="busy", ref=a))
    h.feed(p.ErrorFrame(code=p.ErrorCode.NOT_MEMBER, detail="no", ref=b))
    assert any(isinstance(e, ev.SendFailed) and e.id == b for e in h.events)
    assert a in h.s.outbox and b not in h.s.outbox
    h.tick(0.2)
    h.feed(p.Pong())
    assert [f["id"] for f in h.sent_of("say")].count(a) == 1
    h.tick(1.0)
    assert [f["id"] for f in h.sent_of("say")].count(a) == 2


def test_in_flight_window_paces_a_burst() -> None:
    h = Harness()
    h.connect()
    h.s.join("r", h.now)
    joined(h)
    ids = [h.s.say("r", f"m{i}", h.now) for i in range(MAX_IN_FLIGHT + 10)]
    h.pump()
    assert len(h.sent_of("say")) == MAX_IN_FLIGHT
    h.feed(p.Ack(id=ids[0], room="r", epoch="e1", seq=1))
    assert len(h.sent_of("say")) == MAX_IN_FLIGHT + 1


def test_heartbeat_pings_and_dead_peer_detection() -> None:
    h = Harness(heartbeat_s=1.0, dead_after_s=3.0)
    h.connect()
    h.tick(1.0)
    assert h.sent_of("ping")
    h.tick(1.0)
    h.tick(1.0)
    assert h.s.should_close()
    h.s.connection_lost(h.now, None)
    h.pump()
    states = [e.state for e in h.events if isinstance(e, ev.StateChanged)]
    assert states[-1] == "reconnecting"


def test_any_frame_keeps_the_connection_alive() -> None:
    h = Harness(heartbeat_s=1.0, dead_after_s=3.0)
    h.connect()
    for _ in range(10):
        h.tick(1.0)
        h.feed(p.Pong())
    assert not h.s.should_close()


def test_backoff_first_immediate_then_full_jitter_capped() -> None:
    b = Backoff(base_s=0.25, cap_s=4.0, rng=random.Random(1))
    delays = [b.delay() for _ in range(10)]
    assert delays[0] == 0.0
    for n, d in enumerate(delays[1:], start=1):
        assert 0.0 <= d <= min(4.0, 0.25 * 2 ** (n - 1))
    b.reset()
    assert b.delay() == 0.0


def test_policy_close_reconnects_slowly() -> None:
    h = Harness()
    h.connect()
    h.s.connection_lost(h.now, p.CloseCode.POLICY_VIOLATION)
    assert not h.s.wants_connect(h.now + 1.0)
    assert h.s.wants_connect(h.now + 2.0)


def test_joins_and_leaves_requested_offline_are_sent_after_welcome() -> None:
    h = Harness()
    h.s.join("r", 0.0)
    h.s.nick("zed", 0.0)
    h.connect()
    assert h.sent_of("join") == [{"t": "join", "room": "r"}]
    assert h.sent_of("nick") == [{"t": "nick", "name": "zed"}]
    joined(h)
    h.s.connection_lost(h.now, 1006)
    h.s.leave("r", h.now)
    h.connect()
    assert "r" not in h.sent_of("hello")[-1]["rooms"]  # type: ignore[operator]
    assert h.sent_of("leave") == [{"t": "leave", "room": "r"}]
    h.feed(p.Left(room="r"))
    assert "r" not in h.s.rooms


def test_history_paging_requests_before_oldest_and_dedups() -> None:
    h = Harness(history_limit=2)
    h.connect()
    h.s.join("r", h.now)
    joined(h, head=10)
    assert h.s.load_history("r", h.now)
    h.pump()
    assert h.sent_of("history")[-1] == {"t": "history", "room": "r", "limit": 2, "before": 11}
    assert not h.s.load_history("r", h.now)  # one page at a time
    h.feed(p.History(room="r", messages=(msg(9), msg(10)), more=True))
    assert h.s.load_history("r", h.now)
    h.pump()
    assert h.sent_of("history")[-1]["before"] == 9
    h.feed(p.History(room="r", messages=(msg(1), msg(2)), more=False))
    assert not h.s.load_history("r", h.now)
    loaded = [e for e in h.events if isinstance(e, ev.HistoryLoaded)]
    assert [m.seq for m in loaded[0].messages] == [9, 10]


def test_snapshot_restore_round_trip() -> None:
    h = Harness()
    h.connect()
    h.s.join("r", h.now)
    joined(h, head=3)
    h.s.say("r", "pending", h.now)
    snap = json.loads(json.dumps(h.s.snapshot()))
    s2 = ClientSession.restore(snap)
    assert s2.token == "u1.tok" and s2.rooms["r"].cursor == p.Cursor("e1", 3)
    assert [e.text for e in s2.outbox.values()] == ["pending"]
    s3 = ClientSession.restore({"rooms": {"BAD": {}, "ok": {"epoch": "e", "seq": "x"}},
                                "outbox": [{"nope": 1}]})
    assert s3.rooms == {} and not s3.outbox


def test_garbage_from_server_does_not_raise() -> None:
    h = Harness()
    h.connect()
    h.s.frame_received("{oops", h.now)
    h.s.frame_received(b"\x00", h.now)
    h.pump()
    assert any(isinstance(e, ev.ServerError) for e in h.events)


def test_invalid_user_input_is_refused_locally() -> None:
    h = Harness()
    with pytest.raises(LocalProtocolError):
        h.s.say("r", "", 0.0)
    with pytest.raises(LocalProtocolError):
        h.s.join("Not A Room", 0.0)
    with pytest.raises(LocalProtocolError):
        h.s.nick("a\u202eb", 0.0)


def test_core_imports_no_io_library() -> None:
    code = (
        "import sys; import tuitalk.protocol, tuitalk.sanitize, tuitalk.client.session,"
        " tuitalk.client.commands, tuitalk.client.intents;"
        "bad = [m for m in ('anyio','websockets','redis','asyncpg','textual','js','pyodide',"
        "'asyncio','socket','ssl') if m in sys.modules]; print(bad); sys.exit(1 if bad else 0)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=False)
    assert out.returncode == 0, out.stdout + out.stderr


def test_after_losing_a_backend_the_next_attempt_avoids_it() -> None:
    h = Harness()
    assert h.s.connect_url("ws://h/ws") == "ws://h/ws"
    h.connect(backend="backend-2")
    h.s.connection_lost(h.now, None)
    assert h.s.connect_url("ws://h/ws") == "ws://h/ws?avoid=backend-2"
    assert h.s.connect_url("ws://h/ws?x=1") == "ws://h/ws?x=1&avoid=backend-2"
    # Steering failed (say, the avoided backend is the only one up): use any backend.
    h.s.connecting(h.now)
    h.s.connection_failed(h.now)
    assert h.s.connect_url("ws://h/ws") == "ws://h/ws"
    h.now += 5
    h.connect(backend="backend-1")
    assert h.s.avoid is None
