"""The TuiTalk backend: WebSocket connections, room feeds, delivery and archiving.

I/O-free state machines (:mod:`.delivery`, :mod:`.feeds`, :mod:`.ringbuffer`,
:mod:`.ratelimit`) hold the delivery logic; :mod:`.connection`, :mod:`.hub` and
:mod:`.app` are the thin anyio/websockets/redis adapters that drive them.
"""
