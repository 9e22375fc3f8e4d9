"""Test harness for the fault proxy suite: threaded TCP servers and a raw API client.

Imported by ``conftest.py`` and the test modules as ``tests.chaos.faultproxy_harness``
(a real module rather than ``from conftest import``, which is ambiguous once several
test directories have a conftest).
"""

from __future__ import annotations

import contextlib
import socket
import threading
from collections.abc import Callable
from typing import Any

import requests

Handler = Callable[[socket.socket], None]

# Generous: the suite runs on a shared, noisy 2-core machine.
SOCKET_TIMEOUT_S = 10.0
THREAD_JOIN_TIMEOUT_S = 5.0


class TcpServers:
    """Threaded TCP servers on 127.0.0.1; ``start(handler)`` returns ``host:port``.

    Each accepted connection runs ``handler(conn)`` in its own thread; the
    connection is closed when the handler returns.  ``close`` shuts everything down.
    """

    def __init__(self) -> None:
        self._listeners: list[socket.socket] = []
        self._connections: list[socket.socket] = []
        self._threads: list[threading.Thread] = []
        self._lock = threading.Lock()
        self.accepted = 0

    def start(self, handler: Handler) -> str:
        listener = socket.create_server(("127.0.0.1", 0))
        self._listeners.append(listener)
        thread = threading.Thread(target=self._accept_loop, args=(listener, handler), daemon=True)
        self._threads.append(thread)
        thread.start()
        host, port = listener.getsockname()[:2]
        return f"{host}:{port}"

    def _accept_loop(self, listener: socket.socket, handler: Handler) -> None:
        while True:
            try:
                conn, _ = listener.accept()
            except OSError:
                return  # closed by close()
            conn.settimeout(SOCKET_TIMEOUT_S)
            with self._lock:
                self.accepted += 1
                self._connections.append(conn)
                thread = threading.Thread(target=self._serve, args=(conn, handler), daemon=True)
                self._threads.append(thread)
            thread.start()

    @staticmethod
    def _serve(conn: socket.socket, handler: Handler) -> None:
        with conn, contextlib.suppress(OSError):
            handler(conn)

    def close(self) -> None:
        for listener in self._listeners:
            with contextlib.suppress(OSError):
                listener.shutdown(socket.SHUT_RDWR)
            listener.close()
        with self._lock:
            connections = list(self._connections)
        for conn in connections:
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)
        for thread in list(self._threads):
            thread.join(THREAD_JOIN_TIMEOUT_S)


def echo(conn: socket.socket) -> None:
    """Send back everything received until the peer closes."""
    while data := conn.recv(65536):
        conn.sendall(data)


class Api:
    """Raw HTTP access to the fault proxy API (one keep-alive session)."""

    def __init__(self, base_url: str) -> None:
        self.base_url = base_url
        self.session = requests.Session()

    def request(self, method: str, path: str, **kwargs: Any) -> requests.Response:
        kwargs.setdefault("timeout", SOCKET_TIMEOUT_S)
        return self.session.request(method, self.base_url + path, **kwargs)

    def get(self, path: str, **kwargs: Any) -> requests.Response:
        return self.request("GET", path, **kwargs)

    def post(self, path: str, **kwargs: Any) -> requests.Response:
        return self.request("POST", path, **kwargs)

    def patch(self, path: str, **kwargs: Any) -> requests.Response:
        return self.request("PATCH", path, **kwargs)

    def delete(self, path: str, **kwargs: Any) -> requests.Response:
        return self.request("DELETE", path, **kwargs)

    def create_proxy(self, name: str, upstream: str, **fields: Any) -> int:
        """Create a proxy listening on a free port of 127.0.0.1; return that port."""
        body = {"name": name, "upstream": upstream, "listen": "127.0.0.1:0", **fields}
        response = self.post("/proxies", json=body)
        assert response.status_code == 201, response.text
        return int(response.json()["listen"].rsplit(":", 1)[1])

    def add_toxic(self, proxy: str, type_: str, **fields: Any) -> dict[str, Any]:
        response = self.post(f"/proxies/{proxy}/toxics", json={"type": type_, **fields})
        assert response.status_code == 200, response.text
        toxic: dict[str, Any] = response.json()
        return toxic
