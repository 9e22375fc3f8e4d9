"""Drive a :class:`~tuitalk.client.session.ClientSession` over the browser's WebSocket.

The browser counterpart of :mod:`tuitalk.client.aio`: it moves frames, time and wake-ups
between ``js.WebSocket`` and the sans-I/O core, and adds no delivery logic. It runs on
Pyodide's ``WebLoop`` (asyncio on the browser's event loop: ``asyncio.sleep`` and timeouts
are ``setTimeout``); socket events arrive through ``create_proxy`` callbacks.

Calling contract:

- :meth:`BrowserDriver.run` is the one long-lived coroutine; it opens connections when the
  session wants one, runs the session's timers and returns after :meth:`stop`.
- After calling a session intent (``say``, ``join`` ...) from a UI handler, call
  :meth:`BrowserDriver.poke`: it flushes the frames the intent produced and reschedules the
  timer. The wrappers (:meth:`say`, :meth:`join` ...) do both.
- ``on_events`` receives every batch of UI events, in order, synchronously.

Rules:

1. One socket at a time. Each socket has its own callbacks, bound to a :class:`_Conn`; a
   callback of a socket that was given up is ignored, so a late frame from a dead backend
   can never reach the session.
2. The browser WebSocket has no connect timeout and its ``close()`` waits for the peer's
   closing handshake. So a connect that takes longer than ``open_timeout_s`` is abandoned,
   and a peer the session declares dead (``should_close()``) is abandoned at once, without
   waiting for the ``close`` event that a frozen backend would only send much later.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable
from typing import Any

import js
from pyodide.ffi import JsException, create_proxy

from tuitalk.client import events as ev
from tuitalk.client.intents import SessionIntents
from tuitalk.client.session import ClientSession
from tuitalk.protocol import too_deep

__all__ = ["BrowserDriver"]

#: Close code the browser reports when the connection dropped without a closing handshake.
_ABNORMAL = 1006


class _Conn:
    """One browser WebSocket and the proxies of its event handlers."""

    def __init__(self, driver: BrowserDriver, url: str) -> None:
        self.driver = driver
        self.ws: Any = js.WebSocket.new(url)
        self.opened = False
        self.live = True
        self._proxies: list[tuple[str, Any]] = []
        for name, handler in (
            ("open", self._on_open), ("message", self._on_message),
            ("close", self._on_close), ("error", self._on_error),
        ):
            proxy = create_proxy(handler)
            self._proxies.append((name, proxy))
            self.ws.addEventListener(name, proxy)

    def _on_open(self, _evt: Any) -> None:
        if self.live:
            self.opened = True
            self.driver._opened(self)

    def _on_message(self, evt: Any) -> None:
        if not self.live:
            return
        data = evt.data
        if not isinstance(data, str):
            # Protocol v1 is text only; the core reports a binary frame, never raises.
            self.driver._frame(self, b"\x00")
        elif too_deep(data):
            self.driver.refused_frames += 1
            js.console.warn("tuitalk: refused a frame nested too deeply to parse safely")
        else:
            self.driver._frame(self, data)

    def _on_close(self, evt: Any) -> None:
        if self.live:
            self.driver._closed(self, int(evt.code))

    def _on_error(self, _evt: Any) -> None:
        # Always followed by a close event, which does the work.
        return

    def send(self, frame: str) -> None:
        try:
            self.ws.send(frame)
        except JsException:
            # Only possible while CONNECTING; the session sends nothing before open.
            self.driver.send_errors += 1

    def abandon(self) -> None:
        """Stop listening and close without waiting for the peer."""
        self.live = False
        for name, proxy in self._proxies:
            self.ws.removeEventListener(name, proxy)
            proxy.destroy()
        self._proxies.clear()
        with contextlib.suppress(JsException):
            self.ws.close()


class BrowserDriver(SessionIntents):
    """Connect, reconnect and pump frames for one session until :meth:`stop`."""

    def __init__(
        self,
        url: str,
        session: ClientSession,
        *,
        on_events: Callable[[list[ev.Event]], None] | None = None,
        clock: Callable[[], float] = time.monotonic,
        open_timeout_s: float = 3.0,
    ) -> None:
        self.url = url
        self.session = session
        self.on_events = on_events or (lambda _e: None)
        self.clock = clock
        self.open_timeout_s = open_timeout_s
        self._conn: _Conn | None = None
        self._opening_since = 0.0
        self._wake = asyncio.Event()
        self._stopped = False
        # Statistics, shown in the page's debug hook and used by tests.
        self.connects = 0
        self.send_errors = 0
        self.refused_frames = 0
        self.last_close_code: int | None = None

    # -- user intents ------------------------------------------------------------------------

    def poke(self) -> None:
        """Flush what a session call produced and re-evaluate the timer."""
        self._flush()
        self._wake.set()

    def stop(self) -> None:
        self._stopped = True
        self.session.stop()
        if self._conn is not None:
            conn, self._conn = self._conn, None
            conn.abandon()
        self._wake.set()

    # -- the loop ------------------------------------------------------------------------------

    async def run(self) -> None:
        try:
            while not self._stopped:
                now = self.clock()
                s = self.session
                if self._conn is None and s.wants_connect(now):
                    self._open(now)
                elif self._conn is not None and not self._conn.opened:
                    if now - self._opening_since >= self.open_timeout_s:
                        self._give_up(now, None, "connect timeout")
                        continue
                else:
                    s.tick(now)
                    if self._conn is not None and s.should_close():
                        # The peer stopped answering (frozen backend).
                        self._give_up(now, None, "no answer")
                        continue
                    self._flush()
                await self._sleep(self._timeout(self.clock()))
        finally:
            if self._conn is not None:
                self._conn.abandon()
                self._conn = None
            self._emit()

    def _timeout(self, now: float) -> float | None:
        if self._conn is not None and not self._conn.opened:
            return max(0.0, self._opening_since + self.open_timeout_s - now)
        deadline = self.session.next_deadline()
        return None if deadline is None else max(0.0, deadline - now)

    async def _sleep(self, seconds: float | None) -> None:
        """Until :meth:`poke` or ``seconds`` (None: only a poke), whichever comes first."""
        self._wake.clear()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._wake.wait(), seconds)

    def _open(self, now: float) -> None:
        self.session.connecting(now)
        self._emit()
        self._opening_since = now
        try:
            self._conn = _Conn(self, self.url)
        except JsException as exc:  # a malformed URL: SyntaxError from the constructor
            self._conn = None
            self.session.connection_failed(now, str(exc))
            self._emit()

    def _give_up(self, now: float, code: int | None, reason: str) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            conn.abandon()
        self.last_close_code = code
        self.session.connection_lost(now, code, reason)
        self._emit()

    # -- socket callbacks ------------------------------------------------------------------------

    def _opened(self, conn: _Conn) -> None:
        if conn is not self._conn:
            return
        self.connects += 1
        self.last_close_code = None
        self.session.connection_made(self.clock())
        self.poke()

    def _frame(self, conn: _Conn, data: str | bytes) -> None:
        if conn is not self._conn:
            return
        self.session.frame_received(data, self.clock())
        self._flush()

    def _closed(self, conn: _Conn, code: int) -> None:
        if conn is not self._conn:
            return
        now = self.clock()
        if conn.opened:
            self._give_up(now, code, "")
        else:
            self._give_up(now, None, f"connect failed ({code})" if code != _ABNORMAL
                          else "connect failed")
        self._wake.set()

    # -- plumbing --------------------------------------------------------------------------------

    def _flush(self) -> None:
        frames = self.session.frames_to_send()
        conn = self._conn
        if conn is not None and conn.opened:
            for f in frames:
                conn.send(f)
        self._emit()

    def _emit(self) -> None:
        events = self.session.events()
        if events:
            self.on_events(events)
