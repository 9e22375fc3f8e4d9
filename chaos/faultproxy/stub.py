"""``ToxicStub``: one stage of a link, running one toxic between two queues.

A port of Toxiproxy's ``toxics.ToxicStub``.  A stub runs *sessions*: a session
draws the toxicity dice once, then runs the toxic's ``pipe`` (or the noop pipe)
until the stream ends or the stub is interrupted.  The link interrupts a stub to
rewire the chain or to restart it with updated attributes, then starts a new
session.

Contract for toxics (``ToxicKind.pipe``):

- wait only through the stub: ``receive``, ``receive_before``, ``send``,
  ``sleep_until``.  Each raises ``Interrupted`` once ``interrupt`` was called;
  the toxic must let it propagate (never catch it);
- keep every chunk you have taken from ``input`` but not yet sent in
  ``stub.held`` (oldest first, ``None`` for a swallowed end-of-stream).  When a
  session is interrupted the stub forwards ``held`` to ``output`` so no data is
  dropped ("don't drop any data on the floor", as Toxiproxy's toxics say);
- end the stream with ``close()``; returning from ``pipe`` without closing is a
  bug.

Contract for the link: ``start`` a session, ``await interrupt()`` before touching
``input``/``output``; when it returns True the stub is idle and may be rewired,
then ``start`` it again.  ``abandon`` when the link is torn down.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from typing import TYPE_CHECKING

import anyio
from anyio.abc import TaskGroup

from chaos.faultproxy.chunks import Chunk, ChunkQueue, Timeout

if TYPE_CHECKING:
    from chaos.faultproxy.toxics import Toxic


class Interrupted(Exception):
    """Raised inside a toxic's ``pipe`` when its stub was interrupted.

    It never leaves ``ToxicStub``: the session runner catches it.
    """


class ToxicStub:
    """Runs one toxic (``None`` = the hidden noop head of every chain)."""

    def __init__(
        self,
        input_queue: ChunkQueue,
        output_queue: ChunkQueue,
        toxic: Toxic | None,
        *,
        rng: random.Random,
        on_reset: Callable[[], None],
    ) -> None:
        self.input = input_queue
        self.output = output_queue
        self.toxic = toxic
        # Per-connection toxic state (limit_data's byte count). It survives attribute
        # updates and lives until the toxic is removed or the connection closes.
        self.state: object | None = toxic.kind.new_state() if toxic is not None else None
        self.held: list[Chunk | None] = []
        self.closed = False
        self._rng = rng
        self._on_reset = on_reset
        self._interrupting = False
        self._wakeup = anyio.Event()
        self._session_done: anyio.Event | None = None

    # -- link side ---------------------------------------------------------------

    def start(self, task_group: TaskGroup) -> None:
        """Start a new session in ``task_group`` with the toxic's current settings."""
        if self.closed:
            return
        self._interrupting = False
        self._wakeup = anyio.Event()
        done = anyio.Event()
        self._session_done = done
        task_group.start_soon(self._run_session, done)

    async def interrupt(self) -> bool:
        """Stop the running session after it hands over what it holds.

        Returns True if the stub is now idle and may be rewired and restarted, False
        if the stream through it has already ended (nothing to restart).
        """
        done = self._session_done
        if self.closed or done is None:
            return False
        self._interrupting = True
        # Wake the session wherever it is parked; it re-checks the flag first.
        self._wakeup.set()
        self.input.notify()
        self.output.notify()
        await done.wait()
        return not self.closed

    def abandon(self) -> None:
        """Mark the stub dead because its link is gone; wakes any ``interrupt`` waiter."""
        self.closed = True
        if self._session_done is not None:
            self._session_done.set()

    async def _run_session(self, done: anyio.Event) -> None:
        from chaos.faultproxy.toxics import NOOP

        try:
            toxic = self.toxic
            if toxic is not None and self._rng.random() < toxic.toxicity:
                await toxic.kind.pipe(self, dict(toxic.attributes), self._rng)
            else:
                await NOOP.pipe(self, {}, self._rng)
        except Interrupted:
            self._hand_over_held()
        finally:
            done.set()

    def _hand_over_held(self) -> None:
        for item in self.held:
            if item is None:
                self.close()
                break
            if item.data:
                self.output.push(item)
        self.held = []

    # -- toxic side --------------------------------------------------------------

    def _check_interrupt(self) -> None:
        if self._interrupting:
            raise Interrupted

    async def receive(self) -> Chunk | None:
        """Take the next chunk from ``input``; ``None`` means end of stream."""
        while True:
            self._check_interrupt()
            if len(self.input):
                return self.input.pop()
            await self.input.wait_changed()

    async def receive_before(self, deadline: float) -> Chunk | Timeout | None:
        """Like ``receive`` but returns ``Timeout.TIMED_OUT`` once ``deadline`` passes."""
        while True:
            self._check_interrupt()
            if len(self.input):
                return self.input.pop()
            if anyio.current_time() >= deadline:
                return Timeout.TIMED_OUT
            with anyio.move_on_at(deadline):
                await self.input.wait_changed()

    async def send(self, chunk: Chunk) -> None:
        """Queue ``chunk`` on ``output``, waiting for room."""
        while True:
            self._check_interrupt()
            if not self.output.full:
                self.output.push(chunk)
                return
            await self.output.wait_changed()

    async def sleep_until(self, deadline: float) -> None:
        """Sleep until ``deadline`` (``anyio.current_time()`` clock) unless interrupted."""
        self._check_interrupt()
        with anyio.move_on_at(deadline):
            await self._wakeup.wait()
        self._check_interrupt()

    def close(self, *, reset: bool = False) -> None:
        """End the stream after this stub; with ``reset`` the connection closes with RST."""
        if self.closed:
            return
        if reset:
            self._on_reset()
        self.closed = True
        self.output.push(None)
