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
        self._times: deque[tuple[float, float]] = deque()
        self._total = 0.0

    def record(self, now: float, weight: float = 1.0) -> bool:
        """Record an error of ``weight`` at ``now``; return True when the limit is exceeded.

        Malformed frames weigh 1; frames refused for going too fast weigh less, because a
        well-meaning client can overshoot a rate limit but never needs to send garbage.
        """
        self._times.append((now, weight))
        self._total += weight
        while self._times and now - self._times[0][0] > self.window_s:
            self._total -= self._times.popleft()[1]
        return self._total > self.max_errors
