"""``tuitalk-cli``: the Textual app. Wires the client core, the model and the widgets.

Data flows one way: the link (a worker) posts :class:`SessionEvents`; the app folds them
into the :class:`ChatModel` and hands the widgets what changed (attributes down). User
intents (commands, keys) go to the link, which queues them in the client core, so that a
message typed while offline waits in the outbox, shown as pending, and is sent on reconnect.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import replace
from typing import Any, ClassVar

from textual import on
from textual.app import App, ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal
from textual.widgets import Footer, Input

from tuitalk.client import commands as cmd
from tuitalk.client import events as ev
from tuitalk.client.session import ClientSession
from tuitalk_cli import names
from tuitalk_cli.config import CliConfig, parse_args
from tuitalk_cli.link import Link, LinkFactory, SessionEvents, websocket_link
from tuitalk_cli.model import Changes, ChatModel, RoomModel
from tuitalk_cli.prompt import Candidates, ChatInput
from tuitalk_cli.runner import CommandRunner
from tuitalk_cli.sidebar import MemberList, RoomEntry, RoomList
from tuitalk_cli.state import StateStore
from tuitalk_cli.status import StatusBar
from tuitalk_cli.switcher import RoomSwitcher
from tuitalk_cli.timeline import Timeline, TimelinePane

__all__ = ["TuiTalkApp", "main"]

#: Terminal width from which the member list is shown by default.
MEMBERS_MIN_WIDTH = 100


class TuiTalkApp(App[None]):
    CSS_PATH = "tuitalk.tcss"
    TITLE = "TuiTalk"
    AUTO_FOCUS = "#input"  # the timeline must never take the keys (reference §0.6)
    ENABLE_COMMAND_PALETTE = False
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("ctrl+k", "switcher", "Rooms", priority=True),
        Binding("alt+a", "next_unread", "Next unread"),
        Binding("alt+n", "next_mention", "Mention"),
        Binding("alt+u", "first_unread", "Read marker", show=False),
        Binding("f8", "toggle_members", "Members"),
        Binding("f1", "help", "Help"),
        Binding("ctrl+q", "quit", "Quit", priority=True),
        Binding("ctrl+n", "next_room(1)", "Next room", show=False),
        Binding("ctrl+p", "next_room(-1)", "Previous room", show=False),
        Binding("pageup", "page(-1)", "Page up", show=False),
        Binding("pagedown", "page(1)", "Page down", show=False),
        Binding("escape", "jump_live", "Newest", show=False),
        *[Binding(f"alt+{i}", f"goto({i})", f"Room {i}", show=False) for i in range(1, 10)],
    ]

    def __init__(self, config: CliConfig, *, link_factory: LinkFactory | None = None,
                 clock: Callable[[], float] = time.monotonic,
                 session_options: dict[str, Any] | None = None) -> None:
        super().__init__()
        self.config = config
        self.clock = clock
        self.store = StateStore(config.state_dir) if config.save_state else None
        saved = self.store.load(config.url) if self.store is not None else None
        opts = {"history_limit": config.history_page, **(session_options or {})}
        if saved and isinstance(saved.get("session"), dict):
            self.session = ClientSession.restore(saved["session"], **opts)
        else:
            self.session = ClientSession(**opts)
        if config.name is not None:
            self.session.name = config.name
        self.model = ChatModel(tz=config.tz, max_items=config.max_items)
        self.model.name = self.session.name or ""
        for room in self.session.rooms:
            self.model.rooms[room] = RoomModel(room, config.max_items)
        ui_room = ((saved or {}).get("ui") or {}).get("room")
        self.model.current = ui_room if ui_room in self.model.rooms else (
            next(iter(self.model.rooms), None))
        if not self.session.rooms:
            self.session.join(config.room, clock())
            self.model.switch_to = config.room
        self.link: Link = (link_factory or websocket_link(config.url))(self.session, self._sink)
        self.runner = CommandRunner(self)
        self._dirty = False
        self._mounted = False
        self._members_shown: bool | None = None  # None: by terminal width
        #: (monotonic time, label) each time the status line's connection label changed.
        self.status_log: list[tuple[float, str]] = []
        #: (monotonic time, ok) each time "connected with every room caught up" changed.
        self.recovery_log: list[tuple[float, bool]] = []

    # -- wiring -------------------------------------------------------------------------------

    def _sink(self, events: list[ev.Event]) -> None:
        self.post_message(SessionEvents(events))

    def compose(self) -> ComposeResult:
        with Horizontal(id="body"):
            yield RoomList(id="rooms")
            yield TimelinePane(id="main")
            yield MemberList(id="members")
        yield StatusBar(id="status")
        yield ChatInput(self._candidates, id="input")
        yield Footer()

    def on_mount(self) -> None:
        # Kept, not queried: a modal screen on top would hide them from app.query_one.
        self.timeline = self.query_one(Timeline)
        self.room_list = self.query_one(RoomList)
        self.member_list = self.query_one(MemberList)
        self.status_bar = self.query_one(StatusBar)
        self.prompt = self.query_one(ChatInput)
        self._mounted = True
        startup = [ev.Pending(e.id, e.room, e.text, e.kind)
                   for e in self.session.outbox.values()]
        self.model.notice(f"connecting to {self.config.url}")
        self._apply(self.model.apply(startup, self.clock()))
        self._show_current()
        self.run_worker(self.link.run(), name="link", group="link", exit_on_error=True)
        self.set_interval(0.25, self._refresh_status)
        self.set_interval(1.0, self._save_if_dirty)

    def on_resize(self) -> None:
        if self._mounted:
            self._update_members_visibility()

    def on_session_events(self, message: SessionEvents) -> None:
        want = self.config.name
        for e in message.events:
            # A known token keeps its server-side name; --name then asks for a change.
            if isinstance(e, ev.Welcomed) and want is not None and e.name != want:
                self.link.nick(want)
            if isinstance(e, ev.Welcomed):
                want = None
        if want is None and self.config.name is not None:
            self.config = replace(self.config, name=None)
        self._apply(self.model.apply(message.events, self.clock()))

    def _apply(self, ch: Changes) -> None:
        for room in ch.want_history:
            self.link.load_history(room)
        for room, first in ch.trimmed.items():
            view = self.session.rooms.get(room)
            if view is not None:
                view.oldest, view.more_history = first, True
        catching_up = self.catching_up()
        self.model.conn.set_catching_up(catching_up, self.clock())
        if not self.recovery_log or self.recovery_log[-1][1] == catching_up:
            self.recovery_log.append((self.clock(), not catching_up))
        shown = self.model.view()
        if ch.switched:
            self._show_current()
        else:
            if shown.name in ch.timelines:
                self.timeline.refresh_room(ch.new_messages.get(shown.name, 0))
            if shown.name in ch.prepended:
                self.runner.after_history(shown, ch.prepended[shown.name])
            if ch.rooms:
                self._refresh_rooms()
            if shown.name in ch.members:
                self._refresh_members()
        for text in ch.notify:
            self.notify(text, title="mention", markup=False)
        self._dirty |= ch.dirty
        self._refresh_status()

    def catching_up(self) -> bool:
        """True until connected with every room joined and its gaps filled."""
        s = self.session
        if not s.connected:
            return True
        return any(not v.joined or v.held or v.resync_pending
                   for v in s.rooms.values() if not v.leaving)

    # -- widgets down --------------------------------------------------------------------------

    def _show_current(self) -> None:
        self.timeline.show(self.model.view())
        self._refresh_rooms()
        self._refresh_members()
        self._refresh_status()
        room = self.model.current
        self.prompt.placeholder = (
            f"message #{room}  (/help: commands, Tab: complete names)" if room
            else "/join ROOM to start chatting")
        self._dirty = True

    def _refresh_rooms(self) -> None:
        self.room_list.set_rooms(self.room_entries())

    def room_entries(self) -> list[RoomEntry]:
        m = self.model
        return [RoomEntry(n, r.unread, r.mentions, n == m.current) for n, r in m.rooms.items()]

    def _refresh_members(self) -> None:
        self.member_list.set_members(self.model.view().members, self.model.user)
        self._update_members_visibility()

    def _update_members_visibility(self) -> None:
        shown = self._members_shown
        if shown is None:
            shown = self.size.width >= MEMBERS_MIN_WIDTH
        self.member_list.set_class(not shown, "-hidden")

    def _refresh_status(self) -> None:
        m = self.model
        now = self.clock()
        m.conn.tick(now)
        view = m.conn.view(now)
        if not self.status_log or self.status_log[-1][1] != view.label:
            self.status_log.append((now, view.label))
        me = names.clean_name(m.name) if m.name else ""
        self.status_bar.show(
            view, room=m.current, members=len(m.view().members), me=me,
            me_suffix=f"#{names.short_id(m.user)}" if m.user else "")

    def _candidates(self) -> Candidates:
        room = self.model.view()
        return Candidates(names.ordered_candidates(room.members, room.recent, self.model.user),
                          self.model.order())

    # -- persistence ------------------------------------------------------------------------------

    def save_state(self) -> None:
        if self.store is None:
            return
        self._dirty = False
        try:
            self.store.save(self.config.url, {"session": self.session.snapshot(),
                                              "ui": {"room": self.model.current}})
        except OSError as exc:
            self.notify(f"could not save state: {exc}", severity="error", markup=False)

    def _save_if_dirty(self) -> None:
        if self._dirty:
            self.save_state()

    # -- input -----------------------------------------------------------------------------------

    @on(Input.Submitted, "#input")
    def _submitted(self, event: Input.Submitted) -> None:
        line = event.value
        self.prompt.value = ""
        self.prompt.remember(line)
        command = cmd.parse(line)
        if command is not None:
            self.runner.run(command)

    @on(RoomList.Selected)
    def _room_clicked(self, event: RoomList.Selected) -> None:
        self.switch_room(event.room)

    @on(Timeline.NeedOlder)
    def _need_older(self, event: Timeline.NeedOlder) -> None:
        self.link.load_history(event.room)

    def switch_room(self, room: str | None) -> None:
        if self.model.switch(room):
            self._show_current()

    def show_changes(self, ch: Changes) -> None:
        """Apply a local change (a notice, a command's effect) like an event batch."""
        self._apply(ch)

    # -- key actions -----------------------------------------------------------------------------

    def action_switcher(self) -> None:
        if isinstance(self.screen, RoomSwitcher):
            return
        self.push_screen(RoomSwitcher(self.room_entries()), callback=self._switcher_done)

    def _switcher_done(self, room: str | None) -> None:
        if room is None:
            return
        if room in self.model.rooms:
            self.switch_room(room)
        else:
            self.runner.run(cmd.Join(room))

    def action_goto(self, n: int) -> None:
        order = self.model.order()
        if 1 <= n <= len(order):
            self.switch_room(order[n - 1])

    def action_next_room(self, step: int) -> None:
        self.switch_room(self.model.next_room(step=step))

    def action_next_unread(self) -> None:
        room = self.model.next_room(unread=True)
        if room is None:
            self.notify("no unread messages", timeout=2)
            return
        self.switch_room(room)
        self.action_first_unread()

    def action_next_mention(self) -> None:
        room = self.model.next_room(mention=True)
        if room is None:
            self.notify("no unread mentions", timeout=2)
            return
        target = self.model.rooms[room]
        self.switch_room(room)
        index = target.first_mention()
        if index is not None:
            self.timeline.scroll_to_item(index)

    def action_first_unread(self) -> None:
        r = self.model.view()
        if r.marker is not None:
            self.timeline.scroll_to_item(r.marker)

    def action_toggle_members(self) -> None:
        visible = not self.member_list.has_class("-hidden")
        self._members_shown = not visible
        self._update_members_visibility()

    def action_help(self) -> None:
        self.runner.run(cmd.Help())

    def action_page(self, direction: int) -> None:
        t = self.timeline
        if direction < 0:
            t.scroll_page_up(animate=False)
        else:
            t.scroll_page_down(animate=False)

    def action_jump_live(self) -> None:
        self.timeline.jump_to_end()

    async def action_quit(self) -> None:
        self.save_state()
        self.link.stop()
        self.exit()

    def on_unmount(self) -> None:
        self.link.stop()
        self.save_state()


def main(argv: list[str] | None = None) -> None:
    """Entry point of ``tuitalk-cli``."""
    TuiTalkApp(parse_args(argv)).run()
