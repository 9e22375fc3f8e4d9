"""Running the fault proxy for synchronous callers: a subprocess or a background thread.

``FaultProxyProcess`` starts ``python -m chaos.faultproxy --port 0`` and learns the
API port from its ready line; ``close()`` stops exactly that PID (SIGTERM, then
SIGKILL after ``stop_timeout_s``).  Use it when the proxy must outlive or be
isolated from the test process, or to test the CLI itself::

    with FaultProxyProcess() as proc:
        Toxiproxy().update_api_consumer(proc.api_host, proc.api_port)

``run_in_thread`` runs a ``FaultProxyServer`` on an event loop in a daemon-free
worker thread (anyio's blocking portal) and stops it when the block exits::

    with run_in_thread() as server:
        requests.get(f"{server.api_url}/version")
"""

from __future__ import annotations

import os
import re
import selectors
import signal
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from types import TracebackType

from anyio.from_thread import start_blocking_portal

from chaos.faultproxy.errors import ProcessStartError
from chaos.faultproxy.server import FaultProxyServer
from chaos.faultproxy.sockets import join_host_port

READY_PATTERN = re.compile(r"^faultproxy listening on (?P<host>.+):(?P<port>\d+)$")

# The directory that contains the ``chaos`` package, so ``-m chaos.faultproxy`` imports
# no matter what the caller's working directory is.
_IMPORT_ROOT = Path(__file__).resolve().parents[2]


class FaultProxyProcess:
    """A ``python -m chaos.faultproxy`` subprocess (context manager; ``close`` is idempotent).

    ``start`` raises ``ProcessStartError`` if no ready line arrives within
    ``startup_timeout_s`` (the process is then killed).  The child's stderr (its
    log) goes to ``stderr`` (default: inherited).
    """

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        config_path: Path | None = None,
        seed: int | None = None,
        log_level: str = "warning",
        python: str = sys.executable,
        startup_timeout_s: float = 15.0,
        stop_timeout_s: float = 5.0,
        stderr: int | None = None,
    ) -> None:
        self._argv: list[str] = [
            python, "-m", "chaos.faultproxy",
            "--host", host, "--port", str(port), "--log-level", log_level,
        ]  # fmt: skip
        if config_path is not None:
            self._argv += ["--config", str(config_path)]
        if seed is not None:
            self._argv += ["--seed", str(seed)]
        self._startup_timeout_s = startup_timeout_s
        self._stop_timeout_s = stop_timeout_s
        self._stderr = stderr
        self._process: subprocess.Popen[bytes] | None = None
        # The exit status once ``close`` has reaped the process (0 after a clean SIGTERM).
        self.returncode: int | None = None
        self.api_host = host
        self.api_port = port

    @property
    def pid(self) -> int | None:
        return None if self._process is None else self._process.pid

    @property
    def api_url(self) -> str:
        return f"http://{join_host_port(self.api_host, self.api_port)}"

    @property
    def argv(self) -> Sequence[str]:
        return tuple(self._argv)

    def start(self) -> None:
        """Spawn the server and wait for its ready line."""
        if self._process is not None:
            raise RuntimeError("already started")
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(
            p for p in (str(_IMPORT_ROOT), env.get("PYTHONPATH", "")) if p
        )
        env["PYTHONUNBUFFERED"] = "1"
        self._process = subprocess.Popen(
            self._argv,
            stdout=subprocess.PIPE,
            stderr=self._stderr,
            stdin=subprocess.DEVNULL,
            env=env,
        )
        try:
            line = self._read_ready_line()
            match = READY_PATTERN.match(line)
            if match is None:
                raise ProcessStartError(f"unexpected first line from faultproxy: {line!r}")
        except BaseException:
            self.close()
            raise
        host = match["host"]
        self.api_host = host[1:-1] if host.startswith("[") else host
        self.api_port = int(match["port"])

    def _read_ready_line(self) -> str:
        assert self._process is not None
        assert self._process.stdout is not None
        stdout = self._process.stdout
        deadline = time.monotonic() + self._startup_timeout_s
        buffer = b""
        with selectors.DefaultSelector() as selector:
            selector.register(stdout, selectors.EVENT_READ)
            while b"\n" not in buffer:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise ProcessStartError("faultproxy did not report ready in time")
                if not selector.select(remaining):
                    continue
                data = os.read(stdout.fileno(), 4096)
                if not data:
                    # stdout closes a moment before the exit status is available.
                    try:
                        code: int | None = self._process.wait(timeout=max(remaining, 0.1))
                    except subprocess.TimeoutExpired:
                        code = None
                    raise ProcessStartError(f"faultproxy exited before it was ready (code {code})")
                buffer += data
        return buffer.split(b"\n", 1)[0].decode(errors="replace").strip()

    def wait(self, timeout_s: float) -> int:
        """Wait for the process to exit on its own; return its status.

        Raises ``subprocess.TimeoutExpired`` if it is still running after ``timeout_s``.
        """
        if self._process is None:
            raise RuntimeError("not started")
        return self._process.wait(timeout=timeout_s)

    def send_signal(self, signum: int) -> None:
        """Send ``signum`` to the server process (by its PID)."""
        if self._process is None:
            raise RuntimeError("not started")
        self._process.send_signal(signum)

    def close(self) -> None:
        """Stop the process by PID: SIGTERM, then SIGKILL if it does not exit in time."""
        process, self._process = self._process, None
        if process is None:
            return
        try:
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
                try:
                    process.wait(timeout=self._stop_timeout_s)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait()
            self.returncode = process.wait()
        finally:
            if process.stdout is not None:
                process.stdout.close()

    def __enter__(self) -> FaultProxyProcess:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()


@contextmanager
def run_in_thread(
    host: str = "127.0.0.1",
    port: int = 0,
    *,
    config_path: Path | None = None,
    seed: int | None = None,
) -> Iterator[FaultProxyServer]:
    """Run a ``FaultProxyServer`` in a worker thread for the duration of the block.

    The yielded server's ``api_host``/``api_port``/``api_url`` are ready to use;
    do not call its async methods from the calling thread.
    """
    server = FaultProxyServer(host, port, config_path=config_path, seed=seed)
    with start_blocking_portal() as portal, portal.wrap_async_context_manager(server):
        yield server
