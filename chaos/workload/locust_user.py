"""The Locust side of a synthetic user, shared by the chaos workload and ``loadtests``.

Imports Locust (which monkey-patches the process with gevent): import this module only
from a locustfile, which Locust loads in its own process.

:class:`ActorUser` is an abstract Locust user around a
:class:`~chaos.workload.actor.ChatActor`: ``on_start`` builds and starts the actor, every
task is one :meth:`~chaos.workload.actor.ChatActor.step`, ``wait_time`` is the actor's
exponential pacing, and ``on_stop`` runs the actor's bounded end-of-run protocol. A
locustfile subclasses it (``abstract = False`` is implied) and may set :attr:`defaults`,
``CHAOS_*`` values used when the environment does not set them.
"""

from __future__ import annotations

import os
from typing import Any, ClassVar

from locust import User, task
from locust.env import Environment

from chaos.workload.actor import ChatActor, EndBarrier
from chaos.workload.config import WorkloadConfig

__all__ = ["ActorUser", "LocustMetrics"]


class LocustMetrics:
    """A :class:`~chaos.workload.recorder.MetricsSink` that fires Locust request events."""

    def __init__(self, environment: Environment) -> None:
        self.environment = environment

    def request(self, kind: str, name: str, ms: float, error: str | None = None) -> None:
        self.environment.events.request.fire(  # type: ignore[no-untyped-call]
            request_type=kind, name=name, response_time=ms, response_length=0,
            exception=RuntimeError(error) if error else None, context={},
        )


class ActorUser(User):
    """See the module docstring."""

    abstract = True
    #: ``CHAOS_*`` defaults of this kind of user (the environment wins).
    defaults: ClassVar[dict[str, str]] = {}
    #: Per process, shared by all users of the class (set on first use).
    _cfg: ClassVar[WorkloadConfig | None] = None
    _barrier: ClassVar[EndBarrier | None] = None
    started: ClassVar[int] = 0
    crashed: ClassVar[int] = 0

    actor: ChatActor | None = None

    def __init__(self, environment: Environment, *args: Any, **kwargs: Any) -> None:
        super().__init__(environment, *args, **kwargs)
        self.actor = None

    @classmethod
    def config(cls, environment: Environment) -> WorkloadConfig:
        if cls._cfg is None:
            cls._cfg = WorkloadConfig.from_env({**cls.defaults, **os.environ},
                                               host=environment.host)
            cls._barrier = EndBarrier()
        return cls._cfg

    def wait_time(self) -> float:
        return self.actor.next_wait_s() if self.actor is not None else 1.0

    def on_start(self) -> None:
        cls = type(self)
        cfg = cls.config(self.environment)
        cls.started += 1
        n = cls.started
        barrier = cls._barrier
        assert barrier is not None
        barrier.register()
        try:
            self.actor = ChatActor(f"u{n:03d}", cfg, seed=cfg.seed * 1_000_003 + n,
                                   metrics=LocustMetrics(self.environment), barrier=barrier)
            self.actor.start()
        except Exception:
            cls.crashed += 1
            barrier.withdraw()
            raise

    @task
    def step(self) -> None:
        if self.actor is not None:
            self.actor.step()

    def on_stop(self) -> None:
        if self.actor is None:
            return
        try:
            self.actor.finish()
        except Exception:
            type(self).crashed += 1
            raise
