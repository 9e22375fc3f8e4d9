"""What a user can ask of a driver, once for every driver of the client core.

A driver (asyncio, browser, test fakes) inherits these methods and provides ``session``,
``clock`` and :meth:`SessionIntents.poke`, which must make the driver flush the frames the
session produced and re-arm its timer.
"""

from __future__ import annotations

from collections.abc import Callable

from tuitalk.client.session import ClientSession

__all__ = ["SessionIntents"]


class SessionIntents:
    session: ClientSession
    clock: Callable[[], float]

    def poke(self) -> None:
        """Flush and wake the driver after a session call (each driver implements it)."""
        raise NotImplementedError

    def say(self, room: str, text: str, kind: str = "text") -> str:
        """Queue a message (``kind`` "text" or "me"); returns its client id."""
        msg_id = self.session.say(room, text, self.clock(), kind)
        self.poke()
        return msg_id

    def join(self, room: str) -> None:
        self.session.join(room, self.clock())
        self.poke()

    def leave(self, room: str) -> None:
        self.session.leave(room, self.clock())
        self.poke()

    def nick(self, name: str) -> None:
        self.session.nick(name, self.clock())
        self.poke()

    def load_history(self, room: str) -> bool:
        """Ask for an older page; False when none is needed or one is on its way."""
        sent = self.session.load_history(room, self.clock())
        self.poke()
        return sent
