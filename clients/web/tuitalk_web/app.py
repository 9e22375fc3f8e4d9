"""The browser client: the core session, the WebSocket driver, the view and the keyboard.

``static/app.js`` boots Pyodide, installs the two wheels and then runs, for the page's
lifetime::

    from tuitalk_web.app import main
    await main("ws://<host>/ws")

so an exception that escapes here rejects that promise and the page shows it.
"""

from __future__ import annotations

import time
from typing import Any, Final

import js
from pyodide.ffi import create_proxy

from tuitalk import protocol as p
from tuitalk.client import commands as cmd
from tuitalk.client import events as ev
from tuitalk.client.session import ClientSession
from tuitalk.errors import ProtocolError
from tuitalk.sanitize import sanitize_line
from tuitalk_web.dom import by_id
from tuitalk_web.driver import BrowserDriver
from tuitalk_web.store import Store
from tuitalk_web.view import ChatView

__all__ = ["App", "main"]

DEFAULT_ROOM: Final = "lobby"
#: Messages per history page: a screenful or two; each scroll to the top loads one more.
HISTORY_PAGE: Final = 50
#: Keys, as /help lists them.
KEYS: Final[tuple[tuple[str, str], ...]] = (
    ("Enter", "send"), ("Shift+Enter", "new line"),
    ("Alt+Up / Alt+Down, Alt+1..9", "switch rooms"),
    ("PageUp / PageDown", "scroll; PageUp at the top loads older messages"),
    ("Escape", "back to the newest message"),
)

#: Lines the input remembers for Up/Down recall.
RECALL_LINES: Final = 50


def _room_from_hash() -> str | None:
    raw = str(js.location.hash or "").removeprefix("#").strip().lower()
    try:
        return p.validate_room(raw, remote=False) if raw else None
    except ProtocolError:
        return None


class App:
    def __init__(self, ws_url: str) -> None:
        self.store = Store()
        saved = self.store.load()
        self.session = ClientSession.restore(
            saved.get("session") or {}, history_limit=HISTORY_PAGE)
        self.view = ChatView(on_room=self.switch, on_older=self.load_older)
        self.driver = BrowserDriver(ws_url, self.session, on_events=self.on_events)
        self.input = by_id("input")
        self.form = by_id("composer")
        self.send_button = by_id("send")
        self.recall: list[str] = []
        self._recall_at: int | None = None
        self._welcomed = False
        self._proxies: list[Any] = []
        snap_user = (saved.get("session") or {}).get("user")
        self.view.user = snap_user if isinstance(snap_user, str) else ""
        self.view.name = self.session.name or ""
        self._restore_rooms(saved.get("ui"))

    # -- start-up ------------------------------------------------------------------------------

    def _restore_rooms(self, ui: Any) -> None:
        ui = ui if isinstance(ui, dict) else {}
        now = time.monotonic()
        rooms: list[str] = []
        for r in ui.get("rooms") or []:
            try:
                rooms.append(p.validate_room(r, remote=False))
            except ProtocolError:
                continue
        if "rooms" in ui:
            for r in list(self.session.rooms):
                if r not in rooms:  # being left when the page went away
                    self.session.leave(r, now)
        else:
            rooms = list(self.session.rooms)
        wanted = _room_from_hash()
        if wanted and wanted not in rooms:
            rooms.append(wanted)
        if not rooms:
            rooms = [DEFAULT_ROOM]
        for r in rooms:
            self.view.pane(r)
            if r not in self.session.rooms:
                self.session.join(r, now)
        for e in self.session.outbox.values():
            self.view.pane(e.room)
        self.view.apply([ev.Pending(e.id, e.room, e.text, e.kind)
                         for e in self.session.outbox.values()])
        active = ui.get("active")
        self.switch(wanted or (active if active in rooms else rooms[0]))

    def _listen(self, target: Any, event: str, handler: Any) -> None:
        proxy = create_proxy(handler)
        self._proxies.append(proxy)
        target.addEventListener(event, proxy)

    async def run(self) -> None:
        self._listen(self.form, "submit", self._on_submit)
        self._listen(self.input, "keydown", self._on_input_key)
        self._listen(js.document, "keydown", self._on_page_key)
        self._listen(js.window, "hashchange", self._on_hash)
        self._listen(js.window, "pagehide", lambda _e: self.save())
        self.input.disabled = False
        self.send_button.disabled = False
        self.input.placeholder = "Type a message, or /help"
        by_id("main").removeAttribute("aria-busy")
        by_id("boot").hidden = True
        js.performance.mark("tuitalk:started")
        self.input.focus()
        try:
            await self.driver.run()
        finally:
            for proxy in self._proxies:
                proxy.destroy()

    # -- session events ----------------------------------------------------------------------------

    def on_events(self, events: list[ev.Event]) -> None:
        self.view.apply(events)
        for e in events:
            if isinstance(e, ev.Welcomed) and not self._welcomed:
                self._welcomed = True
                js.performance.mark("tuitalk:ready")
                js.document.body.dataset.ready = "1"
        self.save()

    def save(self) -> None:
        self.store.save({"session": self.session.snapshot(),
                         "ui": {"rooms": self.view.order, "active": self.view.active}})

    # -- intents ----------------------------------------------------------------------------------

    def switch(self, room: str) -> None:
        self.view.activate(room)
        if str(js.location.hash) != f"#{room}":
            js.history.replaceState(None, "", f"#{room}")
        self.save()

    def load_older(self, room: str) -> None:
        v = self.session.rooms.get(room)
        pane = self.view.panes.get(room)
        if v is None or pane is None or room != self.view.active:
            return
        if self.driver.load_history(room):
            self.view.history_requested(room)
        elif not v.more_history:
            pane.set_more(False)

    def submit(self) -> None:
        line = str(self.input.value)
        try:
            done = self._run(cmd.parse(line))
        except ProtocolError as exc:
            self.view.note(exc.detail, "error")
            return
        if done:
            if line.strip() and (not self.recall or self.recall[-1] != line):
                self.recall = [*self.recall, line][-RECALL_LINES:]
            self._recall_at = None
            self.input.value = ""

    def _run(self, c: cmd.Command | None) -> bool:
        """Carry out a command; False keeps the line in the input (it needs fixing)."""
        room = self.view.active
        if c is None:
            return False
        if isinstance(c, cmd.Invalid):
            self.view.note(c.message, "error")
            return False
        if isinstance(c, cmd.Help):
            rows = cmd.help_lines(c.topic, KEYS)
            self.view.note("; ".join(f"{left}: {right}" for left, right in rows)
                           or f"no command or key matches {c.topic!r}")
            return True
        if isinstance(c, cmd.Quit):
            self.view.note("Close the tab to quit; your name, rooms and unsent messages are kept.")
            return True
        if isinstance(c, cmd.Nick):
            self.driver.nick(c.name)
            return True
        if isinstance(c, cmd.Join):
            p.validate_room(c.room, remote=False)
            self.view.pane(c.room).leaving = False
            self.driver.join(c.room)
            self.switch(c.room)
            return True
        if isinstance(c, cmd.Leave):
            target = c.room or room
            if target is None or target not in self.view.panes:
                self.view.note(f"not in #{target}" if target else "no room to leave", "error")
                return False
            self.driver.leave(target)
            self.view.mark_leaving(target)
            others = [r for r in self.view.order if r != target]
            if others and target == room:
                self.switch(others[0])
            self.save()
            return True
        if room is None:
            self.view.note("Join a room first: /join <room>", "error")
            return False
        if isinstance(c, cmd.Who):
            members = self.view.panes[room].members if room in self.view.panes else ()
            self.view.note(f"#{room}: " + ", ".join(
                f"{sanitize_line(m.name)}#{m.user[:4]}" for m in members))
            return True
        if isinstance(c, cmd.History):
            self.driver.load_history(room)
            return True
        if isinstance(c, cmd.Me):
            self.driver.say(room, c.text, "me")
        else:
            self.driver.say(room, c.text)
        return True

    # -- keyboard ----------------------------------------------------------------------------

    def _on_submit(self, evt: Any) -> None:
        evt.preventDefault()
        self.submit()

    def _on_input_key(self, evt: Any) -> None:
        key = str(evt.key)
        if key == "Enter" and not evt.shiftKey and not evt.isComposing:
            evt.preventDefault()
            self.submit()
        elif key in ("PageUp", "PageDown"):
            evt.preventDefault()
            self.view.scroll_page(-1 if key == "PageUp" else 1)
        elif key in ("ArrowUp", "ArrowDown") and not (evt.altKey or evt.shiftKey):
            self._recall_step(evt, -1 if key == "ArrowUp" else 1)

    def _recall_step(self, evt: Any, step: int) -> None:
        value = str(self.input.value)
        browsing = self._recall_at is not None
        if "\n" in value or (value and not browsing):
            return  # the arrows move the caret in a message being written
        if not self.recall:
            return
        at = len(self.recall) if self._recall_at is None else self._recall_at
        at = max(0, min(len(self.recall), at + step))
        evt.preventDefault()
        self._recall_at = None if at == len(self.recall) else at
        self.input.value = "" if self._recall_at is None else self.recall[at]

    def _on_page_key(self, evt: Any) -> None:
        key = str(evt.key)
        order = self.view.order
        if evt.altKey and not (evt.ctrlKey or evt.metaKey) and order:
            active = self.view.active
            i = order.index(active) if active in order else 0
            target: str | None = None
            if key == "ArrowUp":
                target = order[(i - 1) % len(order)]
            elif key == "ArrowDown":
                target = order[(i + 1) % len(order)]
            elif len(key) == 1 and key in "123456789":
                n = int(key) - 1
                target = order[n] if n < len(order) else None
            elif str(evt.code).startswith("Digit"):  # Alt+digit types a symbol on some layouts
                n = int(str(evt.code)[5:]) - 1
                target = order[n] if 0 <= n < len(order) else None
            if target is not None:
                evt.preventDefault()
                self.switch(target)
        elif key == "Escape":
            self.input.focus()

    def _on_hash(self, _evt: Any) -> None:
        room = _room_from_hash()
        if room is None or room == self.view.active:
            return
        if room not in self.view.panes:
            self.driver.join(room)
        self.switch(room)


async def main(ws_url: str) -> None:
    """Run the client until the page goes away."""
    await App(ws_url).run()
