"""An in-memory TuiTalk server and a link that drives the real client core against it.

For TUI tests that do not need the cluster: the app gets a real ``ClientSession``; only the
socket is replaced. Everything is deterministic (user ids, names, timestamps), so screen
snapshots are stable. The server follows the real one's frame order (joined, then the
user's own join message; ack, then the message; welcome again after a nick).
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import anyio

from tuitalk import protocol as p
from tuitalk.client import events as ev
from tuitalk.client.intents import SessionIntents
from tuitalk.client.session import ClientSession

EPOCH = "e1"
T0_MS = 1_735_732_800_000  # 2025-01-01 12:00:00 UTC
NAMES = ["brave-otter", "calm-heron", "eager-lynx", "gentle-newt", "jolly-orca", "keen-vole"]


def user_id(n: int) -> str:
    return hashlib.sha256(f"user-{n}".encode()).hexdigest()[:16]


@dataclass
class FakeRoom:
    name: str
    messages: list[p.Msg] = field(default_factory=list)
    members: dict[str, str] = field(default_factory=dict)
    ids: dict[str, int] = field(default_factory=dict)
    attached: list[FakeLink] = field(default_factory=list)

    @property
    def head(self) -> int:
        return len(self.messages)


class FakeServer:
    def __init__(self) -> None:
        self.rooms: dict[str, FakeRoom] = {}
        self.tokens: dict[str, tuple[str, str]] = {}  # token -> (user, name)
        self.names: dict[str, str] = {}
        self.links: list[FakeLink] = []
        self.users = 0
        self.ticks = 0
        self.down = False  # refuse connections
        self.hold = False  # queue client frames instead of answering (pending state)
        self.held: list[tuple[FakeLink, str]] = []
        self.refuse_says: str | None = None  # error code for every say

    # -- test controls ----------------------------------------------------------------------

    def link_factory(self) -> Callable[[ClientSession, Callable[[list[ev.Event]], None]],
                                      FakeLink]:
        def make(session: ClientSession, sink: Callable[[list[ev.Event]], None]) -> FakeLink:
            link = FakeLink(self, session, sink)
            self.links.append(link)
            return link

        return make

    def room(self, name: str) -> FakeRoom:
        return self.rooms.setdefault(name, FakeRoom(name))

    def new_user(self, name: str | None = None) -> tuple[str, str]:
        n = self.users
        self.users += 1
        return user_id(n), name or NAMES[n % len(NAMES)]

    def post(self, room: str, user: str, name: str, text: str, kind: p.Kind = "text",
             msg_id: str | None = None) -> p.Msg:
        """A message from someone (not necessarily connected), fanned out to members."""
        r = self.room(room)
        self.ticks += 1
        m = p.Msg(room=room, epoch=EPOCH, seq=r.head + 1,
                  id=msg_id or f"m{self.ticks:08d}", user=user, name=name, kind=kind,
                  text=text, ts=T0_MS + 15_000 * self.ticks)
        r.messages.append(m)
        if kind in ("join", "nick"):
            r.members[user] = name
        elif kind == "leave":
            r.members.pop(user, None)
        if msg_id is not None:
            r.ids[msg_id] = m.seq
        frame = p.encode(m)
        for link in list(r.attached):
            link.deliver(frame)
        return m

    def add_member(self, room: str, name: str | None = None) -> tuple[str, str]:
        user, name = self.new_user(name)
        self.post(room, user, name, "", "join")
        return user, name

    def preload(self, room: str, n: int, members: int = 3) -> None:
        """``n`` messages from ``members`` other users, without fan-out cost."""
        r = self.room(room)
        people = [self.add_member(room) for _ in range(members)]
        for i in range(n):
            user, name = people[i % len(people)]
            self.ticks += 1
            r.messages.append(p.Msg(room=room, epoch=EPOCH, seq=r.head + 1,
                                    id=f"h{self.ticks:08d}", user=user, name=name, kind="text",
                                    text=f"history line {i}", ts=T0_MS + 15_000 * self.ticks))

    def release(self) -> None:
        """Answer the frames queued while ``hold`` was set."""
        self.hold = False
        held, self.held = self.held, []
        for link, text in held:
            self.receive(link, text)
            link.poke()

    # -- protocol ---------------------------------------------------------------------------

    def receive(self, link: FakeLink, text: str) -> None:
        if self.hold:
            self.held.append((link, text))
            return
        frame = p.decode_client(text)
        if isinstance(frame, p.Hello):
            self._hello(link, frame)
        elif isinstance(frame, p.Ping):
            link.deliver(p.encode(p.Pong()))
        elif isinstance(frame, p.Join):
            self._join(link, frame)
        elif isinstance(frame, p.Say):
            self._say(link, frame)
        elif isinstance(frame, p.Leave):
            r = self.room(frame.room)
            self.post(frame.room, link.user, link.name, "", "leave")
            if link in r.attached:
                r.attached.remove(link)
            link.deliver(p.encode(p.Left(room=frame.room)))
        elif isinstance(frame, p.Nick):
            old, link.name = link.name, frame.name
            self.tokens[link.token] = (link.user, link.name)
            for r in self.rooms.values():
                if link.user in r.members:
                    self.post(r.name, link.user, link.name, old, "nick")
            link.deliver(p.encode(p.Welcome(token=link.token, user=link.user, name=link.name,
                                            backend="backend-1")))
        elif isinstance(frame, p.HistoryRequest):
            r = self.room(frame.room)
            before = frame.before if frame.before is not None else r.head + 1
            older = [m for m in r.messages if m.seq < before]
            page = older[-frame.limit:]
            more = bool(page) and page[0].seq > 1
            link.deliver(p.encode(p.History(room=frame.room, messages=tuple(page), more=more)))

    def _hello(self, link: FakeLink, h: p.Hello) -> None:
        if h.token in self.tokens:
            link.user, link.name = self.tokens[h.token or ""]
            link.token = h.token or ""
        else:
            link.user, link.name = self.new_user(h.name)
            link.token = f"{link.user}.{'s' * 40}"
            self.tokens[link.token] = (link.user, link.name)
        link.deliver(p.encode(p.Welcome(token=link.token, user=link.user, name=link.name,
                                        backend="backend-1")))
        for room, r in self.rooms.items():
            if link.user in r.members:
                self._attach(link, r, h.rooms.get(room))

    def _attach(self, link: FakeLink, r: FakeRoom, since: p.Cursor | None,
                fresh: bool = False) -> None:
        resumed = since is not None and since.epoch == EPOCH and not fresh
        start = since.seq if since is not None else r.head
        link.deliver(p.encode(p.Joined(room=r.name, epoch=EPOCH, head=start,
                                       members=tuple(p.Member(u, n)
                                                     for u, n in sorted(r.members.items())),
                                       resumed=resumed, top=r.head)))
        for m in r.messages[start:]:
            link.deliver(p.encode(m))
        if link not in r.attached:
            r.attached.append(link)

    def _join(self, link: FakeLink, j: p.Join) -> None:
        r = self.room(j.room)
        if link.user in r.members and link in r.attached and j.since is None:
            link.deliver(p.encode(p.Joined(room=r.name, epoch=EPOCH, head=r.head,
                                           members=tuple(p.Member(u, n)
                                                         for u, n in sorted(r.members.items())),
                                           resumed=True, top=r.head)))
            return
        if j.since is not None:
            self._attach(link, r, j.since)
            return
        self.post(j.room, link.user, link.name, "", "join")
        self._attach(link, r, p.Cursor(EPOCH, r.head - 1), fresh=True)

    def _say(self, link: FakeLink, s: p.Say) -> None:
        r = self.room(s.room)
        if self.refuse_says is not None:
            link.deliver(p.encode(p.ErrorFrame(code=self.refuse_says, detail="refused",
                                               ref=s.id)))
            return
        if s.id in r.ids:
            seq = r.ids[s.id]
        else:
            seq = self.post(s.room, link.user, link.name, s.text, s.kind, msg_id=s.id).seq
        link.deliver(p.encode(p.Ack(id=s.id, room=s.room, epoch=EPOCH, seq=seq)))


class FakeLink(SessionIntents):
    """Drives a ClientSession against a FakeServer; same surface as AsyncDriver."""

    def __init__(self, server: FakeServer, session: ClientSession,
                 sink: Callable[[list[ev.Event]], None]) -> None:
        self.server = server
        self.session = session
        self.sink = sink
        self.user = ""
        self.name = ""
        self.token = ""
        self.inbox: list[str] = []
        self.connected = False
        self._wake = anyio.Event()
        self._stopped = False

    def clock(self) -> float:
        return time.monotonic()

    def poke(self) -> None:
        self._wake.set()

    def deliver(self, text: str) -> None:
        if self.connected:
            self.inbox.append(text)
            self.poke()

    def drop(self) -> None:
        """The connection breaks (as if the backend died)."""
        if self.connected:
            self.connected = False
            for r in self.server.rooms.values():
                if self in r.attached:
                    r.attached.remove(self)
            self.inbox.clear()
            self.session.connection_lost(self.clock(), 1006)
            self.poke()

    async def run(self) -> None:
        s = self.session
        while not self._stopped:
            now = self.clock()
            if s.wants_connect(now):
                s.connecting(now)
                if self.server.down:
                    s.connection_failed(now, "refused")
                else:
                    self.connected = True
                    s.connection_made(now)
            self._pump()
            deadline = s.next_deadline()
            timeout = None if deadline is None else max(0.0, deadline - self.clock())
            with anyio.move_on_after(timeout):
                await self._wake.wait()
            self._wake = anyio.Event()
            s.tick(self.clock())
            if s.should_close():
                self.drop()
        self._emit()

    def _pump(self) -> None:
        s = self.session
        for _ in range(10_000):
            frames = s.frames_to_send()
            if self.connected:
                for f in frames:
                    self.server.receive(self, f)
            if not self.inbox:
                break
            inbox, self.inbox = self.inbox, []
            for text in inbox:
                s.frame_received(text, self.clock())
        self._emit()

    def _emit(self) -> None:
        events = self.session.events()
        if events:
            self.sink(events)

    # -- the Link surface -------------------------------------------------------------------

    def stop(self) -> None:
        self._stopped = True
        self.session.stop()
        self.poke()

    async def abort(self) -> None:
        self.drop()
