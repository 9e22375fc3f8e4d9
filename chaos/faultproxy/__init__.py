"""A Toxiproxy-compatible TCP fault proxy, written in Python on anyio.

It serves the HTTP API of Toxiproxy 2.x (v2.12: same routes, status codes and JSON)
so that ``toxiproxy-python`` and plain HTTP clients work unchanged, and applies
the same toxics (latency, bandwidth, slow_close, timeout, reset_peer, slicer,
limit_data, noop) to live TCP connections.

Entry points:

- ``python -m chaos.faultproxy --host 127.0.0.1 --port 8474 [--config f.json]``;
- ``async with FaultProxyServer(host, port=0) as server`` inside an event loop;
- ``FaultProxyProcess`` (subprocess) and ``run_in_thread`` for synchronous callers.

Module map (mirrors Toxiproxy's Go files): ``api`` (routes) on ``httpwire``
(HTTP/1.1) and ``jsonbody`` (Go-like JSON decoding); ``proxy_collection`` ->
``proxy`` (listener, connections) -> ``link`` (one direction) -> ``stub`` (one
stage) running ``toxics``; ``toxic_collection`` applies toxic changes to live
links; ``sockets`` and ``chunks`` are the plumbing.

Deviations from Toxiproxy 2.12 (details where they live):

- toxics (``toxics``): negative attributes and ``slicer`` ``average_size`` 0 are
  rejected with 400; ``bandwidth`` rate 0 means unthrottled; ``reset_peer``
  always ends in an RST, also when added to an open connection; an interrupted
  ``slow_close`` passes the end of stream on instead of swallowing it;
- toxic ``stream`` is matched case-insensitively and reported in lower case;
- ``/metrics``, Go's 25 s API handler timeout and the ``-runtime-metrics`` /
  ``-proxy-metrics`` flags are not implemented (``api``);
- upstream dials run per connection with a 10 s timeout instead of blocking the
  accept loop, and a proxy serves at most 4096 connections at once (``proxy``);
- an unreadable or invalid ``--config`` file is a startup error, not a log line
  (``server``); populate's address validation text is ours (``proxy_collection``).
"""

from chaos.faultproxy.api import TOXIPROXY_VERSION
from chaos.faultproxy.errors import (
    ApiError,
    BadRequest,
    Conflict,
    FaultProxyError,
    NotFound,
    ProcessStartError,
    ServerError,
)
from chaos.faultproxy.process import FaultProxyProcess, run_in_thread
from chaos.faultproxy.proxy import ProxyOptions
from chaos.faultproxy.server import FaultProxyServer

__all__ = [
    "TOXIPROXY_VERSION",
    "ApiError",
    "BadRequest",
    "Conflict",
    "FaultProxyError",
    "FaultProxyProcess",
    "FaultProxyServer",
    "NotFound",
    "ProcessStartError",
    "ProxyOptions",
    "ServerError",
    "run_in_thread",
]
