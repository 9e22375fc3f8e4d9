"""TuiTalk load test: ``locust -f loadtests`` (web UI) or headless::

    locust -f loadtests --headless -u 50 -r 10 -t 1m --host ws://127.0.0.1:8080/ws

Each Locust user is the chaos workload's synthetic user (the real client core on the
blocking driver, :mod:`chaos.workload.locust_user`): it joins 1-3 rooms of a fixed set
and sends at a steady Poisson rate. The stats table shows

* ``WS connect``: socket opened to ``welcome``;
* ``ACK send→ack``: from putting a message into the outbox to its acknowledgement
  (failures: sends the server refused for good);
* ``DLV send→deliver``: from the sender's send to each member's display (wall clocks of
  one machine), ``(recovery)`` for messages that came by replay after a reconnect.

Target: ``--host``, else ``TUITALK_URL``, else ``ws://127.0.0.1:8080/ws`` (``tuitalk up``).
Tuning by environment: ``CHAOS_RATE`` (messages/s per user, default 1), ``CHAOS_ROOMS``
(names or a count, default ``load-0..load-3``), ``CHAOS_CHURN`` (default 0),
``CHAOS_OUT`` (record histories there, for ``python -m chaos.checker``).
Backends rate-limit each connection (50 frames/s by default): keep per-user rates low and
scale with users.

Exit code: Locust's (1 if any request failed), or 1 when the ``send→ack`` p99 exceeds
``LOADTEST_MAX_P99_MS`` (if set).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any, ClassVar

# Locust imports this file by path; the repository root must be importable for ``chaos``.
_ROOT = str(Path(__file__).resolve().parents[1])
if _ROOT not in sys.path:
    sys.path.insert(0, _ROOT)

from locust import events  # noqa: E402
from locust.env import Environment  # noqa: E402

from chaos.workload.locust_user import ActorUser  # noqa: E402

__all__ = ["ChatLoadUser"]


class ChatLoadUser(ActorUser):
    """A steady chat user (no churn by default)."""

    defaults: ClassVar[dict[str, str]] = {
        "CHAOS_RATE": "1", "CHAOS_ROOMS": "load-0,load-1,load-2,load-3", "CHAOS_CHURN": "0",
        "CHAOS_DRAIN_S": "5", "CHAOS_BARRIER_S": "5", "CHAOS_CATCHUP_S": "5",
    }


@events.quitting.add_listener  # type: ignore[untyped-decorator]
def _on_quitting(environment: Environment, **_kw: Any) -> None:
    limit = os.environ.get("LOADTEST_MAX_P99_MS")
    if not limit:
        return
    ack = environment.stats.get("send→ack", "ACK")
    if ack.num_requests and ack.get_response_time_percentile(0.99) > float(limit):
        environment.process_exit_code = 1
