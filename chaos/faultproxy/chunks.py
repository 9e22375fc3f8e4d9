"""Stream chunks and the bounded queues that carry them between toxic stubs.

A link (one direction of one proxied connection) is a chain::

    reader -> queue -> stub 0 (noop) -> queue -> stub 1 -> ... -> queue -> writer

Every queue has exactly one producer and one consumer.  ``None`` in a queue is
the end-of-stream marker (Go's closed channel): nothing follows it.
"""

from __future__ import annotations

import enum
from collections import deque
from dataclasses import dataclass

import anyio

# Go's io.Copy reads with a 32 KiB buffer, so Toxiproxy's chunks are at most this big.
READ_CHUNK_BYTES = 32 * 1024

# Toxiproxy uses unbuffered channels between most stubs. A handful of chunks keeps
# Python's per-hop task switches off the critical path while still bounding memory
# at a few hundred KiB per link.
DEFAULT_QUEUE_ITEMS = 4


class Direction(enum.Enum):
    """Which way the bytes flow through the proxy."""

    UPSTREAM = "upstream"  # client -> server
    DOWNSTREAM = "downstream"  # server -> client


class Timeout(enum.Enum):
    """Sentinel returned by ``ToxicStub.receive_before`` when the deadline passed first."""

    TIMED_OUT = enum.auto()


@dataclass(frozen=True, slots=True)
class Chunk:
    """Bytes read from a socket, stamped with ``anyio.current_time()`` at arrival.

    Toxics that delay data (latency) release a chunk relative to its timestamp, so
    a chunk that waited in a queue is not delayed twice.
    """

    data: bytes
    timestamp: float


class ChunkQueue:
    """A FIFO of ``Chunk | None`` with a soft bound, one producer and one consumer.

    ``get``/``put`` wait for data/space. Both are cancel-safe: an item is taken or
    added only in the synchronous step after the wait, so a cancelled call neither
    loses nor duplicates an item.  ``push`` ignores the bound; it is only used to
    hand over the few chunks a toxic was holding when it is interrupted, which keeps
    rewiring free of waits (the overshoot is bounded by what one stub can hold).

    Waiters park on ``wait_changed`` and must re-check their condition: every
    ``notify`` wakes all of them, including the stub-interrupt path which notifies
    to make a parked stub look at its interrupt flag.
    """

    def __init__(self, max_items: int = DEFAULT_QUEUE_ITEMS) -> None:
        if max_items < 1:
            raise ValueError("max_items must be at least 1")
        self._items: deque[Chunk | None] = deque()
        self._max_items = max_items
        self._changed = anyio.Event()

    def __len__(self) -> int:
        return len(self._items)

    @property
    def full(self) -> bool:
        """True when ``put`` would wait."""
        return len(self._items) >= self._max_items

    def notify(self) -> None:
        """Wake everyone parked in ``wait_changed``."""
        self._changed.set()
        self._changed = anyio.Event()

    async def wait_changed(self) -> None:
        """Park until the next ``notify`` (spurious wake-ups are allowed)."""
        await self._changed.wait()

    def push(self, item: Chunk | None) -> None:
        """Append without waiting, even past the bound (see the class docstring)."""
        self._items.append(item)
        self.notify()

    def pop(self) -> Chunk | None:
        """Remove and return the oldest item. The queue must not be empty."""
        item = self._items.popleft()
        self.notify()
        return item

    def drain(self) -> list[Chunk | None]:
        """Remove and return every queued item, oldest first."""
        items = list(self._items)
        self._items.clear()
        self.notify()
        return items

    async def get(self) -> Chunk | None:
        """Wait for an item and return it."""
        while not self._items:
            await self.wait_changed()
        return self.pop()

    async def put(self, item: Chunk | None) -> None:
        """Wait until there is room, then append ``item``."""
        while self.full:
            await self.wait_changed()
        self.push(item)
