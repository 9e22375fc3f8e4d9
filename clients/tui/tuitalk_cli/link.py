"""The app's view of the connection: a :class:`Link` drives a ClientSession somewhere.

In production it is :class:`tuitalk.client.aio.AsyncDriver` over WebSockets; tests plug in
an in-memory server. The link runs in a Textual worker and hands the core's events to a
callback that only posts :class:`SessionEvents` to the app (messages up).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

from textual.message import Message

from tuitalk.client import events as ev
from tuitalk.client.aio import AsyncDriver
from tuitalk.client.session import ClientSession

__all__ = ["EventSink", "Link", "LinkFactory", "SessionEvents", "websocket_link"]

EventSink = Callable[[list[ev.Event]], None]


class Link(Protocol):
    """What the app needs from a driver (AsyncDriver has exactly these)."""

    async def run(self) -> None: ...
    def say(self, room: str, text: str, kind: str = "text") -> str: ...
    def join(self, room: str) -> None: ...
    def leave(self, room: str) -> None: ...
    def nick(self, name: str) -> None: ...
    def load_history(self, room: str) -> bool: ...
    def stop(self) -> None: ...
    async def abort(self) -> None: ...


LinkFactory = Callable[[ClientSession, EventSink], Link]


class SessionEvents(Message):
    """A batch of client-core events, in order."""

    def __init__(self, events: list[ev.Event]) -> None:
        super().__init__()
        self.events = events


def websocket_link(url: str) -> LinkFactory:
    def make(session: ClientSession, sink: EventSink) -> Link:
        return AsyncDriver(url, session, on_events=sink)

    return make
