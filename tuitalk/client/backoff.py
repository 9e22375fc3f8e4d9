"""Reconnect delays: first retry immediate, then exponential backoff with full jitter."""

from __future__ import annotations

import random
from dataclasses import dataclass, field

__all__ = ["Backoff"]


@dataclass
class Backoff:
    """``delay()`` for attempt 0 is 0 (a backend kill should feel like a blink); after that
    ``uniform(0, min(cap_s, base_s * 2**(attempt-1)))`` ("full jitter", which spreads a
    reconnect storm after a backend dies over the whole window)."""

    base_s: float = 0.25
    cap_s: float = 10.0
    rng: random.Random = field(default_factory=random.Random)
    attempt: int = 0

    def delay(self) -> float:
        n = self.attempt
        self.attempt += 1
        if n == 0:
            return 0.0
        return self.rng.uniform(0.0, min(self.cap_s, self.base_s * 2 ** (n - 1)))

    def reset(self) -> None:
        self.attempt = 0
