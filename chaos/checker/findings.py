"""What a check reports: named counts with a few examples, and latency quantiles."""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, Final

__all__ = ["MAX_EXAMPLES", "Finding", "Findings", "quantiles"]

#: Examples kept per finding: enough to start debugging, few enough to read.
MAX_EXAMPLES: Final = 10


@dataclass
class Finding:
    """How often one anomaly occurred, with up to :data:`MAX_EXAMPLES` examples."""

    count: int = 0
    examples: list[dict[str, Any]] = field(default_factory=list)

    def add(self, example: dict[str, Any], n: int = 1) -> None:
        self.count += n
        if len(self.examples) < MAX_EXAMPLES:
            self.examples.append(example)

    def to_json(self) -> dict[str, Any]:
        return {"count": self.count, "examples": self.examples}


class Findings(dict[str, Finding]):
    """Findings by name; a name asked for is created empty (so every check is listed)."""

    def __missing__(self, key: str) -> Finding:
        f = self[key] = Finding()
        return f

    def to_json(self) -> dict[str, Any]:
        return {k: v.to_json() for k, v in sorted(self.items())}


def quantiles(values: Iterable[float], qs: tuple[float, ...] = (0.5, 0.95, 0.99, 1.0),
              ) -> dict[str, float | int | None]:
    """Nearest-rank quantiles, keyed ``p50``, ``p95``, ``p99``, ``max``; plus ``n``."""
    xs = sorted(values)
    out: dict[str, float | int | None] = {"n": len(xs)}
    for q in qs:
        key = "max" if q == 1.0 else f"p{q * 100:g}"
        if not xs:
            out[key] = None
        else:
            out[key] = round(xs[max(0, math.ceil(q * len(xs)) - 1)], 6)
    return out
