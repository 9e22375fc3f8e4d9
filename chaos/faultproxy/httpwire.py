"""A minimal HTTP/1.1 server connection: enough for Toxiproxy's JSON API, stdlib only.

Supports persistent connections, ``Content-Length`` and ``chunked`` request
bodies and ``Expect: 100-continue``.  One request at a time per connection (no
pipelining beyond reading the next request after answering the previous one).

Limits (Go's ``http.Server`` settings in Toxiproxy's ``api.go`` where it has them):
``READ_TIMEOUT_S`` to read a whole request once its first byte arrived,
``IDLE_TIMEOUT_S`` between requests, ``MAX_HEAD_BYTES`` for the request line and
headers and ``MAX_BODY_BYTES`` for the body.  A malformed request gets a 400 and
the connection is closed: the client's fault, never an exception out of here.
"""

from __future__ import annotations

import http
import logging
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from email.utils import formatdate
from urllib.parse import unquote, urlsplit

import anyio

from chaos.faultproxy.sockets import TcpSocket

log = logging.getLogger(__name__)

READ_TIMEOUT_S = 15.0
IDLE_TIMEOUT_S = 60.0
MAX_HEAD_BYTES = 64 * 1024
# Populate bodies are the largest; a megabyte holds thousands of proxies.
MAX_BODY_BYTES = 1024 * 1024
_RECEIVE_BYTES = 64 * 1024


class HttpProtocolError(Exception):
    """The client sent something that is not acceptable HTTP/1.x (answered with 400)."""


@dataclass(frozen=True)
class Request:
    """A parsed request. Header names are lower-case; ``path`` is percent-decoded."""

    method: str
    target: str
    path: str
    version: str
    headers: Mapping[str, str]
    body: bytes

    @property
    def keep_alive(self) -> bool:
        connection = self.headers.get("connection", "").lower()
        if self.version == "HTTP/1.0":
            return "keep-alive" in connection
        return "close" not in connection


@dataclass(frozen=True)
class Response:
    """A response; ``content_type`` None sends no Content-Type header."""

    status: int
    body: bytes = b""
    content_type: str | None = None
    headers: tuple[tuple[str, str], ...] = ()


Handler = Callable[[Request], Awaitable[Response]]


class _Reader:
    """Buffers bytes from a socket for line- and length-based parsing."""

    def __init__(self, sock: TcpSocket) -> None:
        self._sock = sock
        self._buffer = bytearray()

    async def _fill(self) -> bool:
        data = await self._sock.receive(_RECEIVE_BYTES)
        self._buffer += data
        return bool(data)

    async def has_data(self) -> bool:
        """Wait for at least one byte; False if the peer closed first."""
        return bool(self._buffer) or await self._fill()

    async def read_until(self, delimiter: bytes, max_bytes: int) -> bytes:
        """Return the bytes before ``delimiter`` (consumed too)."""
        start = 0
        while True:
            index = self._buffer.find(delimiter, start)
            if index >= 0:
                data = bytes(self._buffer[:index])
                del self._buffer[: index + len(delimiter)]
                return data
            if len(self._buffer) > max_bytes:
                raise HttpProtocolError("request header too large")
            start = max(0, len(self._buffer) - len(delimiter) + 1)
            if not await self._fill():
                raise HttpProtocolError("connection closed mid-request")

    async def read_exactly(self, count: int) -> bytes:
        while len(self._buffer) < count:
            if not await self._fill():
                raise HttpProtocolError("connection closed mid-body")
        data = bytes(self._buffer[:count])
        del self._buffer[:count]
        return data


def _parse_head(head: bytes) -> tuple[str, str, str, dict[str, str]]:
    lines = head.decode("latin-1").split("\r\n")
    parts = lines[0].split(" ")
    if len(parts) != 3 or parts[2] not in ("HTTP/1.0", "HTTP/1.1") or not parts[0].isupper():
        raise HttpProtocolError(f"malformed request line {lines[0][:80]!r}")
    headers: dict[str, str] = {}
    for line in lines[1:]:
        name, sep, value = line.partition(":")
        if not sep or not name or name != name.strip() or line[:1] in (" ", "\t"):
            raise HttpProtocolError(f"malformed header line {line[:80]!r}")
        key = name.lower()
        value = value.strip(" \t")
        headers[key] = f"{headers[key]}, {value}" if key in headers else value
    return parts[0], parts[1], parts[2], headers


async def _read_body(reader: _Reader, headers: Mapping[str, str]) -> bytes:
    if "transfer-encoding" in headers:
        if headers["transfer-encoding"].lower() != "chunked":
            raise HttpProtocolError("unsupported transfer-encoding")
        body = bytearray()
        while True:
            size_line = await reader.read_until(b"\r\n", 1024)
            try:
                size = int(size_line.split(b";", 1)[0].strip(), 16)
            except ValueError:
                raise HttpProtocolError("malformed chunk size") from None
            if size == 0:
                while await reader.read_until(b"\r\n", MAX_HEAD_BYTES):
                    pass  # trailers are ignored
                return bytes(body)
            if len(body) + size > MAX_BODY_BYTES:
                raise HttpProtocolError("request body too large")
            body += await reader.read_exactly(size)
            if await reader.read_exactly(2) != b"\r\n":
                raise HttpProtocolError("malformed chunk")
    length_text = headers.get("content-length", "0")
    if not length_text.isdigit():
        raise HttpProtocolError("malformed content-length")
    length = int(length_text)
    if length > MAX_BODY_BYTES:
        raise HttpProtocolError("request body too large")
    return await reader.read_exactly(length)


async def _read_request(reader: _Reader, sock: TcpSocket) -> Request:
    head = await reader.read_until(b"\r\n\r\n", MAX_HEAD_BYTES)
    method, target, version, headers = _parse_head(head)
    if headers.get("expect", "").lower() == "100-continue" and version == "HTTP/1.1":
        await sock.send_all(b"HTTP/1.1 100 Continue\r\n\r\n")
    body = await _read_body(reader, headers)
    path = unquote(urlsplit(target).path) or "/"
    return Request(method, target, path, version, headers, body)


def encode_response(response: Response, *, keep_alive: bool) -> bytes:
    """Serialise ``response`` with Date/Content-Length (none for 204) headers."""
    try:
        reason = http.HTTPStatus(response.status).phrase
    except ValueError:
        reason = "Unknown"
    lines = [f"HTTP/1.1 {response.status} {reason}"]
    if response.content_type is not None:
        lines.append(f"Content-Type: {response.content_type}")
    lines.extend(f"{name}: {value}" for name, value in response.headers)
    lines.append(f"Date: {formatdate(usegmt=True)}")
    if response.status != 204:
        lines.append(f"Content-Length: {len(response.body)}")
    if not keep_alive:
        lines.append("Connection: close")
    return "\r\n".join(lines).encode("latin-1") + b"\r\n\r\n" + response.body


async def serve_connection(sock: TcpSocket, handler: Handler) -> None:
    """Answer requests on ``sock`` with ``handler`` until either side closes; closes ``sock``.

    ``handler`` must return a ``Response`` for every request; an exception from it
    is logged and answered with a bare 500, and the connection is closed.
    """
    reader = _Reader(sock)
    try:
        while True:
            more = False
            with anyio.move_on_after(IDLE_TIMEOUT_S):
                more = await reader.has_data()
            if not more:
                return  # the client closed, or stayed idle too long
            try:
                with anyio.fail_after(READ_TIMEOUT_S):
                    request = await _read_request(reader, sock)
            except HttpProtocolError as exc:
                body = f"400 Bad Request: {exc}".encode()
                bad = Response(400, body, "text/plain; charset=utf-8")
                await sock.send_all(encode_response(bad, keep_alive=False))
                return
            try:
                response = await handler(request)
            except Exception:
                log.exception("api handler failed method=%s path=%s", request.method, request.path)
                await sock.send_all(encode_response(Response(500), keep_alive=False))
                return
            await sock.send_all(encode_response(response, keep_alive=request.keep_alive))
            if not request.keep_alive:
                return
    except (OSError, TimeoutError, anyio.ClosedResourceError):
        return
    finally:
        sock.close()
