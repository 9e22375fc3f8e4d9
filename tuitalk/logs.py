"""One structured log line per notable event."""

from __future__ import annotations

import json
import logging
import time
from typing import Any

__all__ = ["log_event", "setup_logging"]

log = logging.getLogger("tuitalk.events")


def log_event(event: str, **fields: Any) -> None:
    """Log ``event`` as one JSON line. Never pass tokens or message text here."""
    record = {"ts": round(time.time(), 3), "event": event, **fields}
    log.info(json.dumps(record, separators=(",", ":"), default=str))


def setup_logging(level: str = "INFO") -> None:
    logging.basicConfig(level=level, format="%(message)s")
    # Library chatter would drown the event lines.
    for noisy in ("websockets", "asyncio", "redis"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
