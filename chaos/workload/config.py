"""The workload's configuration: one typed object, built from ``CHAOS_*`` variables.

Locust runs the workload in its own process, so the runner (:mod:`chaos.workload.run`)
passes settings through the environment; :meth:`WorkloadConfig.from_env` is called from
Locust's ``init`` event, never at import time.

=====================  ===========================================  ==========================
variable               meaning                                      default
=====================  ===========================================  ==========================
``TUITALK_URL``        WebSocket URL (Locust ``--host`` wins)       ``ws://127.0.0.1:8080/ws``
``CHAOS_OUT``          run directory; histories go to               none: record nothing
                       ``<out>/histories/``
``CHAOS_ROOMS``        comma-separated room names, or a count N     ``4``
                       (rooms ``chaos-0`` .. ``chaos-N-1``)
``CHAOS_RATE``         messages per second per user (Poisson)       ``2``
``CHAOS_CHURN``        chance per step of a leave or a (re)join      ``0.02``
``CHAOS_SEED``         seed of every user's random choices          ``0``
``CHAOS_MAX_SENDS``    sends per user at most                       ``10000``
``CHAOS_MAX_OUTBOX``   unacked sends per user before it skips one   ``200``
``CHAOS_DRAIN_S``      end: wait this long for the outbox to empty  ``10``
``CHAOS_BARRIER_S``    end: wait this long for the other users      ``10``
``CHAOS_CATCHUP_S``    end: wait this long to reach the room heads  ``10``
=====================  ===========================================  ==========================
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from tuitalk import protocol as p
from tuitalk.errors import ProtocolError

__all__ = ["DEFAULT_URL", "WorkloadConfig"]

DEFAULT_URL: Final = "ws://127.0.0.1:8080/ws"


@dataclass(frozen=True)
class WorkloadConfig:
    url: str = DEFAULT_URL
    out: Path | None = None
    rooms: tuple[str, ...] = ("chaos-0", "chaos-1", "chaos-2", "chaos-3")
    rate_per_s: float = 2.0
    churn: float = 0.02
    seed: int = 0
    max_sends: int = 10_000
    max_outbox: int = 200
    drain_s: float = 10.0
    barrier_s: float = 10.0
    catchup_s: float = 10.0

    def __post_init__(self) -> None:
        if not self.rooms:
            raise ValueError("the workload needs at least one room")
        for room in self.rooms:
            try:
                p.validate_room(room, remote=False)
            except ProtocolError as exc:
                raise ValueError(f"bad room name {room!r}: {exc}") from exc
        if self.rate_per_s <= 0:
            raise ValueError("CHAOS_RATE must be positive")
        if not 0 <= self.churn <= 1:
            raise ValueError("CHAOS_CHURN is a probability")

    @property
    def end_budget_s(self) -> float:
        """Longest a user's end-of-run protocol can take (for Locust's ``--stop-timeout``)."""
        return self.drain_s + self.barrier_s + self.catchup_s + 5.0

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None, *,
                 host: str | None = None) -> WorkloadConfig:
        """Build from ``env`` (default ``os.environ``). Raises ValueError on a bad value
        (a malformed number, a rate of 0, a room name the protocol refuses)."""
        env = os.environ if env is None else env
        d = cls()
        out = env.get("CHAOS_OUT")
        return cls(
            url=host or env.get("TUITALK_URL") or d.url,
            out=Path(out) if out else None,
            rooms=parse_rooms(env.get("CHAOS_ROOMS", "")) or d.rooms,
            rate_per_s=float(env.get("CHAOS_RATE", d.rate_per_s)),
            churn=float(env.get("CHAOS_CHURN", d.churn)),
            seed=int(env.get("CHAOS_SEED", d.seed)),
            max_sends=int(env.get("CHAOS_MAX_SENDS", d.max_sends)),
            max_outbox=int(env.get("CHAOS_MAX_OUTBOX", d.max_outbox)),
            drain_s=float(env.get("CHAOS_DRAIN_S", d.drain_s)),
            barrier_s=float(env.get("CHAOS_BARRIER_S", d.barrier_s)),
            catchup_s=float(env.get("CHAOS_CATCHUP_S", d.catchup_s)),
        )

    def to_env(self) -> dict[str, str]:
        """The inverse of :meth:`from_env` (what the runner passes to Locust)."""
        env = {
            "TUITALK_URL": self.url,
            "CHAOS_ROOMS": ",".join(self.rooms),
            "CHAOS_RATE": repr(self.rate_per_s),
            "CHAOS_CHURN": repr(self.churn),
            "CHAOS_SEED": str(self.seed),
            "CHAOS_MAX_SENDS": str(self.max_sends),
            "CHAOS_MAX_OUTBOX": str(self.max_outbox),
            "CHAOS_DRAIN_S": repr(self.drain_s),
            "CHAOS_BARRIER_S": repr(self.barrier_s),
            "CHAOS_CATCHUP_S": repr(self.catchup_s),
        }
        if self.out is not None:
            env["CHAOS_OUT"] = str(self.out)
        return env


def parse_rooms(spec: str) -> tuple[str, ...]:
    """``"a,b"`` -> ``("a", "b")``; ``"3"`` -> ``("chaos-0", "chaos-1", "chaos-2")``."""
    spec = spec.strip()
    if not spec:
        return ()
    if spec.isdigit():
        return tuple(f"chaos-{i}" for i in range(int(spec)))
    return tuple(r.strip() for r in spec.split(",") if r.strip())
