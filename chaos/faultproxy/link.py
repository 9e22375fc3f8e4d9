"""``ToxicLink``: one direction of one proxied connection (Toxiproxy's ``link.go``).

::

    source socket -> reader -> [noop stub] -> [toxic 1] -> ... -> writer -> dest socket

The reader stamps each chunk with its arrival time; the writer sends chunks to the
destination.  When the end-of-stream marker reaches the writer (the source hit EOF
or an error, or a toxic closed the stream) the writer closes the destination socket
and the link stops all its tasks.  Closing the destination also ends the opposite
link, whose source it is, so a connection always closes as a whole (as in
Toxiproxy, where a half-close from one side fully closes the other).

Toxics are added, updated and removed on the live link by interrupting stubs,
rewiring queues and restarting them (``add_toxic``/``update_toxic``/
``remove_toxic``).  The caller (``ToxicCollection``) serialises these calls.
"""

from __future__ import annotations

import logging
import random
from collections.abc import Callable, Sequence

import anyio
from anyio.abc import TaskGroup

from chaos.faultproxy.chunks import READ_CHUNK_BYTES, Chunk, ChunkQueue, Direction
from chaos.faultproxy.sockets import TcpSocket
from chaos.faultproxy.stub import ToxicStub
from chaos.faultproxy.toxics import Toxic

log = logging.getLogger(__name__)


class ToxicLink:
    """Pumps bytes from ``source`` to ``dest`` through the toxics of ``direction``.

    Run it with ``await link.run(chain, register, unregister)``; it returns once
    the stream has ended and ``dest`` is closed.  Cancelling ``run`` also closes
    ``dest``.
    """

    def __init__(
        self,
        direction: Direction,
        source: TcpSocket,
        dest: TcpSocket,
        *,
        rng: random.Random,
        on_reset: Callable[[], None],
    ) -> None:
        self.direction = direction
        self._source = source
        self._dest = dest
        self._rng = rng
        self._on_reset = on_reset
        self._head = ChunkQueue()
        self._stubs: list[ToxicStub] = []
        self._task_group: TaskGroup | None = None
        self.finished = False

    def _new_stub(
        self, input_queue: ChunkQueue, output: ChunkQueue, toxic: Toxic | None
    ) -> ToxicStub:
        return ToxicStub(input_queue, output, toxic, rng=self._rng, on_reset=self._on_reset)

    def _build(self, chain: Sequence[Toxic]) -> ChunkQueue:
        """Create the stubs for ``chain`` behind the hidden noop; return the writer's queue."""
        toxics: list[Toxic | None] = [None, *chain]
        queue_in = self._head
        for index, toxic in enumerate(toxics):
            following = toxics[index + 1] if index + 1 < len(toxics) else None
            queue_out = ChunkQueue(following.kind.buffer_size) if following else ChunkQueue()
            self._stubs.append(self._new_stub(queue_in, queue_out, toxic))
            queue_in = queue_out
        return queue_in

    async def run(
        self,
        chain: Callable[[], Sequence[Toxic]],
        register: Callable[[ToxicLink], None],
        unregister: Callable[[ToxicLink], None],
    ) -> None:
        """Pump until the stream ends, then close ``dest``.

        ``chain()`` returns the direction's current toxics and ``register(self)``
        makes the link visible to toxic updates; both are called in one
        synchronous step so the link can neither miss nor double-apply an update.
        """
        try:
            async with anyio.create_task_group() as task_group:
                self._task_group = task_group
                tail = self._build(chain())
                register(self)
                task_group.start_soon(self._read)
                for stub in self._stubs:
                    stub.start(task_group)
                await self._write(tail)
                self.finished = True
                task_group.cancel_scope.cancel()
        finally:
            self.finished = True
            unregister(self)
            for stub in self._stubs:
                stub.abandon()
            self._dest.close()

    async def _read(self) -> None:
        try:
            while True:
                data = await self._source.receive(READ_CHUNK_BYTES)
                if not data:
                    break
                await self._head.put(Chunk(data, anyio.current_time()))
        except (OSError, anyio.ClosedResourceError) as exc:
            log.debug("link source ended direction=%s error=%r", self.direction.value, exc)
        await self._head.put(None)

    async def _write(self, tail: ChunkQueue) -> None:
        while True:
            chunk = await tail.get()
            if chunk is None:
                return
            try:
                await self._dest.send_all(chunk.data)
            except (OSError, anyio.ClosedResourceError) as exc:
                log.debug("link dest failed direction=%s error=%r", self.direction.value, exc)
                return

    # -- live updates (serialised by the caller) ------------------------------------

    def _alive(self) -> TaskGroup | None:
        return None if self.finished else self._task_group

    def _index(self, toxic: Toxic) -> int | None:
        for index, stub in enumerate(self._stubs):
            if stub.toxic is toxic:
                return index
        return None

    async def add_toxic(self, toxic: Toxic) -> None:
        """Append ``toxic`` to the end of the chain."""
        if self._alive() is None:
            return
        last = self._stubs[-1]
        queue = ChunkQueue(toxic.kind.buffer_size)
        stub = self._new_stub(queue, last.output, toxic)
        if not await last.interrupt():
            return  # the stream already ended; nothing flows any more
        task_group = self._alive()
        if task_group is None:
            return
        last.output = queue
        self._stubs.append(stub)
        stub.start(task_group)
        last.start(task_group)

    async def update_toxic(self, toxic: Toxic) -> None:
        """Restart ``toxic``'s stub so it runs with the new attributes and toxicity."""
        index = self._index(toxic)
        if index is None or self._alive() is None:
            return
        stub = self._stubs[index]
        if await stub.interrupt() and (task_group := self._alive()) is not None:
            stub.start(task_group)

    async def remove_toxic(self, toxic: Toxic) -> None:
        """Take ``toxic`` out of the chain, passing on the data it held or had queued."""
        index = self._index(toxic)
        if index is None or self._alive() is None:
            return
        stub = self._stubs[index]
        if not await stub.interrupt():
            return
        if toxic.kind.closes_on_removal:
            # Go's Cleanup: the stub closes its output, which ends this connection.
            stub.close()
            return
        previous = self._stubs[index - 1]
        previous_idle = await previous.interrupt()
        task_group = self._alive()
        if task_group is None:
            return
        # Splice: whatever waited for the removed toxic goes straight to its output.
        for item in stub.input.drain():
            if item is None:
                stub.close()
                break
            stub.output.push(item)
        previous.output = stub.output
        self._stubs.remove(stub)
        if previous_idle:
            previous.start(task_group)
