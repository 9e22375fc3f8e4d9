"""A bounded outbound buffer per connection.

Overflow policy: the producer is told (``push`` returns False) and the connection is
closed with :data:`~tuitalk.protocol.CloseCode.SLOW_CONSUMER`; nothing is dropped
silently. The client reconnects and recovers what it missed by sequence number. Live
fan-out never waits for a slow client (one slow client must not slow a room); replays,
which are pulled rather than pushed, wait for space instead (:meth:`wait_space`).
"""

from __future__ import annotations

from collections import deque

import anyio

__all__ = ["RingBuffer"]


class RingBuffer:
    """FIFO of encoded frames bounded by count and by bytes. Single consumer."""

    def __init__(self, max_items: int, max_bytes: int) -> None:
        if max_items < 1 or max_bytes < 1:
            raise ValueError("buffer bounds must be positive")
        self.max_items = max_items
        self.max_bytes = max_bytes
        self._items: deque[str] = deque()
        self._bytes = 0
        self._readable = anyio.Event()
        self._space = anyio.Event()
        self.closed = False
        self.overflowed = False
        self.peak_items = 0

    def __len__(self) -> int:
        return len(self._items)

    @property
    def bytes(self) -> int:
        return self._bytes

    def push(self, item: str) -> bool:
        """Append ``item``; return False (and mark the buffer overflowed) if it does not fit.

        After a False the caller must close the connection with the slow-consumer code.
        """
        if self.closed:
            return False
        size = len(item)
        if len(self._items) >= self.max_items or self._bytes + size > self.max_bytes:
            self.overflowed = True
            return False
        self._items.append(item)
        self._bytes += size
        self.peak_items = max(self.peak_items, len(self._items))
        self._readable.set()
        return True

    def free_items(self) -> int:
        return self.max_items - len(self._items)

    async def wait_space(self, items: int) -> None:
        """Wait until at least ``items`` more items fit (or the buffer is closed)."""
        items = min(items, self.max_items)
        while not self.closed and self.free_items() < items:
            self._space = anyio.Event()
            await self._space.wait()

    async def get_batch(self, max_items: int = 64) -> list[str]:
        """Wait for at least one item and return up to ``max_items`` of them, oldest first.

        Returns an empty list once the buffer is closed and drained.
        """
        while not self._items:
            if self.closed:
                return []
            self._readable = anyio.Event()
            await self._readable.wait()
        out: list[str] = []
        while self._items and len(out) < max_items:
            item = self._items.popleft()
            self._bytes -= len(item)
            out.append(item)
        self._space.set()
        return out

    def close(self) -> None:
        self.closed = True
        self._readable.set()
        self._space.set()
