"""The benchmark's peer: one asyncio ``websockets`` process speaking TuiTalk protocol v1
from memory, with ``broadcast()`` fan-out (the fastest path of spikes §3).

It has no Redis, no PostgreSQL, no nginx, no replication and no durability, so it is an
upper bound for what a single Python process can do with the same clients, frames and
encoder; TuiTalk's numbers are reported as a ratio of it. It keeps just enough of the
protocol for the client core: ``hello``/``welcome`` (tokens map to user ids), ``join``
(a sequenced join event; delivery starts at it), ``leave``, ``say`` (idempotent by
client id), ``history`` pages, resume from a cursor, ``ping``.

Memory is bounded: each room keeps its last :data:`KEEP` messages (older cursors get a
``reset``, older history pages end there).

Run: ``python loadtests/peer.py --port 8765`` (prints ``listening <port>`` when ready);
tests use :func:`serve_in_thread`.
"""

from __future__ import annotations

import argparse
import asyncio
import secrets
import threading
import time
from collections import deque
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from typing import Final

from websockets.asyncio.server import ServerConnection, broadcast, serve
from websockets.exceptions import ConnectionClosed

from tuitalk import protocol as p
from tuitalk.errors import RemoteProtocolError

__all__ = ["PeerHandle", "PeerServer", "serve_in_thread"]

EPOCH: Final = "peer"
#: Messages kept per room (history pages and resume read from them).
KEEP: Final = 50_000
#: Client ids remembered per room for idempotent sends.
DEDUP: Final = 100_000


@dataclass
class _Room:
    log: deque[p.Msg] = field(default_factory=lambda: deque(maxlen=KEEP))
    seq: int = 0
    members: dict[str, set[ServerConnection]] = field(default_factory=dict)
    ids: dict[tuple[str, str], int] = field(default_factory=dict)

    def append(self, room: str, user: str, name: str, kind: p.Kind, msg_id: str,
               text: str) -> p.Msg:
        self.seq += 1
        m = p.Msg(room=room, epoch=EPOCH, seq=self.seq, id=msg_id, user=user, name=name,
                  kind=kind, text=text, ts=int(time.time() * 1000))
        self.log.append(m)
        if len(self.ids) >= DEDUP:
            self.ids.clear()
        return m

    def since(self, seq: int) -> list[p.Msg] | None:
        """Messages after ``seq``, or None when some were already dropped."""
        if not self.log or seq >= self.seq:
            return []
        first = self.log[0].seq
        if seq + 1 < first:
            return None
        return list(self.log)[seq + 1 - first:]


class PeerServer:
    """All state of the peer; one instance per listening socket."""

    def __init__(self) -> None:
        self.rooms: dict[str, _Room] = {}
        self.tokens: dict[str, str] = {}
        self.names: dict[str, str] = {}
        self.connections = 0

    def room(self, name: str) -> _Room:
        r = self.rooms.get(name)
        if r is None:
            r = self.rooms[name] = _Room()
        return r

    def publish(self, room: str, m: p.Msg) -> None:
        r = self.room(room)
        conns = [c for cs in r.members.values() for c in cs]
        broadcast(conns, p.encode(m))

    async def handler(self, ws: ServerConnection) -> None:
        self.connections += 1
        user = ""
        joined: set[str] = set()
        try:
            async for raw in ws:
                try:
                    frame = p.decode_client(raw)
                except RemoteProtocolError as exc:
                    await ws.send(p.encode(p.ErrorFrame(code=exc.code, detail=exc.detail)))
                    continue
                if isinstance(frame, p.Hello):
                    user = self._hello(frame)
                    await ws.send(p.encode(p.Welcome(token=frame.token or self._token(user),
                                                     user=user, name=self.names[user],
                                                     backend="peer")))
                    for room, cursor in frame.rooms.items():
                        r = self.rooms.get(room)
                        if r is not None and user in r.members:
                            await self._attach(ws, user, room, cursor.seq, joined)
                elif not user:
                    await ws.send(p.encode(p.ErrorFrame(code=p.ErrorCode.NO_HELLO,
                                                        detail="hello first")))
                else:
                    await self._op(ws, user, frame, joined)
        except ConnectionClosed:
            pass
        finally:
            for room in joined:
                conns = self.room(room).members.get(user)
                if conns is not None:
                    conns.discard(ws)

    def _hello(self, hello: p.Hello) -> str:
        user = self.tokens.get(hello.token or "")
        if user is None:
            user = "p" + secrets.token_hex(6)
            self.names[user] = hello.name or user
        return user

    def _token(self, user: str) -> str:
        token = f"{user}.{secrets.token_urlsafe(16)}"
        self.tokens[token] = user
        return token

    async def _attach(self, ws: ServerConnection, user: str, room: str, after: int,
                      joined: set[str]) -> None:
        r = self.room(room)
        replay = r.since(after)
        resumed = replay is not None
        if replay is None:
            await ws.send(p.encode(p.Reset(room=room, reason="too far behind")))
            after, replay = r.seq, []
        await ws.send(p.encode(p.Joined(room=room, epoch=EPOCH, head=after, resumed=resumed,
                                        top=r.seq)))
        while replay:
            for m in replay:
                await ws.send(p.encode(m))
            # Messages published while we were sending went to the members only: catch up
            # with them before becoming a member (no await between the check and the add).
            replay = r.since(replay[-1].seq) or []
        r.members.setdefault(user, set()).add(ws)
        joined.add(room)

    async def _op(self, ws: ServerConnection, user: str, frame: p.ClientFrame,
                  joined: set[str]) -> None:
        name = self.names[user]
        if isinstance(frame, p.Say):
            r = self.rooms.get(frame.room)
            if r is None or user not in r.members:
                await ws.send(p.encode(p.ErrorFrame(code=p.ErrorCode.NOT_MEMBER,
                                                    detail="join first", ref=frame.id)))
                return
            seq = r.ids.get((user, frame.id))
            if seq is None:
                m = r.append(frame.room, user, name, frame.kind, frame.id, frame.text)
                r.ids[(user, frame.id)] = seq = m.seq
                await ws.send(p.encode(p.Ack(id=frame.id, room=frame.room, epoch=EPOCH,
                                             seq=seq)))
                self.publish(frame.room, m)
            else:
                await ws.send(p.encode(p.Ack(id=frame.id, room=frame.room, epoch=EPOCH,
                                             seq=seq)))
        elif isinstance(frame, p.Join):
            r = self.room(frame.room)
            if user in r.members and frame.since is None:
                await ws.send(p.encode(p.Joined(room=frame.room, epoch=EPOCH, head=r.seq,
                                                resumed=True, top=r.seq)))
                return
            if user not in r.members:
                m = r.append(frame.room, user, name, "join", "ev" + secrets.token_hex(8), "")
                await self._attach(ws, user, frame.room, m.seq - 1, joined)
                self.publish(frame.room, m)
            else:
                await self._attach(ws, user, frame.room, frame.since.seq if frame.since
                                   else r.seq, joined)
        elif isinstance(frame, p.Leave):
            r = self.room(frame.room)
            r.members.pop(user, None)
            joined.discard(frame.room)
            m = r.append(frame.room, user, name, "leave", "ev" + secrets.token_hex(8), "")
            self.publish(frame.room, m)
            await ws.send(p.encode(p.Left(room=frame.room)))
        elif isinstance(frame, p.HistoryRequest):
            r = self.room(frame.room)
            before = frame.before if frame.before is not None else r.seq + 1
            page = [m for m in r.log if m.seq < before][-frame.limit:]
            await ws.send(p.encode(p.History(room=frame.room, messages=tuple(page),
                                             more=bool(page) and page[0].seq > 1)))
        elif isinstance(frame, p.Ping):
            await ws.send(p.encode(p.Pong()))
        elif isinstance(frame, p.Nick):
            self.names[user] = frame.name
            await ws.send(p.encode(p.Welcome(token="", user=user, name=frame.name,
                                             backend="peer")))


async def _main(host: str, port: int, server: PeerServer | None = None,
                ready: threading.Event | None = None, stop: asyncio.Event | None = None,
                bound: list[int] | None = None) -> None:
    server = server or PeerServer()
    async with serve(server.handler, host, port, compression=None, max_size=2**20,
                     ping_interval=None) as ws_server:
        actual = ws_server.sockets[0].getsockname()[1] if ws_server.sockets else port
        if bound is not None:
            bound.append(actual)
        print(f"listening {actual}", flush=True)
        if ready is not None:
            ready.set()
        await (stop.wait() if stop is not None else asyncio.Future())


@dataclass
class PeerHandle:
    """A peer running in a background thread (see :func:`serve_in_thread`)."""

    url: str
    server: PeerServer
    loop: asyncio.AbstractEventLoop

    def close_all(self, code: int, reason: str = "") -> None:
        """Close every client connection with ``code`` (e.g. 4008, slow consumer)."""

        async def close() -> None:
            conns = {c for r in self.server.rooms.values() for cs in r.members.values()
                     for c in cs}
            async with asyncio.timeout(5):
                for c in conns:
                    await c.close(code, reason)

        asyncio.run_coroutine_threadsafe(close(), self.loop).result(10)


@contextmanager
def serve_in_thread(host: str = "127.0.0.1") -> Iterator[PeerHandle]:
    """Run a peer on a free port in a background thread until the block ends."""
    loop = asyncio.new_event_loop()
    ready = threading.Event()
    bound: list[int] = []
    server = PeerServer()
    stop_holder: list[asyncio.Event] = []

    def run() -> None:
        asyncio.set_event_loop(loop)
        stop = asyncio.Event()
        stop_holder.append(stop)
        loop.run_until_complete(_main(host, 0, server, ready, stop, bound))

    t = threading.Thread(target=run, name="peer", daemon=True)
    t.start()
    if not ready.wait(10):
        raise RuntimeError("peer server did not start")
    try:
        yield PeerHandle(f"ws://{host}:{bound[0]}/ws", server, loop)
    finally:
        loop.call_soon_threadsafe(stop_holder[0].set)
        t.join(10)
        loop.close()


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="peer.py")
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=8765)
    args = ap.parse_args(argv)
    with suppress(KeyboardInterrupt):
        asyncio.run(_main(args.host, args.port))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
