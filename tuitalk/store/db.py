"""The PostgreSQL archive through asyncpg.

PostgreSQL is not critical: every method raises
:class:`~tuitalk.errors.StoreUnavailable` when the server cannot be reached, and callers
carry on (chat keeps working, history falls back to the Redis stream, the archiver
catches up later). The pool is created lazily and re-created after the server returns.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable
from importlib import resources
from typing import Any, Final

import anyio
import asyncpg

from tuitalk.errors import StoreError, StoreUnavailable
from tuitalk.logs import log_event
from tuitalk.protocol import KINDS, Kind, Msg

__all__ = ["Store"]

log = logging.getLogger("tuitalk.store")

#: Errors that mean "the server is not there right now", not "the query is wrong".
_UNAVAILABLE: Final = (
    OSError,
    ConnectionError,
    TimeoutError,
    asyncpg.PostgresConnectionError,
    asyncpg.InterfaceError,
    asyncpg.CannotConnectNowError,
    asyncpg.AdminShutdownError,
    asyncpg.CrashShutdownError,
)

#: Serialises schema migrations of several backends starting at once.
_MIGRATION_LOCK_ID: Final = 0x7475_6974  # "tuit"

_INSERT: Final = """
INSERT INTO messages (room, epoch, seq, msg_id, user_id, name, kind, body, ts_ms)
SELECT * FROM unnest($1::text[], $2::text[], $3::bigint[], $4::text[], $5::text[],
                     $6::text[], $7::text[], $8::text[], $9::bigint[])
ON CONFLICT (room, epoch, seq) DO NOTHING
RETURNING room, seq, user_id, name, kind, ts_ms
"""

_COLUMNS: Final = "room, epoch, seq, msg_id, user_id, name, kind, body, ts_ms"


def _row_to_msg(row: Any) -> Msg:
    kind: Kind = row["kind"] if row["kind"] in KINDS else "text"
    return Msg(
        room=row["room"], epoch=row["epoch"], seq=int(row["seq"]), id=row["msg_id"],
        user=row["user_id"], name=row["name"], kind=kind, text=row["body"],
        ts=int(row["ts_ms"]),
    )


class Store:
    """Archive, history and users in PostgreSQL. Safe to use before the server is up."""

    def __init__(self, dsn: str, *, timeout_s: float = 3.0, pool_max: int = 4) -> None:
        self.dsn = dsn
        self.timeout_s = timeout_s
        self.pool_max = pool_max
        self._pool: asyncpg.Pool | None = None
        self._lock = anyio.Lock()
        self._next_attempt = 0.0

    @property
    def connected(self) -> bool:
        return self._pool is not None

    async def aclose(self) -> None:
        pool, self._pool = self._pool, None
        if pool is not None:
            with anyio.CancelScope(shield=True):
                try:
                    await pool.close()
                except _UNAVAILABLE:
                    pool.terminate()

    async def _get_pool(self) -> asyncpg.Pool:
        if self._pool is not None:
            return self._pool
        async with self._lock:
            if self._pool is not None:
                return self._pool
            now = time.monotonic()
            if now < self._next_attempt:
                raise StoreUnavailable("PostgreSQL unreachable (retrying shortly)")
            try:
                with anyio.fail_after(self.timeout_s):
                    pool = await asyncpg.create_pool(
                        self.dsn, min_size=1, max_size=self.pool_max,
                        command_timeout=self.timeout_s, timeout=self.timeout_s,
                    )
                    await self._migrate(pool)
            except (*_UNAVAILABLE, asyncpg.PostgresError) as exc:
                # Do not retry a connect more than twice a second per backend.
                self._next_attempt = now + 0.5
                raise StoreUnavailable(f"PostgreSQL unreachable: {type(exc).__name__}") from exc
            log_event("store_connected")
            self._pool = pool
            return pool

    async def _migrate(self, pool: asyncpg.Pool) -> None:
        files = sorted(
            (f for f in resources.files("tuitalk.store").joinpath("migrations").iterdir()
             if f.name.endswith(".sql")),
            key=lambda f: f.name,
        )
        async with pool.acquire() as conn:
            await conn.execute("SELECT pg_advisory_lock($1)", _MIGRATION_LOCK_ID)
            try:
                await conn.execute(
                    "CREATE TABLE IF NOT EXISTS schema_migrations ("
                    " version text PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())"
                )
                rows = await conn.fetch("SELECT version FROM schema_migrations")
                done = {r["version"] for r in rows}
                for f in files:
                    if f.name in done:
                        continue
                    async with conn.transaction():
                        await conn.execute(f.read_text())
                        await conn.execute(
                            "INSERT INTO schema_migrations (version) VALUES ($1)", f.name
                        )
            finally:
                await conn.execute("SELECT pg_advisory_unlock($1)", _MIGRATION_LOCK_ID)

    async def _run(self, op: str, fn: Any) -> Any:
        """Run ``fn(conn)`` on a pooled connection, translating errors."""
        pool = await self._get_pool()
        try:
            with anyio.fail_after(self.timeout_s * 2):
                async with pool.acquire() as conn:
                    return await fn(conn)
        except _UNAVAILABLE as exc:
            await self._drop_pool(pool)
            raise StoreUnavailable(f"{op}: PostgreSQL unavailable: {type(exc).__name__}") from exc
        except asyncpg.PostgresError as exc:
            raise StoreError(f"{op}: {exc}") from exc

    async def _drop_pool(self, pool: Any) -> None:
        if self._pool is not pool or pool is None:
            return
        self._pool = None
        pool.terminate()

    async def ping(self) -> bool:
        try:
            await self._run("ping", lambda c: c.fetchval("SELECT 1"))
        except StoreError:
            return False
        return True

    # -- archive -----------------------------------------------------------------------

    async def archive(self, msgs: Iterable[Msg]) -> int:
        """Store ``msgs`` idempotently and apply their user/membership effects once.

        Returns how many were new. Safe to call again with the same messages, and from
        several backends at once.
        """
        batch = list(msgs)
        if not batch:
            return 0

        async def fn(conn: asyncpg.Connection) -> int:
            async with conn.transaction():
                rows = await conn.fetch(
                    _INSERT,
                    [m.room for m in batch], [m.epoch for m in batch], [m.seq for m in batch],
                    [m.id for m in batch], [m.user for m in batch], [m.name for m in batch],
                    [m.kind for m in batch], [m.text for m in batch], [m.ts for m in batch],
                )
                rooms = {m.room for m in batch}
                await conn.executemany(
                    "INSERT INTO rooms (name) VALUES ($1) ON CONFLICT DO NOTHING",
                    [(r,) for r in rooms],
                )
                # Users seen in the new rows: create or refresh name and last_seen.
                latest: dict[str, tuple[str, int]] = {}
                for r in rows:
                    prev = latest.get(r["user_id"])
                    if prev is None or r["ts_ms"] >= prev[1]:
                        latest[r["user_id"]] = (r["name"], int(r["ts_ms"]))
                await conn.executemany(
                    "INSERT INTO users (id, name, last_seen)"
                    " VALUES ($1, $2, to_timestamp($3 / 1000.0))"
                    " ON CONFLICT (id) DO UPDATE SET name = EXCLUDED.name,"
                    " last_seen = GREATEST(users.last_seen, EXCLUDED.last_seen)",
                    [(u, n, ts) for u, (n, ts) in latest.items()],
                )
                changes = [
                    (r["user_id"], r["room"], r["kind"] == "join", int(r["seq"]))
                    for r in rows if r["kind"] in ("join", "leave")
                ]
                await conn.executemany(
                    "INSERT INTO memberships (user_id, room, present, event_seq)"
                    " VALUES ($1, $2, $3, $4)"
                    " ON CONFLICT (user_id, room) DO UPDATE SET present = EXCLUDED.present,"
                    " event_seq = EXCLUDED.event_seq"
                    " WHERE memberships.event_seq < EXCLUDED.event_seq",
                    changes,
                )
                return len(rows)

        result: int = await self._run("archive", fn)
        return result

    async def max_seq(self, room: str) -> int:
        """Highest archived seq of ``room`` (0 if none)."""
        value = await self._run(
            "max_seq", lambda c: c.fetchval("SELECT max(seq) FROM messages WHERE room = $1", room)
        )
        return int(value or 0)

    async def range_after(self, room: str, after: int, upto: int, limit: int) -> list[Msg]:
        """Archived messages with ``after < seq <= upto``, oldest first."""
        rows = await self._run(
            "range_after",
            lambda c: c.fetch(
                f"SELECT {_COLUMNS} FROM messages WHERE room = $1 AND seq > $2 AND seq <= $3"
                " ORDER BY seq, ts_ms LIMIT $4",
                room, after, upto, limit,
            ),
        )
        return [_row_to_msg(r) for r in rows]

    async def history_before(self, room: str, before: int | None, limit: int) -> list[Msg]:
        """Up to ``limit`` archived messages with ``seq < before``, oldest first."""
        top = before if before is not None else 2**62
        rows = await self._run(
            "history_before",
            lambda c: c.fetch(
                f"SELECT {_COLUMNS} FROM messages WHERE room = $1 AND seq < $2"
                " ORDER BY seq DESC, ts_ms DESC LIMIT $3",
                room, top, limit,
            ),
        )
        return [_row_to_msg(r) for r in reversed(rows)]

    async def count(self, room: str) -> int:
        value = await self._run(
            "count", lambda c: c.fetchval("SELECT count(*) FROM messages WHERE room = $1", room)
        )
        return int(value or 0)

    # -- users ------------------------------------------------------------------------------

    async def upsert_user(self, user: str, name: str, token_hash: str) -> None:
        await self._run(
            "upsert_user",
            lambda c: c.execute(
                "INSERT INTO users (id, name, token_hash) VALUES ($1, $2, $3)"
                " ON CONFLICT (id) DO UPDATE SET token_hash = EXCLUDED.token_hash,"
                " last_seen = now()",
                user, name, token_hash,
            ),
        )

    async def find_user(self, user: str) -> dict[str, str] | None:
        row = await self._run(
            "find_user",
            lambda c: c.fetchrow("SELECT name, token_hash FROM users WHERE id = $1", user),
        )
        if row is None or row["token_hash"] is None:
            return None
        return {"name": row["name"], "th": row["token_hash"]}

    async def user_rooms(self, user: str) -> set[str]:
        rows = await self._run(
            "user_rooms",
            lambda c: c.fetch(
                "SELECT room FROM memberships WHERE user_id = $1 AND present", user
            ),
        )
        return {r["room"] for r in rows}
