"""Bring back the nodes of a running local cluster that died (``tuitalk up``'s watch loop).

A node is *down* when its process has exited (killed, crashed); a frozen node (SIGSTOP) is
alive and left alone, as is anything while it is being restarted. Each down node is
restarted :data:`FIRST_DELAY_S` after it was seen down, so that what its death causes
(clients re-homing, a Redis replica taking over) happens first and can be watched; a node
that does not come back is tried again with a doubling delay, up to :data:`MAX_DELAY_S`.

Redis nodes run without persistence: :meth:`LocalCluster.start_node` waits for a dead
master's replica to take over before it starts the node again, so it rejoins as a replica
instead of coming back empty as master.

The loop is driven by :meth:`Supervisor.poll` from the launcher's main thread; a restart
blocks it for at most :data:`START_TIMEOUT_S`.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Final

from tuitalk.errors import LauncherError
from tuitalk.launcher.cluster import LocalCluster

__all__ = ["FIRST_DELAY_S", "MAX_DELAY_S", "START_TIMEOUT_S", "Supervisor"]

#: Long enough that a crash loop cannot spin, short enough that the cluster heals while
#: the user is still watching. (A dead Redis master waits longer: for its replica's
#: promotion, which takes about 2-2.7 s with node timeout 1 s, spikes §1.)
FIRST_DELAY_S: Final = 1.0
#: A node that keeps failing to start is retried at most this far apart.
MAX_DELAY_S: Final = 30.0
#: One start attempt may block the watch loop (and so Ctrl-C) this long.
START_TIMEOUT_S: Final = 20.0


@dataclass
class _Down:
    since: float
    delay_s: float
    pid: int | None


class Supervisor:
    """Restarts dead nodes of ``cluster``; ``say`` gets one line per event."""

    def __init__(self, cluster: LocalCluster, say: Callable[[str], None], *,
                 restart: bool = True, clock: Callable[[], float] = time.monotonic) -> None:
        self.cluster = cluster
        self.say = say
        self.restart = restart
        self.clock = clock
        self._down: dict[str, _Down] = {}
        #: Nodes brought back, by name (the watch loop's tests read it).
        self.restarts: dict[str, int] = {}

    def poll(self) -> None:
        """Look at every node once; restart those whose delay has passed."""
        now = self.clock()
        for name in self.cluster.node_names():
            proc = self.cluster.process(name)
            if proc.alive():
                self._down.pop(name, None)
                continue
            down = self._down.get(name)
            if down is None:
                self._down[name] = _Down(now, FIRST_DELAY_S, proc.pid)
                tail = ": restarting it" if self.restart else ""
                self.say(f"! {name} is down (pid {proc.pid}){tail}")
                continue
            if self.restart and now - down.since >= down.delay_s:
                self._start(name, down)

    def _start(self, name: str, down: _Down) -> None:
        t0 = self.clock()
        try:
            self.cluster.start_node(name, timeout_s=START_TIMEOUT_S)
        except LauncherError as exc:
            down.since = self.clock()
            down.delay_s = min(MAX_DELAY_S, down.delay_s * 2)
            first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            self.say(f"! {name} did not come back ({first}); next try in {down.delay_s:.0f}s")
            return
        del self._down[name]
        self.restarts[name] = self.restarts.get(name, 0) + 1
        pid = self.cluster.process(name).pid
        self.say(f"  {name} is back (pid {pid}), started in {self.clock() - t0:.1f}s")
