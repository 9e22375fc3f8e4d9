"""Non-blocking TCP sockets driven by anyio's ``wait_readable``/``wait_writable``.

We use raw sockets rather than anyio's socket streams because a fault proxy needs
control that the streams hide: ``reset_peer`` must close with ``SO_LINGER`` 0 and
*no* FIN first (anyio's ``aclose`` sends ``write_eof`` before closing, so the peer
would read EOF instead of ``ECONNRESET``).

Addresses are Go-style strings: ``"127.0.0.1:8474"``, ``"[::1]:8474"``,
``":8474"`` (all interfaces) and ``"localhost:0"``.

Closing: ``TcpSocket.close``/``TcpListener.close`` are synchronous, idempotent and
wake any task parked on the socket with ``anyio.ClosedResourceError``.  They must be
called from inside the event loop.
"""

from __future__ import annotations

import contextlib
import errno
import os
import socket
import struct

import anyio
import anyio.lowlevel

LISTEN_BACKLOG = 128


def split_host_port(address: str) -> tuple[str, int]:
    """Split a Go-style ``host:port`` string.

    ``""`` means ``":0"``. Raises ``ValueError`` with a Go-like message when the
    address is malformed.
    """
    if address == "":
        return "", 0
    if address.startswith("["):
        end = address.find("]")
        if end < 0:
            raise ValueError(f"address {address}: missing ']' in address")
        host, rest = address[1:end], address[end + 1 :]
        if not rest.startswith(":"):
            raise ValueError(f"address {address}: missing port in address")
        port_text = rest[1:]
    else:
        host, sep, port_text = address.rpartition(":")
        if not sep:
            raise ValueError(f"address {address}: missing port in address")
        if ":" in host:
            raise ValueError(f"address {address}: too many colons in address")
    if port_text == "":
        return host, 0
    if not port_text.isdigit() or int(port_text) > 65535:
        raise ValueError(f"address {address}: invalid port")
    return host, int(port_text)


def join_host_port(host: str, port: int) -> str:
    """Inverse of ``split_host_port``: brackets IPv6 literals like Go's ``JoinHostPort``."""
    if ":" in host:
        return f"[{host}]:{port}"
    return f"{host}:{port}"


def _sockname(sock: socket.socket) -> str:
    name = sock.getsockname()
    return join_host_port(str(name[0]), int(name[1]))


class TcpSocket:
    """A connected non-blocking TCP socket.

    ``receive``/``send_all`` raise ``anyio.ClosedResourceError`` if the socket was
    closed (by us, possibly from another task) and ``OSError`` for network errors
    such as ``ConnectionResetError``.
    """

    def __init__(self, sock: socket.socket) -> None:
        sock.setblocking(False)
        # Go's net package turns Nagle off for every TCP connection; Toxiproxy inherits
        # it. If the peer already reset, the first receive/send reports that instead.
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self._sock = sock
        self._closed = False
        self.peer = self._describe(sock)

    @staticmethod
    def _describe(sock: socket.socket) -> str:
        try:
            name = sock.getpeername()
        except OSError:
            return "?"
        return join_host_port(str(name[0]), int(name[1]))

    @property
    def closed(self) -> bool:
        return self._closed

    def set_reset_on_close(self) -> None:
        """Make ``close`` abort the connection with an RST instead of a FIN."""
        if self._closed:
            return
        # If the socket is already dead the peer sees whatever the kernel decided.
        with contextlib.suppress(OSError):
            self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))

    async def receive(self, max_bytes: int) -> bytes:
        """Return up to ``max_bytes``; ``b""`` means the peer closed its side."""
        while True:
            if self._closed:
                raise anyio.ClosedResourceError
            try:
                data = self._sock.recv(max_bytes)
            except BlockingIOError:
                await anyio.wait_readable(self._sock)
                continue
            # A socket that always has data would otherwise never yield to the loop.
            await anyio.lowlevel.checkpoint()
            return data

    async def send_all(self, data: bytes) -> None:
        """Send every byte of ``data``, waiting for buffer space as needed."""
        view = memoryview(data)
        while view:
            if self._closed:
                raise anyio.ClosedResourceError
            try:
                sent = self._sock.send(view)
            except BlockingIOError:
                await anyio.wait_writable(self._sock)
                continue
            view = view[sent:]
        await anyio.lowlevel.checkpoint()

    def close(self) -> None:
        """Close now (idempotent); tasks parked on this socket get ``ClosedResourceError``."""
        if self._closed:
            return
        self._closed = True
        anyio.notify_closing(self._sock)
        self._sock.close()


class TcpListener:
    """A listening non-blocking TCP socket; ``address`` is the bound ``host:port``."""

    def __init__(self, sock: socket.socket) -> None:
        self._sock = sock
        self._closed = False
        self.address = _sockname(sock)

    async def accept(self) -> TcpSocket:
        """Wait for and return the next client. ``OSError`` (e.g. EMFILE) propagates."""
        while True:
            if self._closed:
                raise anyio.ClosedResourceError
            try:
                client, _ = self._sock.accept()
            except BlockingIOError:
                await anyio.wait_readable(self._sock)
                continue
            try:
                await anyio.lowlevel.checkpoint()
                return TcpSocket(client)
            except BaseException:
                client.close()
                raise

    def close(self) -> None:
        """Stop listening (idempotent)."""
        if self._closed:
            return
        self._closed = True
        anyio.notify_closing(self._sock)
        self._sock.close()


async def listen_tcp(address: str) -> TcpListener:
    """Bind and listen on a Go-style address; port 0 picks a free port.

    Raises ``ValueError`` for a malformed address and ``OSError`` if binding fails.
    An empty host listens on all interfaces, like Go.
    """
    host, port = split_host_port(address)
    if host == "":
        family, sockaddr = (
            (socket.AF_INET6, ("::", port)) if socket.has_ipv6 else (socket.AF_INET, ("", port))
        )
    else:
        infos = await anyio.getaddrinfo(
            host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
        )
        if not infos:
            raise OSError(errno.EADDRNOTAVAIL, f"no address for {host}")
        # Go's "tcp" listener on a hostname takes the first IPv4 address if there is one.
        infos.sort(key=lambda info: info[0] != socket.AF_INET)
        family, sockaddr = infos[0][0], infos[0][4][:2]
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        # Like Go: re-enabling a proxy must be able to rebind its port at once.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if family == socket.AF_INET6 and host == "":
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
        sock.bind(sockaddr)
        sock.listen(LISTEN_BACKLOG)
        sock.setblocking(False)
    except BaseException:
        sock.close()
        raise
    return TcpListener(sock)


async def connect_tcp(address: str) -> TcpSocket:
    """Connect to a Go-style address, trying each resolved address in turn.

    Raises ``ValueError`` for a malformed address and ``OSError`` if every attempt
    fails. The caller bounds the time with a cancel scope.
    """
    host, port = split_host_port(address)
    infos = await anyio.getaddrinfo(host or "localhost", port, type=socket.SOCK_STREAM)
    last_error: OSError = OSError(errno.EADDRNOTAVAIL, f"no address for {host}")
    for family, type_, proto, _, sockaddr in infos:
        sock = socket.socket(family, type_, proto)
        try:
            sock.setblocking(False)
            err = sock.connect_ex(sockaddr)
            if err in (errno.EINPROGRESS, errno.EAGAIN):
                await anyio.wait_writable(sock)
                err = sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
            if err:
                raise OSError(err, os.strerror(err))
            return TcpSocket(sock)
        except OSError as exc:
            sock.close()
            last_error = exc
        except BaseException:
            sock.close()
            raise
    raise last_error
