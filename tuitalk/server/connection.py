"""One client WebSocket on a backend: reader, op worker, writer and catch-ups.

Tasks of a connection, all in its own task group::

    reader      decodes frames; answers ping at once; queues every other frame
    op worker   runs queued ops one by one (hello, join, leave, say, nick, history), so a
                sender's messages are sequenced in the order it sent them and a slow Redis
                (failover) never delays pongs
    writer      drains the ring buffer into the socket
    catch-ups   one per room that is replaying from the stream

Nothing a client sends can crash the backend: every decode error becomes an ``error``
frame with its code; too many of them within a window close the connection with 1008.
"""

from __future__ import annotations

import contextlib
import logging
import secrets
import time
from typing import TYPE_CHECKING, Final

import anyio
from anyio.abc import TaskGroup
from websockets.asyncio.server import ServerConnection
from websockets.exceptions import ConnectionClosed

from tuitalk import protocol as p
from tuitalk.bus.entries import Epochs
from tuitalk.errors import BusError, BusUnavailable, RemoteProtocolError, StoreError
from tuitalk.logs import log_event
from tuitalk.protocol import CloseCode, ErrorCode
from tuitalk.server.delivery import RoomDelivery, Verdict
from tuitalk.server.history import HistoryGap, history_page, read_range
from tuitalk.server.identity import hash_secret, new_identity, parse_token, suggest_name, verify
from tuitalk.server.ratelimit import AbuseMeter, TokenBucket
from tuitalk.server.ringbuffer import RingBuffer

if TYPE_CHECKING:
    from tuitalk.server.app import Backend

__all__ = ["ClientConnection"]

log = logging.getLogger("tuitalk.server")

#: Messages replayed per read during catch-up; the ring buffer must have room for them.
REPLAY_BATCH: Final = 200
#: A cursor further behind than this is not replayed: the client gets a reset and loads
#: history on demand instead (a week offline should not mean 100,000 frames at once).
MAX_REPLAY: Final = 20_000
#: Ops queued per connection (hello, say, join, ...). Beyond it: error rate_limited.
OP_QUEUE: Final = 256


class _Closing(Exception):
    """Raised inside the connection's tasks to end it with a close code."""

    def __init__(self, code: int, reason: str) -> None:
        super().__init__(reason)
        self.code = code
        self.reason = reason


class ClientConnection:
    def __init__(self, backend: Backend, ws: ServerConnection, addr: str) -> None:
        self.backend = backend
        self.ws = ws
        self.addr = addr
        cfg = backend.config
        self.ring = RingBuffer(cfg.ring_max_frames, cfg.ring_max_bytes)
        now = time.monotonic()
        self.bucket = TokenBucket(cfg.rate_per_s, cfg.rate_burst, now)
        self.abuse = AbuseMeter(cfg.abuse_max_errors, cfg.abuse_window_s)
        self.user = ""
        self.name = ""
        self.token = ""
        self.hello_seen = False
        self.welcomed = False
        self.rooms: dict[str, RoomDelivery] = {}
        send, recv = anyio.create_memory_object_stream[p.ClientFrame](OP_QUEUE)
        self._ops_send = send
        self._ops_recv = recv
        self._tg: TaskGroup | None = None
        self._closing: tuple[int, str] | None = None

    # -- life cycle --------------------------------------------------------------------------

    async def serve(self) -> None:
        """Run until the socket closes; always detaches from the hub."""
        metrics = self.backend.metrics
        metrics.connections.inc()
        try:
            async with anyio.create_task_group() as tg:
                self._tg = tg
                tg.start_soon(self._writer)
                tg.start_soon(self._op_worker)
                await self._reader()
                tg.cancel_scope.cancel()
        except* ConnectionClosed:
            pass
        finally:
            metrics.connections.dec()
            for room in list(self.rooms):
                self.backend.hub.detach(room, self)
            self.rooms.clear()
            self.ring.close()
            if self._closing is not None:
                with anyio.CancelScope(shield=True), contextlib.suppress(Exception):
                    await self._close_handshake(*self._closing)

    async def _close_handshake(self, code: int, reason: str) -> None:
        """Close with ``code``, discarding what the client still sends meanwhile.

        Nobody reads the socket any more, and websockets stops reading once its queue is
        full, so without draining it would never see the client's close frame and would
        hang until its close timeout.
        """
        async with anyio.create_task_group() as tg:

            async def drain() -> None:
                with contextlib.suppress(ConnectionClosed):
                    async for _ in self.ws:
                        pass

            tg.start_soon(drain)
            await self.ws.close(code, reason)
            tg.cancel_scope.cancel()

    def close(self, code: int, reason: str) -> None:
        """Close the connection soon (from any task); idempotent."""
        if self._closing is not None:
            return
        self._closing = (code, reason)
        self.ring.close()
        if self._tg is not None:
            self._tg.cancel_scope.cancel()

    async def _reader(self) -> None:
        async for raw in self.ws:
            if self._closing is not None:
                return
            now = time.monotonic()
            try:
                frame = p.decode_client(raw)
            except RemoteProtocolError as exc:
                self._error(exc.code, exc.detail)
                continue
            if isinstance(frame, p.Ping):
                self.push(p.encode(p.Pong()))
                continue
            if not self.bucket.take(now):
                ref = getattr(frame, "id", "") or getattr(frame, "room", "")
                self._error(ErrorCode.RATE_LIMITED, "slow down", ref)
                continue
            if isinstance(frame, p.Hello):
                if self.hello_seen:
                    self._error(ErrorCode.DUP_HELLO, "hello was already sent")
                    continue
                self.hello_seen = True
            elif not self.hello_seen:
                self._error(ErrorCode.NO_HELLO, "send hello first")
                continue
            try:
                self._ops_send.send_nowait(frame)
            except anyio.WouldBlock:
                self._error(ErrorCode.RATE_LIMITED, "too many pending requests",
                            getattr(frame, "id", ""))

    async def _writer(self) -> None:
        metrics = self.backend.metrics
        while True:
            batch = await self.ring.get_batch()
            if not batch:
                return
            for text in batch:
                await self.ws.send(text)
            metrics.messages_out.inc(len(batch))

    def push(self, text: str) -> bool:
        """Queue a frame; on overflow close as a slow consumer (never drop silently)."""
        if self._closing is not None:
            return False
        if self.ring.push(text):
            return True
        self.backend.metrics.overflows.inc()
        log_event("slow_consumer", backend=self.backend.config.name, user=self.user,
                  queued=len(self.ring))
        self.close(CloseCode.SLOW_CONSUMER, "slow consumer")
        return False

    def _error(self, code: str, detail: str, ref: str = "") -> None:
        self.backend.metrics.protocol_errors.labels(code=code).inc()
        self.push(p.encode(p.ErrorFrame(code=code, detail=detail, ref=ref)))
        if code in (ErrorCode.UNAVAILABLE, ErrorCode.INTERNAL):
            return
        weight = 0.1 if code == ErrorCode.RATE_LIMITED else 1.0
        if self.abuse.record(time.monotonic(), weight):
            log_event("abusive_client_closed", backend=self.backend.config.name, addr=self.addr)
            self.close(CloseCode.POLICY_VIOLATION, "too many invalid frames")

    # -- ops ------------------------------------------------------------------------------------

    async def _op_worker(self) -> None:
        async with self._ops_recv:
            async for frame in self._ops_recv:
                try:
                    await self._op(frame)
                except BusUnavailable as exc:
                    ref = getattr(frame, "id", "") or getattr(frame, "room", "")
                    log_event("op_unavailable", op=frame.T, error=str(exc)[:200])
                    self._error(ErrorCode.UNAVAILABLE, "storage busy, retry", ref)
                    if isinstance(frame, p.Hello) and not self.welcomed:
                        # Without a welcome the client can do nothing here: let it
                        # reconnect (with backoff), maybe to a backend that can serve it.
                        self.close(CloseCode.TRY_AGAIN_LATER, "identity store unavailable")
                except (BusError, StoreError) as exc:
                    log.exception("op %s failed", frame.T)
                    self._error(ErrorCode.INTERNAL, type(exc).__name__,
                                getattr(frame, "id", ""))

    async def _op(self, frame: p.ClientFrame) -> None:
        if isinstance(frame, p.Hello):
            await self._hello(frame)
        elif isinstance(frame, p.Say):
            await self._say(frame)
        elif isinstance(frame, p.Join):
            await self._join(frame)
        elif isinstance(frame, p.Leave):
            await self._leave(frame)
        elif isinstance(frame, p.Nick):
            await self._nick(frame)
        elif isinstance(frame, p.HistoryRequest):
            await self._history(frame)

    async def _hello(self, hello: p.Hello) -> None:
        bus = self.backend.bus
        store = self.backend.store
        parsed = parse_token(hello.token)
        profile: dict[str, str] = {}
        if parsed is not None:
            profile = await bus.get_user(parsed[0])
            if not profile and store is not None:
                # The user's shard lost its data: the archive remembers the token hash.
                with contextlib.suppress(StoreError):
                    profile = await store.find_user(parsed[0]) or {}
            if profile and not verify(parsed[1], profile.get("th", "")):
                profile = {}
        if parsed is not None and profile:
            self.user = parsed[0]
            self.token = hello.token or ""
            self.name = profile.get("name") or suggest_name(self.user)
            new_user = False
        else:
            self.user, self.token = new_identity()
            self.name = hello.name or suggest_name(self.user)
            new_user = True
        th = hash_secret(self.token.partition(".")[2])
        await bus.put_user(self.user, name=self.name, th=th, seen=int(time.time() * 1000))
        if new_user:
            self.backend.archiver.queue_user(self.user, self.name, th)
        self.welcomed = True
        self.push(p.encode(p.Welcome(token=self.token, user=self.user, name=self.name,
                                     backend=self.backend.config.name)))
        log_event("hello", backend=self.backend.config.name, user=self.user, new=new_user,
                  rooms=len(hello.rooms))
        rooms = set(hello.rooms)
        with contextlib.suppress(BusUnavailable):
            rooms |= await bus.user_rooms(self.user)
        for room in sorted(rooms)[: p.MAX_ROOMS]:
            if not await bus.is_member(room, self.user):
                if room in hello.rooms:
                    self.push(p.encode(p.Left(room=room)))
                with contextlib.suppress(BusUnavailable):
                    await bus.remove_user_room(self.user, room)
                continue
            since = hello.rooms.get(room)
            if since is None:
                # A room the client does not know it is in (its "joined" was lost to a
                # disconnect): deliver from the user's own join event.
                point = await bus.join_point(room, self.user)
                if point is not None:
                    since = p.Cursor(point[0], max(0, point[1] - 1))
            await self._attach(room, since=since)

    async def _say(self, say: p.Say) -> None:
        if say.room not in self.rooms:
            self._error(ErrorCode.NOT_MEMBER, f"join {say.room} first", say.id)
            return
        res = await self.backend.publish(say.room, user=self.user, msg_id=say.id,
                                         name=self.name, kind=say.kind, text=say.text)
        if res.status == "not_member":
            self._error(ErrorCode.NOT_MEMBER, f"not a member of {say.room}", say.id)
            return
        self.backend.metrics.messages_in.inc()
        self.push(p.encode(p.Ack(id=say.id, room=say.room, epoch=res.epoch, seq=res.seq,
                                 replicas=res.replicas)))

    async def _join(self, join: p.Join) -> None:
        if join.room in self.rooms and join.since is None:
            # Already here: confirm without a new join event.
            d = self.rooms[join.room]
            members = await self._members(join.room)
            self.push(p.encode(p.Joined(room=join.room, epoch=d.cursor.epoch,
                                        head=d.cursor.seq, members=members, resumed=True,
                                        top=d.cursor.seq)))
            return
        if len(self.rooms) >= p.MAX_ROOMS:
            self._error(ErrorCode.TOO_MANY_ROOMS, f"at most {p.MAX_ROOMS} rooms", join.room)
            return
        bus = self.backend.bus
        res = await self.backend.publish(join.room, user=self.user, msg_id=_event_id(),
                                         name=self.name, kind="join", text="")
        fresh = res.status in ("ok", "dup")  # "dup": a retried join that did write
        if fresh:
            await bus.register_room(join.room)
        await bus.add_user_room(self.user, join.room)
        if join.room in self.rooms:
            self._detach(join.room)
        if fresh and join.since is None:
            # Start right before our own join event, so the client sees it.
            await self._attach(join.room, since=p.Cursor(res.epoch, res.seq - 1), fresh=True)
        else:
            await self._attach(join.room, since=join.since)

    async def _leave(self, leave: p.Leave) -> None:
        # "not_member" (left already, e.g. a leave retried after a reconnect) is fine:
        # leaving is idempotent and always answered with "left".
        await self.backend.publish(leave.room, user=self.user, msg_id=_event_id(),
                                   name=self.name, kind="leave", text="")
        with contextlib.suppress(BusUnavailable):
            await self.backend.bus.remove_user_room(self.user, leave.room)
        self._detach(leave.room)
        self.push(p.encode(p.Left(room=leave.room)))

    async def _nick(self, nick: p.Nick) -> None:
        old, new = self.name, nick.name
        if new != old:
            self.name = new
            await self.backend.bus.put_user(self.user, name=new)
            for room in sorted(self.rooms):
                await self.backend.publish(room, user=self.user, msg_id=_event_id(),
                                           name=new, kind="nick", text=old)
        self.push(p.encode(p.Welcome(token=self.token, user=self.user, name=self.name,
                                     backend=self.backend.config.name)))

    async def _history(self, req: p.HistoryRequest) -> None:
        if req.room not in self.rooms:
            self._error(ErrorCode.NOT_MEMBER, f"join {req.room} first", req.room)
            return
        bus = self.backend.bus
        state = await bus.room_state(req.room)
        try:
            page, more = await history_page(bus, self.backend.store, req.room, req.before,
                                            state.commit, req.limit)
        except HistoryGap:
            self._error(ErrorCode.UNAVAILABLE, "older history is unavailable right now",
                        req.room)
            return
        text = p.encode(p.History(room=req.room, messages=tuple(page), more=more))
        while len(text) > p.MAX_HISTORY_FRAME_BYTES and len(page) > 1:
            # Long messages: send fewer per page (the newest), the client asks for more.
            page = page[len(page) // 2:]
            text = p.encode(p.History(room=req.room, messages=tuple(page), more=True))
        await self.ring.wait_space(1)
        self.push(text)

    async def _members(self, room: str) -> tuple[p.Member, ...]:
        raw = await self.backend.bus.members(room)
        # Members are listed up to a cap; the room list shows a count beyond it.
        return tuple(p.Member(user=u, name=n) for u, n in sorted(raw.items())[:500])

    # -- delivery ------------------------------------------------------------------------------

    async def _attach(self, room: str, since: p.Cursor | None, fresh: bool = False) -> None:
        """Become a local member of ``room`` and start delivery after ``since``."""
        hub = self.backend.hub
        feed = await hub.attach(room, self)
        resumed = False
        if since is not None and fresh:
            cursor = since
        elif since is not None and feed.epochs.can_continue(since.epoch, since.seq) and (
            feed.head - since.seq <= MAX_REPLAY
        ):
            cursor = since
            resumed = True
        else:
            if since is not None:
                self.backend.metrics.resets.inc()
                log_event("reset", room=room, user=self.user, reason="cursor_unusable")
                self.push(p.encode(p.Reset(room=room, reason="cursor cannot be continued")))
            cursor = p.Cursor(feed.epoch, feed.head)
        d = RoomDelivery(room, cursor, catching_up=True)
        self.rooms[room] = d
        members = await self._members(room)
        self.push(p.encode(p.Joined(room=room, epoch=cursor.epoch, head=cursor.seq,
                                    members=members, resumed=resumed,
                                    top=max(feed.head, cursor.seq))))
        self._start_catch_up(room)

    def _detach(self, room: str) -> None:
        if self.rooms.pop(room, None) is not None:
            self.backend.hub.detach(room, self)

    def deliver(self, room: str, msg: p.Msg, text: str, epochs: Epochs) -> None:
        """Called by the hub for every committed message of a room we are in."""
        d = self.rooms.get(room)
        if d is None or self._closing is not None:
            return
        verdict = d.offer(msg, epochs)
        if verdict is Verdict.SEND:
            self.push(text)
            if msg.kind == "leave" and msg.user == self.user:
                # Left from another connection of the same user.
                self._detach(room)
                self.push(p.encode(p.Left(room=room)))
        elif verdict is Verdict.GAP:
            self._start_catch_up(room)
        elif verdict is Verdict.RESET:
            self._reset(room)

    def _reset(self, room: str) -> None:
        self.backend.metrics.resets.inc()
        log_event("reset", room=room, user=self.user, reason="epoch_rollback")
        self.push(p.encode(p.Reset(room=room, reason="room history changed (failover)")))
        self._detach(room)
        if self._tg is not None:
            self._tg.start_soon(self._reattach, room)

    async def _reattach(self, room: str) -> None:
        with contextlib.suppress(BusUnavailable):
            await self._attach(room, since=None)

    def _start_catch_up(self, room: str) -> None:
        d = self.rooms.get(room)
        if d is None or self._tg is None:
            return
        d.start_catch_up()
        if d.replaying:
            return  # its task reads on until the cursor meets the feed
        d.replaying = True
        self.backend.metrics.catch_ups.inc()
        self._tg.start_soon(self._catch_up, room, d)

    async def _catch_up(self, room: str, d: RoomDelivery) -> None:
        """Replay ``room`` from the stream (then archive) until the cursor meets the feed.

        Bound to one delivery: if the room is detached and attached again meanwhile (a
        resync, a reset), this task ends and the new delivery has its own.
        """
        hub = self.backend.hub
        attempt = 0
        try:
            while True:
                feed = hub.feed(room)
                if self.rooms.get(room) is not d or feed is None or self._closing is not None:
                    return
                if d.cursor.seq >= feed.head:
                    out, verdict = d.finish_catch_up(feed.epochs)
                    for m in out:
                        self.push(p.encode(m))
                    if verdict is Verdict.RESET:
                        self._reset(room)
                        return
                    if verdict is Verdict.SEND:
                        return
                    # Held messages beyond the feed's head (it moved back after a rollback):
                    # wait for the feed rather than spin.
                    await anyio.sleep(0.02)
                    continue
                await self.ring.wait_space(REPLAY_BATCH + 16)
                try:
                    msgs = await read_range(self.backend.bus, self.backend.store, room,
                                            d.cursor.seq, feed.head, REPLAY_BATCH)
                except (BusUnavailable, StoreError) as exc:
                    attempt += 1
                    log_event("catch_up_retry", room=room, error=type(exc).__name__)
                    await anyio.sleep(min(2.0, 0.05 * 2**attempt))
                    continue
                attempt = 0
                if self.rooms.get(room) is not d:
                    return
                for m in msgs:
                    verdict = d.replayed(m, feed.epochs)
                    if verdict is Verdict.SEND:
                        self.push(p.encode(m))
                    elif verdict is Verdict.RESET:
                        self._reset(room)
                        return
                if not msgs:
                    await anyio.sleep(0.05)
        finally:
            d.replaying = False


def _event_id() -> str:
    return "ev" + secrets.token_hex(8)

