"""Drive a :class:`~tuitalk.client.session.ClientSession` over ``websockets.sync``.

The blocking twin of :mod:`tuitalk.client.aio`, for code that cannot run asyncio: Locust
users (gevent monkey-patches ``threading`` and ``socket``, so the "threads" here are
greenlets there) and the final reader. It adds nothing to the delivery logic: it moves
frames, time and wake-ups between one socket and the core.

Contract:

* :meth:`SyncDriver.start` starts one reader thread that owns the socket: it connects when
  the session wants to, feeds every frame to ``session.frame_received``, runs
  ``session.tick`` at ``session.next_deadline()``, closes a connection the session declares
  dead, and reconnects through the session's backoff (slow-consumer closes, 4008, included).
* Every call into the session happens under :attr:`SyncDriver.lock`. Intents
  (:meth:`call`, :meth:`say`, ...) may come from any thread; they flush the frames they
  produce at once. ``on_events`` is called under the lock, in order, after every step.
* :meth:`stop` stops reconnecting, closes the socket and joins the reader (bounded).

``on_frame`` (optional) sees each raw frame before the session does; ``on_connection``
is told ``("open", None, "")`` when a socket opened and ``("closed", code, reason)`` when
it closed or failed to open.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable
from typing import Final, TypeVar

from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidURI
from websockets.sync.client import ClientConnection, connect

from tuitalk import protocol as p
from tuitalk.client import events as ev
from tuitalk.client.session import ClientSession

__all__ = ["SyncDriver"]

T = TypeVar("T")

#: Shortest wait between timer checks: next_deadline() may already be due, and a zero
#: timeout would spin while the session has nothing to do yet.
MIN_WAIT_S: Final = 0.002
#: Longest wait when the session names no deadline (a stop still wakes us at once).
IDLE_WAIT_S: Final = 1.0
#: Frames the server may have written that we did not read yet (websockets' receive queue);
#: the server's own ring buffer is the real bound, this only caps our memory.
MAX_QUEUE: Final = 256


class SyncDriver:
    """Connect, reconnect and pump frames for one session until :meth:`stop`."""

    def __init__(
        self,
        url: str,
        session: ClientSession,
        *,
        on_events: Callable[[list[ev.Event]], None] | None = None,
        on_frame: Callable[[str], None] | None = None,
        on_connection: Callable[[str, int | None, str], None] | None = None,
        clock: Callable[[], float] = time.monotonic,
        open_timeout_s: float = 3.0,
        name: str = "driver",
    ) -> None:
        self.url = url
        self.session = session
        self.on_events = on_events or (lambda _e: None)
        self.on_frame = on_frame
        self.on_connection = on_connection or (lambda _s, _c, _r: None)
        self.clock = clock
        self.open_timeout_s = open_timeout_s
        self.name = name
        #: Guards the session and the socket reference.
        self.lock = threading.RLock()
        self.ws: ClientConnection | None = None
        self.connects = 0
        self.last_close_code: int | None = None
        self._stopped = threading.Event()
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None

    # -- life cycle ------------------------------------------------------------------------------

    def start(self) -> None:
        """Start the reader thread (once)."""
        if self._thread is not None:
            raise RuntimeError("driver already started")
        self._thread = threading.Thread(target=self._run, name=self.name, daemon=True)
        self._thread.start()

    def stop(self, timeout_s: float = 3.0) -> None:
        """Stop reconnecting, close the socket (closing handshake bounded by 1 s), and wait
        up to ``timeout_s`` for the reader thread."""
        self._stopped.set()
        with self.lock:
            self.session.stop()
            ws = self.ws
        if ws is not None:
            with contextlib.suppress(OSError, RuntimeError):
                ws.close(1000, "client stopping")  # waits for the peer at most close_timeout
            ws.close_socket()
        self._wake.set()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout_s)

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    # -- intents ---------------------------------------------------------------------------------

    def call(self, fn: Callable[[ClientSession, float], T]) -> T:
        """Run ``fn(session, now)`` under the lock, then flush frames and events."""
        with self.lock:
            result = fn(self.session, self.clock())
            self._flush()
        return result

    def say(self, room: str, text: str, kind: str = "text") -> str:
        return self.call(lambda s, now: s.say(room, text, now, kind))

    def join(self, room: str) -> None:
        self.call(lambda s, now: s.join(room, now))

    def leave(self, room: str) -> None:
        self.call(lambda s, now: s.leave(room, now))

    def send_frame(self, frame: p.ClientFrame) -> bool:
        """Send a frame outside the session (e.g. a history probe); False if not connected."""
        with self.lock:
            if self.ws is None or not self.session.connected:
                return False
            return self._send([p.encode(frame)])

    # -- the reader thread -------------------------------------------------------------------

    def _run(self) -> None:
        while not self._stopped.is_set():
            with self.lock:
                wants = self.session.wants_connect(self.clock())
                deadline = self.session.next_deadline()
            if wants:
                self._connect_and_serve()
                continue
            self._wake.wait(self._timeout(deadline))
            self._wake.clear()
            with self.lock:
                self.session.tick(self.clock())
                self._flush()

    def _timeout(self, deadline: float | None) -> float:
        if deadline is None:
            return IDLE_WAIT_S
        return min(IDLE_WAIT_S, max(MIN_WAIT_S, deadline - self.clock()))

    def _connect_and_serve(self) -> None:
        s = self.session
        with self.lock:
            s.connecting(self.clock())
            self._flush()
        try:
            ws = connect(
                self.session.connect_url(self.url), open_timeout=self.open_timeout_s,
                ping_interval=None,
                close_timeout=1, compression=None, max_size=2**20, max_queue=MAX_QUEUE,
                proxy=None,
            )
        except (OSError, TimeoutError, InvalidHandshake, InvalidURI) as exc:
            with self.lock:
                s.connection_failed(self.clock(), type(exc).__name__)
                self._flush()
            self.on_connection("closed", None, type(exc).__name__)
            return
        # Entering the connection as a context manager is what websockets >= 17.1 expects
        # (a bare connect() warns); leaving it closes the connection whatever happened.
        with ws:
            self._serve(ws)

    def _serve(self, ws: ClientConnection) -> None:
        s = self.session
        with self.lock:
            if self._stopped.is_set():
                ws.close_socket()
                return
            self.ws = ws
            self.connects += 1
            self.last_close_code = None
            self.on_connection("open", None, "")
            s.connection_made(self.clock())
            self._flush()
        reason = ""
        try:
            while not self._stopped.is_set():
                with self.lock:
                    deadline = s.next_deadline()
                try:
                    raw = ws.recv(timeout=self._timeout(deadline))
                except TimeoutError:
                    raw = None
                with self.lock:
                    if raw is not None:
                        text = raw if isinstance(raw, str) else raw.decode("utf-8", "replace")
                        if self.on_frame is not None:
                            self.on_frame(text)
                        s.frame_received(text, self.clock())
                    s.tick(self.clock())
                    if s.should_close():
                        # The peer stopped answering (frozen backend): no closing handshake.
                        reason = "dead peer"
                        break
                    self._flush()
        except ConnectionClosed:
            pass
        finally:
            ws.close_socket()
            with self.lock:
                self.ws = None
                code = ws.close_code
                self.last_close_code = code
                s.connection_lost(self.clock(), code)
                self._flush()
            self.on_connection("closed", code, reason or (ws.close_reason or ""))

    # -- frames and events -------------------------------------------------------------------------

    def _flush(self) -> None:
        """Hand the session's events on, then send its frames. Call under the lock.

        Events first: a send is recorded as invoked before its frame can be answered."""
        events = self.session.events()
        if events:
            self.on_events(events)
        frames = self.session.frames_to_send()
        if frames:
            self._send(frames)

    def _send(self, frames: list[str]) -> bool:
        ws = self.ws
        if ws is None:
            return False  # the session resends what matters after connection_made
        try:
            for f in frames:
                ws.send(f)
        except ConnectionClosed:
            return False  # the reader sees the close and tells the session
        return True
