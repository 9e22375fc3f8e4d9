"""The remaining paths of the client core: timers, room ops, odd server frames."""

from __future__ import annotations

import dataclasses
import json

from tests.unit.client.test_session import Harness, joined, msg
from tuitalk import protocol as p
from tuitalk.client import events as ev
from tuitalk.client.session import MAX_IN_FLIGHT, ClientSession


def test_next_deadline_in_each_state() -> None:
    h = Harness(heartbeat_s=1.0, dead_after_s=3.0, ack_timeout_s=10.0)
    assert h.s.next_deadline() == 0.0  # idle: connect now
    h.s.connecting(0.0)
    assert h.s.next_deadline() is None  # waiting for the socket
    h.s.connection_made(0.0)
    assert h.s.next_deadline() == 1.0  # heartbeat
    h.pump()
    h.feed(p.Welcome(token="u.t", user="u", name="n", backend="b"))
    h.s.join("r", 0.0)  # join sent at 0: retried at 5
    h.s.say("r", "x", 0.0)  # queued; the room has no cursor yet but the send is pending
    assert h.s.next_deadline() == 1.0
    h.s.stop()
    assert h.s.next_deadline() is None


def test_next_deadline_counts_unanswered_room_ops_and_window() -> None:
    h = Harness(heartbeat_s=100.0, dead_after_s=100.0, ack_timeout_s=50.0)
    h.connect()
    h.s.join("r", h.now)
    h.pump()
    assert h.s.next_deadline() == 5.0  # the join is retried after 5 s
    joined(h)
    h.s.leave("r", h.now)
    assert h.s.next_deadline() == 5.0  # and so is the leave
    h.feed(p.Left(room="r"))
    h.s.join("q", h.now)
    joined_q = p.Joined(room="q", epoch="e", head=0)
    h.feed(joined_q)
    for i in range(MAX_IN_FLIGHT + 1):
        h.s.say("q", f"m{i}", h.now)
    # Window full: only ack timeouts and the heartbeat matter, not the queued entry.
    assert h.s.next_deadline() == 50.0


def test_pause_after_rate_limited_delays_the_next_send() -> None:
    h = Harness()
    h.connect()
    h.s.join("r", h.now)
    joined(h)
    a = h.s.say("r", "a", h.now)
    h.pump()
    h.feed(p.ErrorFrame(code=p.ErrorCode.RATE_LIMITED, detail="slow", ref=a))
    b = h.s.say("r", "b", h.now)
    h.pump()
    assert [f["id"] for f in h.sent_of("say")] == [a]  # paused: b not sent yet
    deadline = h.s.next_deadline()
    assert deadline is not None and deadline > h.now
    h.tick(2.0)
    assert {f["id"] for f in h.sent_of("say")} == {a, b}


def test_connection_lost_twice_and_slow_codes() -> None:
    h = Harness()
    h.connect()
    h.s.connection_lost(h.now, p.CloseCode.TOO_MANY_CONNECTIONS)
    h.s.connection_lost(h.now, None)  # already idle: no effect
    assert not h.s.wants_connect(h.now + 4.9)
    assert h.s.wants_connect(h.now + 5.0)
    h.s.tick(h.now)  # idle: nothing to do
    assert h.s.frames_to_send() == []


def test_stop_prevents_reconnects() -> None:
    h = Harness()
    h.s.stop()
    assert not h.s.wants_connect(0.0)


def test_join_of_a_joined_room_asks_the_server_to_confirm() -> None:
    h = Harness()
    h.connect()
    h.s.join("r", h.now)
    joined(h, head=4)
    h.s.join("r", h.now)
    h.pump()
    assert h.sent_of("join")[-1] == {"t": "join", "room": "r"}
    h.s.leave("unknown", h.now)  # not in it: nothing to send
    h.pump()
    assert not h.sent_of("leave")


def test_nick_while_connected_and_welcome_as_confirmation() -> None:
    h = Harness()
    h.connect()
    h.s.nick("Zoe", h.now)
    h.pump()
    assert h.sent_of("nick") == [{"t": "nick", "name": "Zoe"}]
    h.feed(p.Welcome(token="u1.tok", user="u1", name="Zoe", backend="b1"))
    assert h.s.name == "Zoe" and h.s.connected
    states = [e for e in h.events if isinstance(e, ev.StateChanged) and e.state == "connected"]
    assert len(states) == 1  # the confirmation is not a new connection


def test_load_history_edge_cases() -> None:
    h = Harness()
    assert not h.s.load_history("r", 0.0)  # unknown room
    h.connect()
    h.s.join("r", h.now)
    joined(h, head=0)
    assert not h.s.load_history("r", h.now)  # nothing before seq 1
    h.s.rooms["r"].more_history = True
    h.s.rooms["r"].oldest = None
    h.s.rooms["r"].cursor = p.Cursor("e1", 7)
    assert h.s.load_history("r", h.now)
    h.pump()
    assert h.sent_of("history")[-1]["before"] == 8
    h.feed(p.History(room="nope", messages=(), more=False))  # unknown room: ignored
    h.feed(p.History(room="r", messages=(msg(8), msg(9)), more=True))  # not older: dropped
    loaded = [e for e in h.events if isinstance(e, ev.HistoryLoaded)]
    assert loaded[-1].messages == () and loaded[-1].more


def test_joined_for_a_room_being_left_is_ignored() -> None:
    h = Harness()
    h.connect()
    h.s.join("r", h.now)
    joined(h, head=2)
    h.s.leave("r", h.now)
    joined(h, head=9)
    assert h.s.rooms["r"].cursor == p.Cursor("e1", 2)


def test_joined_resumed_keeps_cursor_and_drains_held() -> None:
    h = Harness()
    h.connect()
    h.s.join("r", h.now)
    joined(h, head=1)
    h.feed(msg(3))  # ahead: held, resync sent
    h.feed(msg(4))  # another gap message while the resync is pending: no second resync
    assert len([f for f in h.sent_of("join") if "since" in f]) == 1
    h.feed(p.Joined(room="r", epoch="e1", head=1, resumed=True, top=4))
    assert h.shown() == []
    h.feed(msg(2))
    assert h.shown() == [("e1", 2), ("e1", 3), ("e1", 4)]
    h.feed(msg(9))
    h.feed(msg(7))
    h.feed(msg(5))
    assert h.shown()[-1] == ("e1", 5)
    assert set(h.s.rooms["r"].held) == {7, 9}


def test_messages_for_rooms_without_cursor_are_ignored() -> None:
    h = Harness()
    h.connect()
    h.feed(msg(1))
    h.s.join("r", h.now)
    h.feed(msg(1))  # joined not yet received
    assert h.shown() == []


def test_membership_events_update_members() -> None:
    h = Harness()
    h.connect()
    h.s.join("r", h.now)
    joined(h)
    for kind, seq, user in (("join", 1, "u2"), ("nick", 2, "u2"), ("leave", 3, "u2")):
        h.feed(p.Msg(room="r", epoch="e1", seq=seq, id=f"ev{seq}", user=user, name=f"n{seq}",
                     kind=kind, text="", ts=0))  # type: ignore[arg-type]
    changes = [e.members for e in h.events if isinstance(e, ev.MembersChanged)]
    assert changes[0] == (p.Member("u2", "n1"),)
    assert changes[1] == (p.Member("u2", "n2"),)
    assert changes[2] == ()


def test_left_fails_pending_sends_of_that_room() -> None:
    h = Harness()
    h.connect()
    h.s.join("r", h.now)
    joined(h)
    mid = h.s.say("r", "orphan", h.now)
    h.feed(p.Left(room="r"))
    failed = [e for e in h.events if isinstance(e, ev.SendFailed)]
    assert [f.id for f in failed] == [mid]
    h.feed(p.Reset(room="unknown", reason="x"))  # reset of a room we are not in: an event
    assert any(isinstance(e, ev.RoomReset) for e in h.events)


def test_unavailable_error_for_a_room_op_retries_soon() -> None:
    h = Harness()
    h.connect()
    h.s.join("r", h.now)
    h.pump()
    h.feed(p.ErrorFrame(code=p.ErrorCode.UNAVAILABLE, detail="busy", ref="r"))
    assert len(h.sent_of("join")) == 1
    h.tick(1.0)
    h.feed(p.Pong())
    assert len(h.sent_of("join")) == 2
    joined(h)
    h.s.leave("r", h.now)
    h.pump()
    h.feed(p.ErrorFrame(code=p.ErrorCode.UNAVAILABLE, detail="busy", ref="r"))
    h.tick(1.0)
    assert len(h.sent_of("leave")) == 2
    h.feed(p.ErrorFrame(code=p.ErrorCode.BAD_FRAME, detail="huh", ref="zzz"))
    assert isinstance(h.events[-1], ev.ServerError)


def test_restore_ignores_non_string_identity() -> None:
    s = ClientSession.restore({"token": 5, "name": ["x"]})
    assert s.token is None and s.name is None


def test_pump_respects_window_and_resends_timed_out_in_order() -> None:
    h = Harness(ack_timeout_s=1.0)
    h.connect()
    h.s.join("r", h.now)
    joined(h)
    a = h.s.say("r", "a", h.now)
    h.pump()
    h.tick(0.5)
    h.feed(p.Pong())
    b = h.s.say("r", "b", h.now)
    h.pump()
    h.tick(0.6)  # a timed out, b not yet
    ids = [f["id"] for f in h.sent_of("say")]
    assert ids == [a, b, a]


def test_every_server_frame_type_has_a_handler() -> None:
    from typing import get_args

    from tuitalk.client.session import _HANDLERS

    assert set(_HANDLERS) == set(get_args(p.ServerFrame))


def test_before_welcome_tick_only_keeps_the_heartbeat() -> None:
    h = Harness(heartbeat_s=1.0, dead_after_s=3.0)
    h.s.join("r", 0.0)
    h.s.say("r", "early", 0.0)  # not connected: stays in the outbox, nothing sent
    assert h.s.frames_to_send() == [] and len(h.s.outbox) == 1
    h.s.connecting(0.0)
    h.s.connection_made(0.0)
    assert [f["t"] for f in map(json.loads, h.s.frames_to_send())] == ["hello"]
    h.s.tick(0.5)
    assert h.s.frames_to_send() == []  # no join, no say before the welcome
    h.s.tick(1.0)
    assert [f["t"] for f in map(json.loads, h.s.frames_to_send())] == ["ping"]


def test_a_leave_is_not_resent_within_five_seconds() -> None:
    h = Harness(heartbeat_s=100.0, dead_after_s=100.0)
    h.connect()
    h.s.join("r", h.now)
    joined(h)
    h.s.leave("r", h.now)
    h.tick(4.9)
    assert len(h.sent_of("leave")) == 1
    h.tick(0.1)
    assert len(h.sent_of("leave")) == 2


def test_history_stops_at_the_first_message() -> None:
    h = Harness()
    h.connect()
    h.s.join("r", h.now)
    joined(h, head=5)
    h.s.rooms["r"].oldest = 1  # everything down to seq 1 is loaded
    assert h.s.rooms["r"].more_history
    assert not h.s.load_history("r", h.now)
    assert not h.s.rooms["r"].more_history
    assert h.sent_of("history") == []


def test_joined_the_client_did_not_ask_for_adds_the_room() -> None:
    h = Harness()
    h.connect()
    h.feed(p.Joined(room="x", epoch="e1", head=3))
    assert h.s.rooms["x"].cursor == p.Cursor("e1", 3) and h.s.rooms["x"].oldest == 4
    h.feed(dataclasses.replace(msg(4), room="x"))
    assert h.s.rooms["x"].cursor == p.Cursor("e1", 4)
    assert h.s.load_history("x", h.now)
    h.feed(p.ErrorFrame(code=p.ErrorCode.UNAVAILABLE, detail="db down", ref="x"))
    assert h.s.rooms["x"].join_sent_at is None and h.s.load_history("x", h.now)


def test_left_for_an_unknown_room_is_quiet() -> None:
    h = Harness()
    h.connect()
    before = len(h.events)
    h.feed(p.Left(room="never"))
    assert not any(isinstance(e, ev.RoomLeft) for e in h.events[before:])


def test_unavailable_history_lets_the_user_scroll_again() -> None:
    h = Harness()
    h.connect()
    h.s.join("r", h.now)
    joined(h, head=50)
    assert h.s.load_history("r", h.now)
    assert not h.s.load_history("r", h.now)  # one page at a time
    h.feed(p.ErrorFrame(code=p.ErrorCode.UNAVAILABLE, detail="db down", ref="r"))
    assert h.s.load_history("r", h.now)
    h.tick(5.0)
    assert len(h.sent_of("join")) == 1  # a joined room: no join is retried
