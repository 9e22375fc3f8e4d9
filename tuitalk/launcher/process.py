"""One local process the launcher owns: start, signal and stop it by its PID only."""

from __future__ import annotations

import contextlib
import os
import pwd
import signal
import socket
import subprocess
import time
from collections.abc import Sequence
from pathlib import Path

from tuitalk.errors import LauncherError

__all__ = ["ManagedProcess", "wait_for_port"]


def wait_for_port(
    host: str, port: int, timeout_s: float, proc: ManagedProcess | None = None
) -> None:
    """Block until ``host:port`` accepts TCP connections; raise LauncherError on timeout.

    If ``proc`` dies meanwhile, fail at once with the tail of its log.
    """
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc is not None and not proc.alive():
            raise LauncherError(f"{proc.name} exited early:\n{proc.log_tail()}")
        try:
            with socket.create_connection((host, port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.02)
    tail = proc.log_tail() if proc else ""
    raise LauncherError(f"{host}:{port} did not open within {timeout_s:.1f}s\n{tail}")


class ManagedProcess:
    """A child process with a log file, controlled by PID.

    The child starts in its own session (so a Ctrl-C in the launcher's terminal does not
    reach it directly, and the launcher decides the shutdown order). ``user`` runs it as
    another account (PostgreSQL refuses to run as root).
    """

    def __init__(
        self,
        name: str,
        argv: Sequence[str],
        *,
        log_path: Path,
        env: dict[str, str] | None = None,
        cwd: Path | None = None,
        user: str | None = None,
    ) -> None:
        self.name = name
        self.argv = list(argv)
        self.log_path = log_path
        self.env = env
        self.cwd = cwd
        self.user = user
        self._proc: subprocess.Popen[bytes] | None = None
        self.frozen = False

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc else None

    def start(self) -> None:
        if self.alive():
            raise LauncherError(f"{self.name} is already running (pid {self.pid})")
        self._reap_group()
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        log = self.log_path.open("ab")
        kwargs: dict[str, object] = {}
        if self.user is not None:
            pw = pwd.getpwnam(self.user)
            kwargs.update(user=pw.pw_uid, group=pw.pw_gid, extra_groups=[])
        env = dict(os.environ if self.env is None else self.env)
        try:
            self._proc = subprocess.Popen(
                self.argv,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=self.cwd,
                env=env,
                start_new_session=True,
                **kwargs,  # type: ignore[call-overload]
            )
        except OSError as exc:
            raise LauncherError(f"cannot start {self.name}: {exc}") from exc
        finally:
            log.close()
        self.frozen = False

    def alive(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def send_signal(self, sig: int) -> None:
        if self._proc is not None and self._proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(self._proc.pid, sig)

    def kill(self) -> None:
        """SIGKILL and reap."""
        if self.frozen:
            self.thaw()
        self.send_signal(signal.SIGKILL)
        self.wait(5.0)

    def freeze(self) -> None:
        """SIGSTOP: the process keeps its sockets but answers nothing."""
        self.send_signal(signal.SIGSTOP)
        self.frozen = True

    def thaw(self) -> None:
        self.send_signal(signal.SIGCONT)
        self.frozen = False

    def stop(self, sig: int = signal.SIGTERM, timeout_s: float = 10.0) -> None:
        """Ask the process to exit with ``sig``; SIGKILL it after ``timeout_s``."""
        if self.alive():
            if self.frozen:
                self.thaw()
            self.send_signal(sig)
            if not self.wait(timeout_s):
                self.send_signal(signal.SIGKILL)
                self.wait(5.0)
        self._reap_group()

    def _reap_group(self) -> None:
        """SIGKILL what an exited process left behind in its process group.

        The child leads its own session, so its helpers share its process group. nginx's
        workers outlive a SIGKILLed master and keep serving the port; without this, a
        killed nginx could not be started again and its workers would outlive the
        launcher. The group id is not reused while any member lives, so this reaches only
        our own leftovers.
        """
        if self._proc is None or self._proc.poll() is None:
            return
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self._proc.pid, signal.SIGKILL)

    def wait(self, timeout_s: float) -> bool:
        """Wait for exit; True if it exited."""
        if self._proc is None:
            return True
        try:
            self._proc.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            return False
        return True

    def log_tail(self, lines: int = 30) -> str:
        try:
            data = self.log_path.read_text(errors="replace").splitlines()
        except OSError:
            return ""
        return "\n".join(data[-lines:])
