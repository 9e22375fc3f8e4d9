"""The final read: every room's whole history, once the run (and its faults) are over.

:func:`final_read` reads each room twice, independently:

* through the **WebSocket API**, as a client would: a fresh reader user joins the room (its
  join event marks where history ends for it), pages back with ``history`` requests of
  :data:`PAGE` messages until ``more`` is false, then leaves again (the reader's join and
  leave events are in the room's history; the checker knows the reader's id);
* from **PostgreSQL** (when a DSN is given), polling the ``messages`` table until it holds
  every message the API returned (the archiver works asynchronously) or ``pg_wait_s``
  passes; ``pg_complete`` records which.

It writes ``<out>/final/<room>.json`` (:class:`~chaos.workload.history.FinalRead`) per
room and returns them. Failures do not raise: a room that could not be read has
``api = None`` and an ``error``, and the checker's verdict becomes *unknown*.

Command line: ``python -m chaos.workload.final <out> --url ws://... [--dsn ...]`` (rooms
from ``<out>/run.json`` unless ``--rooms`` is given).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
from pathlib import Path
from typing import Any, Final

from chaos.workload.driver import SyncDriver
from chaos.workload.history import FinalMessage, FinalRead
from tuitalk import protocol as p
from tuitalk.client import events as ev
from tuitalk.client.session import ClientSession

__all__ = ["final_read", "read_api", "read_pg"]

#: Messages per history page. Not the protocol's maximum (500): the client core refuses
#: any frame over MAX_FRAME_BYTES (64 KiB), and 500 workload messages (about 180 bytes
#: each on the wire) make a bigger page than that; 100 stay near 18 KiB.
PAGE: Final = 100
#: Pages per room at most (bounds the read: 10,000 x 100 = one million messages).
MAX_PAGES: Final = 10_000
POLL_S: Final = 0.02
#: A page not answered within this long is asked for again (after a reconnect).
PAGE_WAIT_S: Final = 5.0


class _Collector:
    """Events of the reader's session, sorted per room."""

    def __init__(self) -> None:
        self.joined: set[str] = set()
        self.pages: dict[str, list[tuple[p.Msg, ...]]] = {}
        self.more: dict[str, bool] = {}
        self.live: dict[str, list[p.Msg]] = {}
        self.errors: dict[str, str] = {}
        self.reset: set[str] = set()
        #: A frame our own decoder refused (e.g. a page over MAX_FRAME_BYTES).
        self.undecodable = ""

    def __call__(self, events: list[ev.Event]) -> None:
        for e in events:
            if isinstance(e, ev.RoomJoined):
                self.joined.add(e.room)
            elif isinstance(e, ev.HistoryLoaded):
                self.pages.setdefault(e.room, []).append(e.messages)
                self.more[e.room] = e.more
            elif isinstance(e, ev.MessageShown):
                self.live.setdefault(e.msg.room, []).append(e.msg)
            elif isinstance(e, ev.ServerError) and e.ref:
                self.errors[e.ref] = f"{e.code}: {e.detail}"
            elif isinstance(e, ev.ServerError) and e.code == "client_decode":
                self.undecodable = f"{e.code}: {e.detail}"
            elif isinstance(e, ev.RoomReset):
                self.reset.add(e.room)


def read_api(url: str, rooms: list[str], timeout_s: float = 30.0) -> tuple[str, dict[str, Any]]:
    """Read ``rooms`` through the API. Returns the reader's user id and, per room, a list of
    :class:`FinalMessage` or an error string."""
    session = ClientSession(name="final-reader", history_limit=PAGE)
    got = _Collector()
    driver = SyncDriver(url, session, on_events=got, name="final-reader")
    deadline = time.monotonic() + timeout_s
    out: dict[str, Any] = {}
    driver.start()
    try:
        for room in rooms:
            driver.join(room)
        while time.monotonic() < deadline and not got.joined >= set(rooms):
            time.sleep(POLL_S)
        for room in rooms:
            if room not in got.joined:
                out[room] = f"not joined within {timeout_s:.0f}s"
                continue
            out[room] = _page_back(driver, got, room, deadline)
        for room in rooms:
            driver.leave(room)
        time.sleep(0.2)  # let the leaves go out; they are best effort
    finally:
        driver.stop()
    return session.user, out


def _page_back(driver: SyncDriver, got: _Collector, room: str,
               deadline: float) -> list[FinalMessage] | str:
    """Ask for older pages until the first message; survives reconnects of the reader."""
    pages = 0
    while True:
        if time.monotonic() >= deadline or pages >= MAX_PAGES:
            return f"history of {room} not read within the limits"
        if room in got.reset:
            return "reset during the read"
        if got.undecodable:
            return f"history of {room}: {got.undecodable}"
        error = got.errors.pop(room, None)
        if error is not None:
            if not error.startswith(p.ErrorCode.UNAVAILABLE):
                return f"history of {room}: {error}"
            time.sleep(0.5)  # "older history is unavailable right now": ask again
        n = len(got.pages.get(room, []))
        step = driver.call(lambda s, now: _request_page(s, room, now))
        if step == "done":
            break
        if step == "wait":
            time.sleep(POLL_S)  # reconnecting, or a page is still on its way
            continue
        pages += 1
        page_deadline = min(deadline, time.monotonic() + PAGE_WAIT_S)
        while time.monotonic() < page_deadline and len(got.pages.get(room, [])) == n \
                and room not in got.errors and not got.undecodable:
            time.sleep(POLL_S)
        # No page in time: the request was lost with a connection (the session forgets a
        # pending page on reconnect) and the next round asks again.
    msgs = [m for page in reversed(got.pages.get(room, [])) for m in page]
    msgs += got.live.get(room, [])
    by_seq: dict[tuple[str, int], p.Msg] = {}
    for m in msgs:
        by_seq.setdefault((m.epoch, m.seq), m)
    return [_final(m) for m in sorted(by_seq.values(), key=lambda m: (m.seq, m.epoch))]


def _request_page(s: ClientSession, room: str, now: float) -> str:
    """``sent`` (a page was asked for), ``wait`` (not now) or ``done`` (nothing older)."""
    v = s.rooms.get(room)
    if not s.connected or v is None or v.cursor is None or v.history_pending:
        return "wait"
    return "sent" if s.load_history(room, now) else "done"


def _final(m: p.Msg) -> FinalMessage:
    return FinalMessage(m.epoch, m.seq, m.id, m.user, m.kind, m.ts)


async def read_pg(dsn: str, rooms: list[str], expect: dict[str, set[tuple[str, int]]],
                  wait_s: float = 30.0) -> dict[str, tuple[list[FinalMessage], bool]]:
    """Read ``rooms`` from the archive, polling until each holds the ``expect`` keys (or
    ``wait_s`` passes). Returns per room the messages and whether they were complete.
    Raises OSError / asyncpg errors when PostgreSQL cannot be read at all."""
    import asyncpg

    conn = await asyncpg.connect(dsn, timeout=10)
    try:
        deadline = time.monotonic() + wait_s
        while True:
            rows = await conn.fetch(
                "SELECT room, epoch, seq, msg_id, user_id, kind, ts_ms FROM messages"
                " WHERE room = ANY($1::text[]) ORDER BY room, seq, epoch", rooms)
            per: dict[str, list[FinalMessage]] = {r: [] for r in rooms}
            for r in rows:
                per[r["room"]].append(FinalMessage(r["epoch"], int(r["seq"]), r["msg_id"],
                                                   r["user_id"], r["kind"], int(r["ts_ms"])))
            done = {room: expect.get(room, set()) <= {m.key() for m in msgs}
                    for room, msgs in per.items()}
            if all(done.values()) or time.monotonic() >= deadline:
                return {room: (per[room], done[room]) for room in rooms}
            await asyncio.sleep(0.25)
    finally:
        await conn.close()


def final_read(out: Path, url: str, *, rooms: list[str] | None = None, dsn: str | None = None,
               timeout_s: float = 30.0, pg_wait_s: float = 30.0) -> dict[str, FinalRead]:
    """Read every room of the run in ``out`` and write ``out/final/<room>.json``."""
    if rooms is None:
        rooms = list(json.loads((out / "run.json").read_text())["rooms"])
    started = time.time()
    reader, api = read_api(url, rooms, timeout_s)
    pg: dict[str, tuple[list[FinalMessage], bool]] = {}
    pg_error = ""
    if dsn:
        expect = {room: {m.key() for m in msgs} for room, msgs in api.items()
                  if isinstance(msgs, list)}
        try:
            pg = asyncio.run(read_pg(dsn, rooms, expect, pg_wait_s))
        except Exception as exc:  # any failure to read the archive: recorded, not raised
            pg_error = f"postgres: {type(exc).__name__}: {exc}"
    results: dict[str, FinalRead] = {}
    (out / "final").mkdir(parents=True, exist_ok=True)
    for room in rooms:
        a = api.get(room)
        msgs, complete = pg.get(room, (None, False))
        error = "; ".join(x for x in (a if isinstance(a, str) else "", pg_error) if x)
        results[room] = FinalRead(room=room, time=started, reader=reader,
                                  api=a if isinstance(a, list) else None, pg=msgs,
                                  pg_complete=complete, error=error)
        (out / "final" / f"{room}.json").write_text(results[room].to_json() + "\n")
    return results


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m chaos.workload.final")
    ap.add_argument("out", type=Path)
    ap.add_argument("--url", required=True)
    ap.add_argument("--dsn", default=None)
    ap.add_argument("--rooms", default=None, help="comma-separated (default: run.json)")
    ap.add_argument("--timeout", type=float, default=30.0)
    args = ap.parse_args(argv)
    rooms = args.rooms.split(",") if args.rooms else None
    results = final_read(args.out, args.url, rooms=rooms, dsn=args.dsn, timeout_s=args.timeout)
    for room, r in results.items():
        n_api = "-" if r.api is None else str(len(r.api))
        n_pg = "-" if r.pg is None else f"{len(r.pg)}{'' if r.pg_complete else ' (incomplete)'}"
        print(f"{room}: api {n_api}, pg {n_pg} {r.error}")
    return 0 if all(r.api is not None for r in results.values()) else 2


if __name__ == "__main__":
    raise SystemExit(main())
