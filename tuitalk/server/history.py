"""Reading a room's past: the Redis stream first, PostgreSQL for what it trimmed."""

from __future__ import annotations

import contextlib

from tuitalk.bus.cluster import ClusterBus
from tuitalk.errors import StoreError, StoreUnavailable
from tuitalk.protocol import Msg
from tuitalk.store.db import Store

__all__ = ["HistoryGap", "history_page", "read_range"]


class HistoryGap(StoreUnavailable):
    """Messages in the requested range are neither in the stream nor (yet) in the archive."""


async def read_range(
    bus: ClusterBus, store: Store | None, room: str, after: int, upto: int, limit: int
) -> list[Msg]:
    """Return the committed messages ``after < seq <= min(upto, after + limit)``, contiguous.

    Reads the stream; if it was trimmed past ``after``, reads the missing prefix from
    PostgreSQL. Raises HistoryGap when neither has them (PostgreSQL down or behind), and
    BusUnavailable when Redis cannot answer. Never returns a list with a hole in it.
    """
    if upto <= after:
        return []
    upto = min(upto, after + limit)
    msgs = await bus.read_after(room, after, upto, limit)
    if msgs and msgs[0].seq == after + 1:
        return _contiguous(msgs, after)
    first = msgs[0].seq if msgs else upto + 1
    if store is None:
        raise HistoryGap(f"{room}: seqs {after + 1}..{first - 1} trimmed and no archive")
    older = await store.range_after(room, after, first - 1, limit)
    merged = _contiguous(older + msgs, after)
    if not merged:
        raise HistoryGap(f"{room}: seqs {after + 1}..{first - 1} not archived yet")
    return merged


def _contiguous(msgs: list[Msg], after: int) -> list[Msg]:
    out: list[Msg] = []
    expect = after + 1
    for m in msgs:
        if m.seq < expect:
            continue
        if m.seq != expect:
            break
        out.append(m)
        expect += 1
    return out


async def history_page(
    bus: ClusterBus, store: Store | None, room: str, before: int | None, commit: int, limit: int
) -> tuple[list[Msg], bool]:
    """A page of up to ``limit`` messages with ``seq < before``, oldest first, and ``more``.

    Recent pages come from the stream (which works while PostgreSQL is down); older ones
    from the archive. Raises HistoryGap when a part of the page is in neither.
    """
    page = await bus.read_before(room, before, commit, limit)
    if len(page) < limit:
        top = page[0].seq if page else (min(commit + 1, before) if before else commit + 1)
        if top > 1:
            if store is None:
                raise HistoryGap(f"{room}: history before {top} needs the archive")
            older: list[Msg] = []
            with contextlib.suppress(StoreError):
                older = await store.history_before(room, top, limit - len(page))
            if not older and not page:
                raise HistoryGap(f"{room}: history before {top} not available")
            if older or page:
                page = older + page
    more = bool(page) and page[0].seq > 1
    return page, more
