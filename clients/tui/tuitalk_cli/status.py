"""The connection indicator: what the status line says about the link, and when.

The client core reports every state change; the user should not see every one. Rules:

1. Before the first welcome: ``connecting…`` at once (nothing to hide yet); after
   :data:`ALARM_AFTER_S` of failures it turns into ``cannot reach server``.
2. A connection lost after a welcome shows nothing for :data:`GRACE_S`: a backend failover
   that heals in under a second is invisible. Past that, ``reconnecting… Ns``, in warning
   colours, red after :data:`ALARM_AFTER_S`.
3. After an outage the user saw (or one that ``StateChanged.since_s`` says was longer than
   the grace), ``catching up…`` stays until every room is re-joined and its gap filled;
   only then ``connected``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final, Literal, TypeAlias

from rich.text import Text
from textual.widgets import Static

from tuitalk.client.events import ConnState, StateChanged

__all__ = ["ConnIndicator", "ConnView", "Severity", "StatusBar"]

GRACE_S: Final = 1.0
ALARM_AFTER_S: Final = 10.0

Severity: TypeAlias = Literal["ok", "info", "warn", "error"]

_ICONS: Final[dict[str, tuple[str, str]]] = {
    "ok": ("●", "bold green"),
    "info": ("◌", "bold cyan"),
    "warn": ("▲", "bold yellow"),
    "error": ("✖", "bold red"),
}


@dataclass(frozen=True, slots=True)
class ConnView:
    label: str
    severity: Severity


class ConnIndicator:
    """Feed it :class:`StateChanged` events and the catch-up state; ask :meth:`view`."""

    def __init__(self) -> None:
        self.state: ConnState = "connecting"
        self.detail = ""
        self.ever_connected = False
        self.down_at: float | None = None  # when the link went down (None: up)
        self.first_try_at: float | None = None
        self.alarmed = False  # the user was shown an outage, not yet fully recovered
        self.catching_up = False

    def update(self, e: StateChanged, now: float) -> None:
        self.state = e.state
        self.detail = e.detail
        if e.state == "connected":
            if self.ever_connected and e.since_s >= GRACE_S:
                self.alarmed = True
            self.ever_connected = True
            self.down_at = None
        elif self.ever_connected:
            if self.down_at is None:
                self.down_at = now - e.since_s
        elif self.first_try_at is None:
            self.first_try_at = now
        self.tick(now)

    def set_catching_up(self, catching_up: bool, now: float) -> None:
        self.catching_up = catching_up
        if not catching_up and self.down_at is None:
            self.alarmed = False
        self.tick(now)

    def tick(self, now: float) -> None:
        """Advance time: an outage becomes an alarm once it outlasts the grace."""
        if self.down_at is not None and now - self.down_at >= GRACE_S:
            self.alarmed = True

    def view(self, now: float) -> ConnView:
        if not self.ever_connected:
            if self.first_try_at is not None and now - self.first_try_at >= ALARM_AFTER_S \
                    and self.state != "connecting":
                return ConnView("cannot reach server, retrying…", "error")
            return ConnView("connecting…", "info")
        if self.down_at is not None:
            down = now - self.down_at
            if down < GRACE_S:
                return ConnView("connected", "ok")
            sev: Severity = "warn" if down < ALARM_AFTER_S else "error"
            return ConnView(f"reconnecting… {int(down)}s", sev)
        if self.catching_up and self.alarmed:
            return ConnView("catching up…", "info")
        return ConnView("connected", "ok")


class StatusBar(Static):
    """One line: connection state, room, members, who you are."""

    DEFAULT_CSS = """
    StatusBar {
        height: 1;
        background: $panel;
        color: $text;
        padding: 0 1;
    }
    """

    _shown: Text | None = None

    def show(self, view: ConnView, *, room: str | None, members: int, me: str,
             me_suffix: str) -> None:
        icon, style = _ICONS[view.severity]
        t = Text.assemble((icon + " ", style), (view.label, style if view.severity != "ok"
                                                 else ""))
        if room is not None:
            t.append("  │  ")
            t.append("#" + room, style="bold")
            t.append(f"  {members} member{'s' if members != 1 else ''}", style="dim")
        if me:
            t.append("  │  you: ")
            t.append(me, style="bold")
            t.append(me_suffix, style="dim")
        if t != self._shown:
            self._shown = t
            self.update(t, layout=False)  # one fixed line: no layout pass needed
