"""Locust users of the chaos workload: each one a :class:`~chaos.workload.actor.ChatActor`.

Run it headless (the runner :mod:`chaos.workload.run` does exactly this)::

    CHAOS_OUT=out TUITALK_URL=ws://127.0.0.1:8080/ws CHAOS_ROOMS=r0,r1,r2 \\
    locust -f chaos/workload/locustfile.py --headless -u 10 -r 10 -t 15s \\
        --stop-timeout 35 --csv out/locust --html out/locust.html --only-summary

Settings come from ``CHAOS_*`` variables (:mod:`chaos.workload.config`); ``--host``
overrides ``TUITALK_URL``. Pass ``--stop-timeout`` of at least the config's
``end_budget_s`` so that every user finishes its end-of-run protocol (drain, ``info`` for
unacked sends, ``end`` records) before Locust exits.

Locust stats rows: ``WS connect`` (socket open to welcome), ``ACK send→ack`` (failures:
refused sends), ``DLV send→deliver`` and ``DLV send→deliver (recovery)``.

The exit code is 0 unless a user crashed (3): refused sends are the checker's business.
Run a single Locust process (no ``--processes``): the end barrier is per process.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

# Locust imports this file by path; the repository root must be importable for ``chaos``.
_ROOT = str(Path(__file__).resolve().parents[2])
if _ROOT not in sys.path:
    sys.path.insert(0, _ROOT)

from locust import events  # noqa: E402
from locust.env import Environment  # noqa: E402

from chaos.workload.locust_user import ActorUser  # noqa: E402

__all__ = ["ChaosChatUser"]


class ChaosChatUser(ActorUser):
    """One synthetic chat user per Locust user (see :mod:`chaos.workload.actor`)."""


@events.quitting.add_listener  # type: ignore[untyped-decorator]
def _on_quitting(environment: Environment, **_kw: Any) -> None:
    environment.process_exit_code = 3 if ChaosChatUser.crashed else 0
