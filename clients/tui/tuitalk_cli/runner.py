"""Carry out parsed commands: turn :mod:`tuitalk.client.commands` values into link calls
and local notices. Kept apart from the app so each stays small."""

from __future__ import annotations

from typing import TYPE_CHECKING

from rich.text import Text

from tuitalk.client import commands as cmd
from tuitalk.errors import ProtocolError
from tuitalk_cli import names
from tuitalk_cli.keys import KEYS
from tuitalk_cli.model import SYSTEM, RoomModel

if TYPE_CHECKING:
    from tuitalk_cli.app import TuiTalkApp

__all__ = ["CommandRunner"]


class CommandRunner:
    def __init__(self, app: TuiTalkApp) -> None:
        self.app = app
        self._reveal: set[str] = set()  # rooms where /history should show the new page

    def notice(self, text: str | Text, *, error: bool = False) -> None:
        self.app.show_changes(self.app.model.notice(text, error=error))

    def _room(self) -> RoomModel | None:
        room = self.app.model.view()
        if room.name == SYSTEM:
            self.notice("you are in no room: /join ROOM first", error=True)
            return None
        return room

    def run(self, command: cmd.Command) -> None:
        app = self.app
        match command:
            case cmd.Say(text) | cmd.Me(text):
                room = self._room()
                if room is None:
                    return
                kind = "me" if isinstance(command, cmd.Me) else "text"
                try:
                    app.link.say(room.name, text, kind)
                except ProtocolError as exc:
                    self.notice(f"not sent: {exc.detail}", error=True)
            case cmd.Join(room_name):
                if room_name in app.model.rooms:
                    app.switch_room(room_name)
                    return
                app.model.switch_to = room_name
                app.link.join(room_name)
                self.notice(f"joining #{room_name}…")
            case cmd.Leave(room_name):
                target = room_name or app.model.current
                if target is None or target not in app.model.rooms:
                    self.notice(f"you are not in #{target}" if target else "you are in no room",
                                error=True)
                    return
                app.link.leave(target)
                self.notice(f"leaving #{target}…")
            case cmd.Nick(name):
                app.link.nick(name)
                self.notice(f"asking to be called {names.clean_name(name)}…")
            case cmd.Who():
                self._who()
            case cmd.History(pages):
                self._history(pages)
            case cmd.Help(topic):
                self._help(topic)
            case cmd.Quit():
                app.save_state()
                app.link.stop()
                app.exit()
            case cmd.Invalid(message):
                self.notice(message, error=True)

    def _who(self) -> None:
        room = self._room()
        if room is None:
            return
        index = names.NameIndex(room.members)
        rows = sorted(((index.label(u, n, always_id=True), u) for u, n in room.members.items()),
                      key=lambda t: (t[0][0].casefold(), t[1]))
        self.notice(f"{len(rows)} member{'s' if len(rows) != 1 else ''} in #{room.name}:")
        for (name, suffix), user in rows:
            line = Text(name, style=f"bold {names.name_color(user)}")
            line.append(suffix, style="dim")
            if user == self.app.model.user:
                line.append(" (you)", style="dim")
            self.notice(line)

    def _history(self, pages: int) -> None:
        room = self._room()
        if room is None:
            return
        room.history_wanted = pages - 1
        if self.app.link.load_history(room.name):
            self._reveal.add(room.name)
            return
        room.history_wanted = 0
        view = self.app.session.rooms.get(room.name)
        if view is not None and view.history_pending:
            self.notice("older messages are already on their way")
        else:
            self.notice(f"no older messages in #{room.name}")

    def after_history(self, room: RoomModel, prepended: int) -> None:
        """A history page arrived for the room on screen: after /history, show it."""
        if room.name in self._reveal and room.history_wanted == 0:
            self._reveal.discard(room.name)
            self.app.timeline.reveal_above(prepended)

    def _help(self, topic: str) -> None:
        rows = cmd.help_lines(topic, KEYS)
        if not rows:
            self.notice(f"no command or key matches {topic!r}", error=True)
            return
        width = max(len(left) for left, _ in rows)
        self.notice("commands and keys" + (f" matching {topic!r}" if topic else "") + ":")
        for left, right in rows:
            self.notice(Text.assemble((left.ljust(width), "bold"), "  ", right))
