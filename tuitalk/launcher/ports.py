"""Free loopback ports for the processes the launcher starts."""

from __future__ import annotations

import socket

__all__ = ["PortAllocator", "port_is_free"]


def port_is_free(port: int, host: str = "127.0.0.1") -> bool:
    """True if nothing listens on ``host:port`` and we could bind it now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((host, port))
        except OSError:
            return False
    return True


class PortAllocator:
    """Hands out distinct free ports.

    Ports come from the kernel's ephemeral range (bind to port 0), which other programs
    also use, so a port is only "free" at the moment it is handed out; the launcher
    checks that each process really listens on its port after start. Redis Cluster needs
    ``port + 10000`` free as well (its cluster bus), so :meth:`redis_port` checks both.
    """

    def __init__(self) -> None:
        self._given: set[int] = set()

    def port(self) -> int:
        for _ in range(200):
            with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
                s.bind(("127.0.0.1", 0))
                p = int(s.getsockname()[1])
            if p not in self._given:
                self._given.add(p)
                return p
        raise RuntimeError("no free port found")

    def redis_port(self) -> int:
        """A port ``p`` below 55536 with ``p`` and ``p + 10000`` both free."""
        for _ in range(500):
            p = self.port()
            if p + 10000 <= 65535 and p + 10000 not in self._given and port_is_free(p + 10000):
                self._given.add(p + 10000)
                return p
        raise RuntimeError("no free Redis port pair found")

    def fixed(self, port: int) -> int:
        """Claim a port the user asked for; raise if it is taken."""
        if port in self._given or not port_is_free(port):
            raise RuntimeError(f"port {port} is already in use")
        self._given.add(port)
        return port
