"""Drive a :class:`~tuitalk.client.session.ClientSession` over ``websockets`` on asyncio.

Used by ``tuitalk-cli`` (inside a Textual worker) and by the integration tests. It adds
nothing to the delivery logic: it moves frames, time and wake-ups between the socket and
the core, and hands the core's events to ``on_events``.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import anyio
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidURI

from tuitalk.client import events as ev
from tuitalk.client.intents import SessionIntents
from tuitalk.client.session import ClientSession

__all__ = ["AsyncDriver"]


class AsyncDriver(SessionIntents):
    """Connect, reconnect and pump frames for one session until :meth:`stop`."""

    def __init__(
        self,
        url: str,
        session: ClientSession,
        *,
        on_events: Callable[[list[ev.Event]], None] | None = None,
        clock: Callable[[], float] = time.monotonic,
        open_timeout_s: float = 3.0,
        origin: str | None = None,
    ) -> None:
        self.url = url
        self.session = session
        self.on_events = on_events or (lambda _e: None)
        self.clock = clock
        self.open_timeout_s = open_timeout_s
        self.origin = origin
        self.ws: ClientConnection | None = None
        self._wake = anyio.Event()
        self._stopped = False
        self.connects = 0
        #: Close code of the last connection (None while open or never connected).
        self.last_close_code: int | None = None

    # -- user intents (call from the same event loop) -----------------------------------------

    def poke(self) -> None:
        """Wake the driver after calling a session method from outside it."""
        self._wake.set()

    def stop(self) -> None:
        self._stopped = True
        self.session.stop()
        self.poke()

    async def abort(self) -> None:
        """Drop the socket without a closing handshake (tests: "kill the client")."""
        ws = self.ws
        if ws is not None:
            ws.transport.abort()

    # -- the loop ---------------------------------------------------------------------------

    async def run(self) -> None:
        while not self._stopped:
            now = self.clock()
            if self.session.wants_connect(now):
                await self._connect_and_serve()
                continue
            deadline = self.session.next_deadline()
            timeout = None if deadline is None else max(0.0, deadline - now)
            with anyio.move_on_after(timeout):
                await self._wake.wait()
            self._wake = anyio.Event()
            self.session.tick(self.clock())
            self._emit()
        self._emit()

    async def _connect_and_serve(self) -> None:
        s = self.session
        s.connecting(self.clock())
        self._emit()
        headers: dict[str, str] = {}
        kwargs: dict[str, Any] = {}
        if self.origin:
            kwargs["origin"] = self.origin
        try:
            ws = await connect(
                s.connect_url(self.url), open_timeout=self.open_timeout_s, ping_interval=None,
                close_timeout=1, compression=None, max_size=2**20,
                additional_headers=headers, **kwargs,
            )
        except (OSError, TimeoutError, InvalidHandshake, InvalidURI) as exc:
            s.connection_failed(self.clock(), type(exc).__name__)
            self._emit()
            return
        self.ws = ws
        self.connects += 1
        self.last_close_code = None
        s.connection_made(self.clock())
        try:
            await self._flush()
            async with anyio.create_task_group() as tg:
                tg.start_soon(self._ticker, tg.cancel_scope)
                try:
                    async for raw in ws:
                        s.frame_received(raw, self.clock())
                        await self._flush()
                except ConnectionClosed:
                    pass
                tg.cancel_scope.cancel()
        except ConnectionClosed:
            pass
        finally:
            self.ws = None
            code = ws.close_code
            self.last_close_code = code
            ws.transport.abort()
            s.connection_lost(self.clock(), code)
            self._emit()

    async def _ticker(self, scope: anyio.CancelScope) -> None:
        s = self.session
        while True:
            deadline = s.next_deadline()
            now = self.clock()
            timeout = None if deadline is None else max(0.0, deadline - now)
            with anyio.move_on_after(timeout):
                await self._wake.wait()
            self._wake = anyio.Event()
            if self._stopped:
                scope.cancel()
                if self.ws is not None:
                    await self.ws.close()
                return
            s.tick(self.clock())
            if s.should_close():
                # The peer stopped answering (frozen backend): do not wait for a closing
                # handshake it will never complete.
                if self.ws is not None:
                    self.ws.transport.abort()
                scope.cancel()
                return
            try:
                await self._flush()
            except ConnectionClosed:
                # The connection died under this send (its backend was killed). Raised in
                # this task, it would leave the task group as an ExceptionGroup, which the
                # `except ConnectionClosed` around it does not catch, and end run(). The
                # reader sees the same close; unacknowledged sends stay in the session's
                # outbox and go out again after the reconnect.
                scope.cancel()
                return

    async def _flush(self) -> None:
        frames = self.session.frames_to_send()
        ws = self.ws
        if ws is not None:
            for f in frames:
                await ws.send(f)
        self._emit()

    def _emit(self) -> None:
        events = self.session.events()
        if events:
            self.on_events(events)
