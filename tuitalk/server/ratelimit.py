"""Per-connection token bucket and abuse meter (I/O-free; time is passed in)."""

from __future__ import annotations

from collections import deque

__all__ = ["AbuseMeter", "TokenBucket"]


class TokenBucket:
    """Allows ``rate_per_s`` on average with bursts up to ``burst``."""

    def __init__(self, rate_per_s: float, burst: float, now: float) -> None:
        self.rate = rate_per_s
        self.burst = burst
        self.tokens = burst
        self.stamp = now

    def take(self, now: float, cost: float = 1.0) -> bool:
        """Spend ``cost`` tokens if available; return whether the action is allowed."""
        self.tokens = min(self.burst, self.tokens + (now - self.stamp) * self.rate)
        self.stamp = now
        if self.tokens >= cost:
            self.tokens -= cost
            return True
        return False


class AbuseMeter:
    """Counts protocol errors in a sliding window; ``exceeded`` means close with 1008."""

    def __init__(self, max_errors: int, window_s: float) -> None:
        self.max_errors = max_errors
        self.window_s = window_s
        self._times: deque[float] = deque()

    def record(self, now: float) -> bool:
        """Record one error at ``now``; return True when the limit is exceeded."""
        self._times.append(now)
        while self._times and now - self._times[0] > self.window_s:
            self._times.popleft()
        return len(self._times) > self.max_errors
