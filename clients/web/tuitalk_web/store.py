"""Identity and rooms kept in ``localStorage`` across reloads.

One key, :data:`KEY`, holds ``{"session": ClientSession.snapshot(), "ui": {...}}``: the token
(so the server gives back the same user id and name), each room's cursor (so a reload
resumes exactly where the page was), the outbox (so a message typed just before a reload is
still sent, once) and which rooms are open in which order.

``localStorage`` can be missing or refuse writes (storage disabled, quota): the chat then
works for this page's lifetime only, and :attr:`Store.broken` says so.
"""

from __future__ import annotations

import json
from typing import Any, Final

import js
from pyodide.ffi import JsException

__all__ = ["KEY", "Store"]

KEY: Final = "tuitalk.v1"


class Store:
    def __init__(self, key: str = KEY) -> None:
        self.key = key
        self.broken = False
        self._last = ""

    def load(self) -> dict[str, Any]:
        try:
            raw = js.localStorage.getItem(self.key)
        except JsException:
            self.broken = True
            return {}
        if not raw:
            return {}
        try:
            data = json.loads(str(raw))
        except ValueError:
            return {}
        return data if isinstance(data, dict) else {}

    def save(self, data: dict[str, Any]) -> None:
        raw = json.dumps(data, separators=(",", ":"))
        if raw == self._last:
            return
        try:
            js.localStorage.setItem(self.key, raw)
        except JsException:
            self.broken = True
            return
        self._last = raw
