"""The client core: one sans-I/O session shared by the terminal, browser and load clients.

It takes frames and time in and gives frames, a next deadline and UI events out; it never
touches a socket, a clock or a thread. Drivers follow this loop::

    if session.wants_connect(now):       open a WebSocket, then session.connection_made(now)
                                         (or session.connection_failed(now) if it fails)
    on every text frame:                 session.frame_received(text, now)
    on close:                            session.connection_lost(now, code)
    at session.next_deadline() or when the user acts:   session.tick(now)
    after every call:                    send session.frames_to_send(); show session.events()
    if session.should_close():           close the socket (the peer stopped answering)

Rules of this module:

1. Every message the user sends goes into the outbox first and stays there, shown as
   pending, until the server acknowledges it. After a reconnect the whole outbox is resent
   with the same ids; the server's dedup returns the original seq, so nothing shows twice.
2. A room message is shown exactly once and in seq order: the room's cursor is the last
   ``(epoch, seq)`` shown; a message at or below it is a duplicate, one at ``seq + 1`` is
   shown, one further ahead is held and the room is re-synchronised (``join`` with
   ``since``) so that the server fills the gap.
3. A connection that has received nothing for ``dead_after_s`` is dead, even if the socket
   looks open (a frozen backend): the driver closes it and the session reconnects.
4. Reconnects are immediate the first time, then back off exponentially with full jitter.
"""

from __future__ import annotations

import random
import secrets
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any, Final

from tuitalk import protocol as p
from tuitalk.client import events as ev
from tuitalk.client.backoff import Backoff
from tuitalk.errors import RemoteProtocolError

__all__ = ["ClientSession", "OutboxEntry", "RoomView"]

#: Error codes after which a send is retried (the server did not take the message).
RETRYABLE: Final = frozenset({p.ErrorCode.UNAVAILABLE, p.ErrorCode.RATE_LIMITED,
                              p.ErrorCode.INTERNAL})
#: Delay before resending after a retryable error.
RETRY_AFTER_S: Final = 0.5
#: Sends in flight (sent, not acknowledged) per connection. The server queues 256 requests
#: per connection; staying well below means a burst is paced by acks instead of refused.
MAX_IN_FLIGHT: Final = 64
#: Close codes after which reconnecting at once would only repeat the problem.
_SLOW_RECONNECT: Final = {p.CloseCode.POLICY_VIOLATION: 2.0, p.CloseCode.TOO_MANY_CONNECTIONS: 5.0}


@dataclass
class OutboxEntry:
    id: str
    room: str
    text: str
    kind: str
    created: float
    sent_at: float | None = None  # on the current connection; None: not sent yet
    attempts: int = 0
    retry_at: float = 0.0


@dataclass
class RoomView:
    """What the client knows about one room."""

    name: str
    cursor: p.Cursor | None = None
    members: dict[str, str] = field(default_factory=dict)
    #: Messages up to this seq came by recovery, later ones live (from ``joined.top``).
    top: int = 0
    #: Oldest seq shown or loaded; history pages request ``before`` it.
    oldest: int | None = None
    more_history: bool = True
    history_pending: bool = False
    held: dict[int, p.Msg] = field(default_factory=dict)
    resync_pending: bool = False
    joined: bool = False  # joined frame received on this connection
    #: The user asked to leave; Leave is (re)sent until the server says ``left``.
    leaving: bool = False
    join_sent_at: float | None = None
    leave_sent_at: float | None = None


class ClientSession:
    """See the module docstring. All times are monotonic seconds given by the driver."""

    def __init__(
        self,
        *,
        token: str | None = None,
        name: str | None = None,
        rooms: dict[str, p.Cursor] | None = None,
        rng: random.Random | None = None,
        heartbeat_s: float = 1.0,
        dead_after_s: float = 3.5,
        ack_timeout_s: float = 10.0,
        history_limit: int = 100,
    ) -> None:
        self.rng = rng or random.Random()
        self.token = token
        self.name = name
        self.user = ""
        self.backend = ""
        self.rooms: dict[str, RoomView] = {}
        for room, cursor in (rooms or {}).items():
            self.rooms[room] = RoomView(room, cursor=cursor, oldest=cursor.seq + 1)
        self.outbox: OrderedDict[str, OutboxEntry] = OrderedDict()
        self.backoff = Backoff(rng=self.rng)
        self.heartbeat_s = heartbeat_s
        self.dead_after_s = dead_after_s
        self.ack_timeout_s = ack_timeout_s
        self.history_limit = history_limit
        #: "idle" (no socket), "connecting", "open" (hello sent), "ready" (welcomed)
        self.conn = "idle"
        self._connect_at = 0.0
        self._last_rx = 0.0
        self._last_tx = 0.0
        #: When the last welcomed connection was lost (None: up, or never connected).
        self._down_since: float | None = None
        self._dead = False
        self._stopped = False
        self._nick_pending: str | None = None
        self._pause_until = 0.0
        #: Backend to steer the next connection away from (see :meth:`connect_url`).
        self.avoid: str | None = None
        self._out: list[str] = []
        self._events: list[ev.Event] = []
        # Statistics, for tests and the chaos checker.
        self.raw_duplicates = 0
        self.shown = 0
        self.resyncs = 0
        self.reconnects = 0

    # -- outputs ----------------------------------------------------------------------------

    def frames_to_send(self) -> list[str]:
        """Frames to write to the socket now, in order. Clears the queue."""
        out, self._out = self._out, []
        return out

    def events(self) -> list[ev.Event]:
        """UI events since the last call, in order. Clears the queue."""
        out, self._events = self._events, []
        return out

    def connect_url(self, url: str) -> str:
        """The URL for the next connection attempt.

        After losing a backend the first attempt asks the load balancer to avoid it
        (``?avoid=<backend>``): a frozen backend still accepts TCP connections, and
        ``least_conn`` would send us straight back to it because it just lost its clients.
        """
        if not self.avoid:
            return url
        sep = "&" if "?" in url else "?"
        return f"{url}{sep}avoid={self.avoid}"

    def wants_connect(self, now: float) -> bool:
        return not self._stopped and self.conn == "idle" and now >= self._connect_at

    def should_close(self) -> bool:
        """True when the open connection is dead (no frame for ``dead_after_s``)."""
        return self._dead

    def next_deadline(self) -> float | None:
        """When :meth:`tick` must run next at the latest (None: only on input)."""
        if self._stopped:
            return None
        if self.conn == "idle":
            return self._connect_at
        if self.conn not in ("open", "ready"):
            return None
        deadlines = [self._last_tx + self.heartbeat_s, self._last_rx + self.dead_after_s]
        if self.conn == "ready":
            in_flight = 0
            next_unsent: float | None = None
            for e in self.outbox.values():
                if e.sent_at is None:
                    next_unsent = e.retry_at if next_unsent is None else min(next_unsent,
                                                                             e.retry_at)
                else:
                    in_flight += 1
                    deadlines.append(e.sent_at + self.ack_timeout_s)
            if next_unsent is not None and in_flight < MAX_IN_FLIGHT:
                deadlines.append(max(next_unsent, self._pause_until))
            for v in self.rooms.values():
                sent = v.leave_sent_at if v.leaving else (
                    v.join_sent_at if v.cursor is None and not v.joined else None)
                if sent is not None:
                    deadlines.append(sent + 5.0)
        return min(deadlines)

    @property
    def connected(self) -> bool:
        return self.conn == "ready"

    def snapshot(self) -> dict[str, Any]:
        """What to persist (terminal: state file; browser: localStorage) to resume later."""
        return {
            "token": self.token,
            "user": self.user,
            "name": self.name,
            "rooms": {r: v.cursor.to_wire() for r, v in self.rooms.items() if v.cursor},
            "outbox": [
                {"id": e.id, "room": e.room, "text": e.text, "kind": e.kind}
                for e in self.outbox.values()
            ],
        }

    @classmethod
    def restore(cls, data: dict[str, Any], **kwargs: Any) -> ClientSession:
        """Rebuild a session from :meth:`snapshot` output (ignores malformed parts)."""
        rooms: dict[str, p.Cursor] = {}
        for room, c in dict(data.get("rooms") or {}).items():
            try:
                p.validate_room(room)
                rooms[room] = p.Cursor(str(c["epoch"]), int(c["seq"]))
            except (RemoteProtocolError, KeyError, TypeError, ValueError):
                continue
        token = data.get("token") if isinstance(data.get("token"), str) else None
        name = data.get("name") if isinstance(data.get("name"), str) else None
        s = cls(token=token, name=name, rooms=rooms, **kwargs)
        for item in data.get("outbox") or []:
            try:
                e = OutboxEntry(str(item["id"]), str(item["room"]), str(item["text"]),
                                str(item.get("kind", "text")), 0.0)
            except (KeyError, TypeError):
                continue
            s.outbox[e.id] = e
        return s

    # -- connection life cycle (driver calls) ---------------------------------------------------

    def connecting(self, now: float) -> None:
        self.conn = "connecting"
        self._emit_state(now, "connecting" if self.user == "" else "reconnecting")

    def connection_made(self, now: float) -> None:
        """The WebSocket is open: say hello with every room's cursor."""
        self.conn = "open"
        self._dead = False
        self._last_rx = now
        for e in self.outbox.values():
            e.sent_at = None
            e.retry_at = 0.0
        for v in self.rooms.values():
            v.joined = False
            v.resync_pending = False
            v.history_pending = False
            v.join_sent_at = None
            v.leave_sent_at = None
        rooms = {r: v.cursor for r, v in self.rooms.items()
                 if v.cursor is not None and not v.leaving}
        self._send(p.Hello(token=self.token, name=self.name, rooms=rooms), now)

    def connection_failed(self, now: float, reason: str = "") -> None:
        # If steering away failed (e.g. the avoided backend is the only one up), the next
        # attempt may use any backend.
        self.avoid = None
        self.connection_lost(now, None, reason)

    def connection_lost(self, now: float, code: int | None = None, reason: str = "") -> None:
        """The socket closed (or never opened). Schedules the next connect."""
        if self.conn == "idle":
            return
        was_ready = self.conn == "ready"
        self.conn = "idle"
        self._dead = False
        delay = self.backoff.delay()
        if code is not None:
            delay = max(delay, _SLOW_RECONNECT.get(code, 0.0))
        self._connect_at = now + delay
        if was_ready:
            self._down_since = now
            self.reconnects += 1
            self.avoid = self.backend or None
        detail = f"closed ({code})" if code is not None else (reason or "connection failed")
        self._emit_state(now, "reconnecting", detail)

    def stop(self) -> None:
        """Stop reconnecting (the user quits)."""
        self._stopped = True

    def tick(self, now: float) -> None:
        """Run timers: heartbeat, dead-peer detection, ack timeouts, delayed resends."""
        if self.conn not in ("open", "ready"):
            return
        if now - self._last_rx >= self.dead_after_s:
            self._dead = True
            return
        if self.conn == "ready":
            self._send_room_ops(now)
            self._pump(now)
        if now - self._last_tx >= self.heartbeat_s:
            self._send(p.Ping(), now)

    # -- user intents ------------------------------------------------------------------------

    def say(self, room: str, text: str, now: float, kind: str = "text") -> str:
        """Queue a message; returns its client id. Raises LocalProtocolError if invalid."""
        p.validate_room(room, remote=False)
        p.validate_text(text, remote=False)
        msg_id = secrets.token_urlsafe(12)
        entry = OutboxEntry(msg_id, room, text, "me" if kind == "me" else "text", now)
        self.outbox[msg_id] = entry
        self._events.append(ev.Pending(msg_id, room, text, entry.kind))
        if self.conn == "ready":
            self._pump(now)
        return msg_id

    def join(self, room: str, now: float) -> None:
        """Join ``room`` (kept and retried across reconnects until ``joined`` arrives)."""
        p.validate_room(room, remote=False)
        v = self.rooms.get(room)
        if v is None:
            v = self.rooms[room] = RoomView(room)
        v.leaving = False
        if v.cursor is None and self.conn == "ready":
            self._send_room_ops(now)
        elif v.cursor is not None and self.conn == "ready":
            self._send(p.Join(room=room), now)  # already in: the server confirms

    def leave(self, room: str, now: float) -> None:
        """Leave ``room`` (retried across reconnects until ``left`` arrives)."""
        p.validate_room(room, remote=False)
        v = self.rooms.get(room)
        if v is None:
            return
        v.leaving = True
        if self.conn == "ready":
            self._send_room_ops(now)

    def _send_room_ops(self, now: float) -> None:
        """Send joins and leaves that are wanted and not answered (retry every 5 s)."""
        for room, v in self.rooms.items():
            if v.leaving:
                if v.leave_sent_at is None or now - v.leave_sent_at >= 5.0:
                    v.leave_sent_at = now
                    self._send(p.Leave(room=room), now)
            elif v.cursor is None and not v.joined and (
                v.join_sent_at is None or now - v.join_sent_at >= 5.0
            ):
                v.join_sent_at = now
                self._send(p.Join(room=room), now)

    def nick(self, name: str, now: float) -> None:
        name = p.normalize_name(name, remote=False)
        if self.conn == "ready":
            self._send(p.Nick(name=name), now)
        else:
            self._nick_pending = name

    def load_history(self, room: str, now: float) -> bool:
        """Ask for the page before the oldest loaded message; False if none is needed."""
        v = self.rooms.get(room)
        if v is None or self.conn != "ready" or v.history_pending or not v.more_history:
            return False
        before = v.oldest if v.oldest is not None else (v.cursor.seq + 1 if v.cursor else None)
        if before is not None and before <= 1:
            v.more_history = False
            return False
        v.history_pending = True
        self._send(p.HistoryRequest(room=room, before=before, limit=self.history_limit), now)
        return True

    # -- frames in ---------------------------------------------------------------------------

    def frame_received(self, text: str | bytes, now: float) -> None:
        """Process one frame from the server. Never raises on bad input."""
        self._last_rx = now
        try:
            frame = p.decode_server(text)
        except RemoteProtocolError as exc:
            self._events.append(ev.ServerError("client_decode", exc.detail, ""))
            return
        _HANDLERS[type(frame)](self, frame, now)  # every ServerFrame has one (tested)

    def _on_welcome(self, w: p.Welcome, now: float) -> None:
        first = self.conn != "ready"
        self.token, self.user, self.name, self.backend = w.token, w.user, w.name, w.backend
        self._events.append(ev.Welcomed(w.user, w.name, w.backend))
        if not first:
            return  # a nick confirmation
        self.conn = "ready"
        self.backoff.reset()
        self.avoid = None
        since = 0.0 if self._down_since is None else max(0.0, now - self._down_since)
        self._down_since = None
        self._emit_state(now, "connected", w.backend, since)
        self._send_room_ops(now)
        if self._nick_pending is not None:
            self._send(p.Nick(name=self._nick_pending), now)
            self._nick_pending = None
        self._pump(now)

    def _on_joined(self, j: p.Joined, now: float) -> None:
        v = self.rooms.get(j.room)
        if v is None:
            v = self.rooms[j.room] = RoomView(j.room)
        if v.leaving:
            return
        cursor = p.Cursor(j.epoch, j.head)
        if not (j.resumed and v.cursor == cursor):
            v.cursor = cursor
        v.held = {s: m for s, m in v.held.items() if s > j.head}
        v.top = j.top
        v.joined = True
        v.resync_pending = False
        if v.oldest is None or not j.resumed:
            v.oldest = j.head + 1
            v.more_history = j.head > 0
        v.members = {m.user: m.name for m in j.members}
        self._events.append(ev.RoomJoined(j.room, j.members, j.resumed))
        self._drain_held(v)

    def _on_msg(self, m: p.Msg, now: float) -> None:
        v = self.rooms.get(m.room)
        if v is None or v.cursor is None:
            return
        c = v.cursor
        if m.seq <= c.seq:
            self.raw_duplicates += 1
            return
        if m.seq > c.seq + 1:
            v.held[m.seq] = m
            if not v.resync_pending and self.conn == "ready":
                # The server promises no gaps; if one shows up anyway, ask it to replay.
                v.resync_pending = True
                self.resyncs += 1
                self._send(p.Join(room=m.room, since=c), now)
            return
        self._show(v, m)
        self._drain_held(v)

    def _drain_held(self, v: RoomView) -> None:
        while v.cursor is not None and v.held:
            nxt = v.held.pop(v.cursor.seq + 1, None)
            if nxt is None:
                v.held = {s: m for s, m in v.held.items() if s > v.cursor.seq}
                break
            self._show(v, nxt)

    def _show(self, v: RoomView, m: p.Msg) -> None:
        # No need to touch ``oldest``: a room gets a cursor only from ``joined`` or a
        # restored cursor, and both set it.
        v.cursor = p.Cursor(m.epoch, m.seq)
        mine = m.user == self.user
        self.shown += 1
        self._events.append(ev.MessageShown(m, live=m.seq > v.top, mine=mine))
        if m.kind in ("join", "nick"):
            v.members[m.user] = m.name
            self._events.append(ev.MembersChanged(v.name, self._members(v)))
        elif m.kind == "leave":
            v.members.pop(m.user, None)
            self._events.append(ev.MembersChanged(v.name, self._members(v)))
        if mine and m.id in self.outbox:
            del self.outbox[m.id]
            self._events.append(ev.Acked(m.id, m.room, m.epoch, m.seq))

    @staticmethod
    def _members(v: RoomView) -> tuple[p.Member, ...]:
        return tuple(p.Member(u, n) for u, n in sorted(v.members.items(), key=lambda x: x[1]))

    def _on_ack(self, a: p.Ack, now: float) -> None:
        if self.outbox.pop(a.id, None) is not None:
            self._events.append(ev.Acked(a.id, a.room, a.epoch, a.seq))
            self._pump(now)

    def _on_left(self, left: p.Left, now: float) -> None:
        if self.rooms.pop(left.room, None) is not None:
            self._events.append(ev.RoomLeft(left.room))
        for e in [e for e in self.outbox.values() if e.room == left.room]:
            del self.outbox[e.id]
            self._events.append(ev.SendFailed(e.id, e.room, p.ErrorCode.NOT_MEMBER,
                                              "left the room"))

    def _on_reset(self, r: p.Reset, now: float) -> None:
        v = self.rooms.get(r.room)
        if v is not None:
            v.cursor = None
            v.held.clear()
            v.oldest = None
            v.more_history = True
        self._events.append(ev.RoomReset(r.room, r.reason))

    def _on_history(self, h: p.History, now: float) -> None:
        v = self.rooms.get(h.room)
        if v is None:
            return
        v.history_pending = False
        limit = v.oldest if v.oldest is not None else (v.cursor.seq + 1 if v.cursor else 2**62)
        msgs = tuple(m for m in h.messages if m.seq < limit)
        if msgs:
            v.oldest = msgs[0].seq
        v.more_history = h.more and (not msgs or msgs[0].seq > 1)
        self._events.append(ev.HistoryLoaded(h.room, msgs, v.more_history))

    def _on_error(self, e: p.ErrorFrame, now: float) -> None:
        entry = self.outbox.get(e.ref) if e.ref else None
        if entry is not None:
            if e.code in RETRYABLE:
                entry.sent_at = None
                entry.retry_at = now + RETRY_AFTER_S * (1 + self.rng.random())
                if e.code == p.ErrorCode.RATE_LIMITED:
                    # Too fast: hold every send back a little, not just this one.
                    self._pause_until = max(self._pause_until, entry.retry_at)
            else:
                del self.outbox[entry.id]
                self._events.append(ev.SendFailed(entry.id, entry.room, e.code, e.detail))
            return
        v = self.rooms.get(e.ref) if e.ref else None
        if v is not None and e.code == p.ErrorCode.UNAVAILABLE:
            # A history page, join or leave the server could not do right now: the room
            # ops are retried by tick(); history when the user scrolls again.
            v.history_pending = False
            if v.join_sent_at is not None:
                v.join_sent_at = now - 4.0
            if v.leave_sent_at is not None:
                v.leave_sent_at = now - 4.0
        self._events.append(ev.ServerError(e.code, e.detail, e.ref))

    def _on_pong(self, _frame: p.Pong, now: float) -> None:
        return

    # -- internals -----------------------------------------------------------------------------

    def _send(self, frame: p.ClientFrame, now: float) -> None:
        self._out.append(p.encode(frame))
        self._last_tx = now

    def _pump(self, now: float) -> None:
        """Send outbox entries that are due, oldest first, within the in-flight window."""
        if now < self._pause_until:
            return
        in_flight = sum(1 for e in self.outbox.values() if e.sent_at is not None)
        for e in self.outbox.values():
            if e.sent_at is not None:
                if now - e.sent_at >= self.ack_timeout_s:
                    self._send_entry(e, now)  # no ack in time: resend, same id
                continue
            if in_flight >= MAX_IN_FLIGHT:
                break
            if now >= e.retry_at:
                self._send_entry(e, now)
                in_flight += 1

    def _send_entry(self, e: OutboxEntry, now: float) -> None:
        kind: Any = e.kind
        self._send(p.Say(room=e.room, id=e.id, text=e.text, kind=kind), now)
        e.sent_at = now
        e.attempts += 1

    def _emit_state(self, now: float, state: ev.ConnState, detail: str = "",
                    since: float | None = None) -> None:
        if since is None:
            since = 0.0 if self._down_since is None else max(0.0, now - self._down_since)
        self._events.append(ev.StateChanged(state, detail, since))


_HANDLERS: Final[dict[type, Any]] = {
    p.Welcome: ClientSession._on_welcome,
    p.Joined: ClientSession._on_joined,
    p.Msg: ClientSession._on_msg,
    p.Ack: ClientSession._on_ack,
    p.Left: ClientSession._on_left,
    p.Reset: ClientSession._on_reset,
    p.History: ClientSession._on_history,
    p.ErrorFrame: ClientSession._on_error,
    p.Pong: ClientSession._on_pong,
}
