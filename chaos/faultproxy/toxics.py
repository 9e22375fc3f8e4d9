"""The toxics: configuration (``Toxic``) and behaviour (``ToxicKind`` subclasses).

Each kind is a port of the matching ``toxics/*.go`` file of Toxiproxy 2.12 and
follows the stub contract documented in ``stub.py``.  Attributes are integers,
named and defaulted (to 0) exactly like Toxiproxy's JSON fields.

Differences from Toxiproxy, on purpose:

- negative attributes are rejected with 400 (Go accepts them and then misbehaves:
  a negative ``rate`` makes the bandwidth toxic panic); ``slicer`` also needs
  ``average_size >= 1`` (Go loops or panics on 0);
- ``bandwidth`` with ``rate`` 0 passes data unthrottled (Go stalls the stream by
  sending empty slices forever); it paces with a deadline clock instead of Go's
  accumulated sleep error, which gives the same rate without drift;
- ``reset_peer`` always closes with RST (``SO_LINGER`` 0) when it fires.  Go sets
  the linger option only on connections that already had the toxic when they were
  accepted, so adding it to a live connection gives a FIN there;
- ``slow_close`` interrupted while it delays an end-of-stream passes the EOF on
  (Go swallows it and the connection hangs);
- ``latency`` stamps a released chunk with its release time (what Go's code
  intends; its arithmetic double-counts the queueing time).
"""

from __future__ import annotations

import math
import random
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, ClassVar

import anyio

from chaos.faultproxy.chunks import DEFAULT_QUEUE_ITEMS, Chunk, Direction, Timeout
from chaos.faultproxy.errors import BAD_REQUEST_BODY, BadRequest

if TYPE_CHECKING:
    from chaos.faultproxy.stub import ToxicStub

Attributes = dict[str, int]

_INT64_MIN, _INT64_MAX = -(2**63), 2**63 - 1


class ToxicKind:
    """Behaviour shared by every toxic of one ``type``.

    Subclasses set ``name`` (the API ``type``), ``fields`` (attribute names in
    Toxiproxy's JSON order) and implement ``pipe``.
    """

    name: ClassVar[str]
    fields: ClassVar[tuple[str, ...]] = ()
    # Capacity of the queue feeding this toxic (Go's GetBufferSize).
    buffer_size: ClassVar[int] = DEFAULT_QUEUE_ITEMS
    # Go's CleanupToxic: removing the toxic closes the connections it was applied to.
    closes_on_removal: ClassVar[bool] = False

    def new_state(self) -> object | None:
        """Per-connection state, created when a link starts with (or gains) the toxic."""
        return None

    def validate(self, attributes: Mapping[str, int]) -> None:
        """Raise ``BadRequest`` if the attributes cannot work."""
        for key in self.fields:
            if attributes[key] < 0:
                raise BadRequest(f"{BAD_REQUEST_BODY}: {key} must not be negative")

    async def pipe(self, stub: ToxicStub, attributes: Attributes, rng: random.Random) -> None:
        """Move chunks from ``stub.input`` to ``stub.output`` until the stream ends."""
        raise NotImplementedError


async def _forward(stub: ToxicStub, chunk: Chunk) -> None:
    stub.held = [chunk]
    await stub.send(chunk)
    stub.held = []


class NoopToxic(ToxicKind):
    """Passes everything through (the hidden head of every chain; also a valid type)."""

    name = "noop"

    async def pipe(self, stub: ToxicStub, attributes: Attributes, rng: random.Random) -> None:
        while True:
            chunk = await stub.receive()
            if chunk is None:
                stub.close()
                return
            await _forward(stub, chunk)


class LatencyToxic(ToxicKind):
    """Releases each chunk ``latency`` ± ``jitter`` ms after it arrived (ms)."""

    name = "latency"
    fields = ("latency", "jitter")
    # Deep buffer (as in Go) so that latency does not also throttle throughput.
    buffer_size = 1024

    async def pipe(self, stub: ToxicStub, attributes: Attributes, rng: random.Random) -> None:
        latency_ms, jitter_ms = attributes["latency"], attributes["jitter"]
        while True:
            chunk = await stub.receive()
            if chunk is None:
                stub.close()
                return
            delay_ms = latency_ms + (rng.randrange(-jitter_ms, jitter_ms) if jitter_ms > 0 else 0)
            release_at = chunk.timestamp + delay_ms / 1000
            stub.held = [chunk]
            await stub.sleep_until(release_at)
            await _forward(stub, Chunk(chunk.data, max(chunk.timestamp, release_at)))


class BandwidthToxic(ToxicKind):
    """Limits throughput to ``rate`` KB/s (1 KB = 1000 bytes), in slices of 100 ms."""

    name = "bandwidth"
    fields = ("rate",)

    async def pipe(self, stub: ToxicStub, attributes: Attributes, rng: random.Random) -> None:
        rate_kb_s = attributes["rate"]
        if rate_kb_s == 0:
            await NOOP.pipe(stub, {}, rng)
            return
        bytes_per_s = rate_kb_s * 1000
        slice_bytes = rate_kb_s * 100  # what the link may carry in 100 ms
        next_free = anyio.current_time()
        while True:
            chunk = await stub.receive()
            if chunk is None:
                stub.close()
                return
            data = chunk.data
            while data:
                piece = data[:slice_bytes]
                stub.held = [Chunk(data, chunk.timestamp)]
                # Idle time is not banked as burst credit: pacing restarts from now.
                next_free = max(next_free, anyio.current_time()) + len(piece) / bytes_per_s
                await stub.sleep_until(next_free)
                await stub.send(Chunk(piece, chunk.timestamp))
                data = data[len(piece) :]
            stub.held = []


class SlowCloseToxic(ToxicKind):
    """Delays the end of the stream by ``delay`` ms; data passes untouched."""

    name = "slow_close"
    fields = ("delay",)

    async def pipe(self, stub: ToxicStub, attributes: Attributes, rng: random.Random) -> None:
        while True:
            chunk = await stub.receive()
            if chunk is None:
                stub.held = [None]
                await stub.sleep_until(anyio.current_time() + attributes["delay"] / 1000)
                stub.held = []
                stub.close()
                return
            await _forward(stub, chunk)


class TimeoutToxic(ToxicKind):
    """Drops all data; closes the connection after ``timeout`` ms (0 = never).

    Removing it closes the connections it was applied to (Go's ``Cleanup``).
    """

    name = "timeout"
    fields = ("timeout",)
    closes_on_removal = True

    async def pipe(self, stub: ToxicStub, attributes: Attributes, rng: random.Random) -> None:
        timeout_ms = attributes["timeout"]
        deadline = anyio.current_time() + timeout_ms / 1000 if timeout_ms > 0 else math.inf
        while True:
            item = await stub.receive_before(deadline)
            if item is None or item is Timeout.TIMED_OUT:
                stub.close()
                return
            # Anything else is dropped on the ground, as in Toxiproxy.


class ResetPeerToxic(ToxicKind):
    """On the first chunk (discarded) waits ``timeout`` ms, then resets the connection.

    Like Go, the wait cannot be interrupted: removing the toxic during it still
    ends in a reset (and the API call waits for it).
    """

    name = "reset_peer"
    fields = ("timeout",)

    async def pipe(self, stub: ToxicStub, attributes: Attributes, rng: random.Random) -> None:
        await stub.receive()
        await anyio.sleep(attributes["timeout"] / 1000)
        stub.close(reset=True)


class SlicerToxic(ToxicKind):
    """Cuts chunks into slices of ``average_size`` ± ``size_variation`` bytes,
    sleeping ``delay`` µs after each slice."""

    name = "slicer"
    fields = ("average_size", "size_variation", "delay")

    def validate(self, attributes: Mapping[str, int]) -> None:
        super().validate(attributes)
        if attributes["average_size"] < 1:
            raise BadRequest(f"{BAD_REQUEST_BODY}: average_size must be at least 1")

    @staticmethod
    def cut(size: int, average: int, variation: int, rng: random.Random) -> list[tuple[int, int]]:
        """Return ``(start, end)`` slices covering ``range(size)``, in order.

        Halves recursively around the middle ± ``variation`` until a piece is within
        ``variation`` of ``average`` (Go's ``chunk``); the cut is clamped so every
        piece is non-empty and the recursion always makes progress.
        """
        slices: list[tuple[int, int]] = []
        pending = [(0, size)]
        while pending:
            start, end = pending.pop()
            if (end - start) - average <= variation:
                slices.append((start, end))
                continue
            offset = rng.randrange(-variation, variation) if variation > 0 else 0
            mid = min(max(start + (end - start) // 2 + offset, start + 1), end - 1)
            pending.append((mid, end))  # popped after the left half: order is kept
            pending.append((start, mid))
        return slices

    async def pipe(self, stub: ToxicStub, attributes: Attributes, rng: random.Random) -> None:
        average, variation = attributes["average_size"], attributes["size_variation"]
        delay_s = attributes["delay"] / 1_000_000
        while True:
            chunk = await stub.receive()
            if chunk is None:
                stub.close()
                return
            data, stamp = chunk.data, chunk.timestamp
            for start, end in self.cut(len(data), average, variation, rng):
                stub.held = [Chunk(data[start:], stamp)]
                await stub.send(Chunk(data[start:end], stamp))
                stub.held = [Chunk(data[end:], stamp)]
                await stub.sleep_until(anyio.current_time() + delay_s)
            stub.held = []


@dataclass
class LimitDataState:
    """Bytes this connection has already let through (survives attribute updates)."""

    transmitted: int = 0


class LimitDataToxic(ToxicKind):
    """Closes the connection once ``bytes`` bytes have passed."""

    name = "limit_data"
    fields = ("bytes",)

    def new_state(self) -> object | None:
        return LimitDataState()

    async def pipe(self, stub: ToxicStub, attributes: Attributes, rng: random.Random) -> None:
        state = stub.state
        if not isinstance(state, LimitDataState):
            state = stub.state = LimitDataState()
        limit = attributes["bytes"]
        while True:
            chunk = await stub.receive()
            if chunk is None:
                stub.close()
                return
            remaining = max(limit - state.transmitted, 0)
            if remaining < len(chunk.data):
                chunk = Chunk(chunk.data[:remaining], chunk.timestamp)
            if chunk.data:
                await _forward(stub, chunk)
                state.transmitted += len(chunk.data)
            if limit - state.transmitted <= 0:
                stub.close()
                return


NOOP = NoopToxic()

TOXIC_KINDS: Mapping[str, ToxicKind] = {
    kind.name: kind
    for kind in (
        NOOP,
        LatencyToxic(),
        BandwidthToxic(),
        SlowCloseToxic(),
        TimeoutToxic(),
        ResetPeerToxic(),
        SlicerToxic(),
        LimitDataToxic(),
    )
}


def json_type_name(value: object) -> str:
    """Name a JSON value's type the way Go's decoder errors do."""
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int | float):
        return f"number {value}"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    if isinstance(value, dict):
        return "object"
    return "null"


def parse_attributes(
    kind: ToxicKind, raw: object, base: Mapping[str, int] | None = None
) -> Attributes:
    """Decode the ``attributes`` JSON value onto ``base`` (or zero defaults).

    Like Go's decoder: unknown keys are ignored, keys match case-insensitively,
    ``null`` leaves a value unchanged, and values must be JSON integers.  Raises
    ``BadRequest`` on a type error or if ``kind.validate`` rejects the result.
    """
    attributes: Attributes = dict(base) if base is not None else dict.fromkeys(kind.fields, 0)
    if raw is None:
        kind.validate(attributes)
        return attributes
    go_type = f"toxics.{type(kind).__name__}"
    if not isinstance(raw, dict):
        raise BadRequest(
            f"{BAD_REQUEST_BODY}: json: cannot unmarshal {json_type_name(raw)} into Go struct "
            f"field ToxicWrapper.attributes of type {go_type}"
        )
    for key, value in raw.items():
        name = key if key in kind.fields else None
        if name is None:
            name = next((f for f in kind.fields if f.casefold() == key.casefold()), None)
        if name is None or value is None:
            continue
        if type(value) is not int or not _INT64_MIN <= value <= _INT64_MAX:
            raise BadRequest(
                f"{BAD_REQUEST_BODY}: json: cannot unmarshal {json_type_name(value)} into Go "
                f"struct field {type(kind).__name__}.attributes.{name} of type int64"
            )
        attributes[name] = value
    kind.validate(attributes)
    return attributes


def _json_number(value: float) -> int | float:
    # Go prints float32(1) as 1, not 1.0.
    return int(value) if value.is_integer() else value


@dataclass(eq=False)
class Toxic:
    """A named toxic on one proxy and direction, as configured through the API.

    ``attributes`` and ``toxicity`` are replaced in place by updates; running
    stubs pick the new values up when the link restarts them.
    """

    name: str
    kind: ToxicKind
    direction: Direction
    toxicity: float = 1.0
    attributes: Attributes = field(default_factory=dict)

    def to_json(self) -> dict[str, object]:
        """Toxiproxy's JSON shape, in Go's field order."""
        return {
            "attributes": {key: self.attributes.get(key, 0) for key in self.kind.fields},
            "name": self.name,
            "type": self.kind.name,
            "stream": self.direction.value,
            "toxicity": _json_number(self.toxicity),
        }
