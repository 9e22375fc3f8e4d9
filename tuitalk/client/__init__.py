"""The client core (sans-I/O, stdlib only) and its drivers.

:mod:`tuitalk.client.session` and what it imports run unchanged in Pyodide; the drivers
(:mod:`tuitalk.client.aio` for asyncio + websockets) are separate modules that a core
import never pulls in.
"""
