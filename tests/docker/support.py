"""Helpers of the Docker tests: the archive (through psql in the postgres container)."""

from __future__ import annotations

import secrets
import time
from dataclasses import dataclass

from chaos.platforms.docker import DockerPlatform
from compose.images import BuildReport


@dataclass
class Timings:
    """Session set-up costs, reported by test_docker_deployment."""

    images: BuildReport
    up_s: float = 0.0


def pg_query(platform: DockerPlatform, sql: str) -> str:
    """Run ``sql`` with psql inside the postgres container; the unaligned output."""
    return platform.pg_query(sql)


def archived(platform: DockerPlatform, room: str) -> list[tuple[str, int, str]]:
    """``(epoch, seq, id)`` of every message of ``room`` in PostgreSQL, in order."""
    rows = []
    for line in pg_query(platform, "SELECT epoch, seq, msg_id FROM messages "
                                   f"WHERE room = '{room}' ORDER BY seq").splitlines():
        epoch, seq, mid = line.split("|")
        rows.append((epoch, int(seq), mid))
    return rows


def wait_archived(platform: DockerPlatform, room: str, n: int,
                  timeout_s: float = 30.0) -> list[tuple[str, int, str]]:
    """The archive of ``room`` once it holds at least ``n`` messages (or at the timeout)."""
    deadline = time.monotonic() + timeout_s
    rows = archived(platform, room)
    while len(rows) < n and time.monotonic() < deadline:
        time.sleep(0.2)
        rows = archived(platform, room)
    return rows


def room_name(prefix: str = "d") -> str:
    return prefix + secrets.token_hex(4)
