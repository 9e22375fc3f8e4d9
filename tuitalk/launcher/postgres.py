"""A PostgreSQL server in its own data directory, on a loopback TCP port.

PostgreSQL refuses to run as root, so when the launcher runs as root ``initdb`` and
``postgres`` run as the ``postgres`` account, in a data directory that account owns.
"""

from __future__ import annotations

import glob
import hashlib
import os
import pwd
import shutil
import signal
import subprocess
import time
from pathlib import Path

from tuitalk.errors import LauncherError
from tuitalk.launcher.process import ManagedProcess, wait_for_port

__all__ = ["PostgresServer", "pg_bin"]


def pg_bin(tool: str) -> str:
    """Path of a PostgreSQL server tool (initdb, postgres), newest version first."""
    found = shutil.which(tool)
    if found:
        return found
    candidates = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{tool}"), reverse=True)
    if not candidates:
        raise LauncherError(f"{tool} not found (apt-get install postgresql)")
    return candidates[0]


def _traversable_by(user: str, path: Path) -> bool:
    """Can ``user`` reach ``path`` (x permission on every ancestor)?"""
    pw = pwd.getpwnam(user)
    groups = {pw.pw_gid}
    p = path.resolve()
    for d in [p, *p.parents]:
        if not d.exists():
            continue
        st = d.stat()
        if st.st_uid == pw.pw_uid:
            ok = bool(st.st_mode & 0o100)
        elif st.st_gid in groups:
            ok = bool(st.st_mode & 0o010)
        else:
            ok = bool(st.st_mode & 0o001)
        if not ok:
            return False
    return True


class PostgresServer:
    """``initdb`` on first start, then ``postgres`` in the foreground under our control."""

    def __init__(self, base: Path, port: int, *, fast: bool = False) -> None:
        self.base = base
        self.port = port
        self.user = "postgres" if os.geteuid() == 0 else None
        self.data = base / "pgdata"
        if self.user is not None and not _traversable_by(self.user, base):
            # e.g. pytest's /tmp/pytest-of-root is 0700: the postgres account cannot reach
            # a data directory below it, so keep the data where it can, keyed by base.
            key = hashlib.sha1(str(base.resolve()).encode()).hexdigest()[:12]
            self.data = Path("/var/tmp/tuitalk-pgdata") / key
        self.fast = fast
        self.db = "tuitalk"
        self.role = "tuitalk"
        args = [
            pg_bin("postgres"), "-D", str(self.data), "-p", str(port),
            "-c", "listen_addresses=127.0.0.1", "-c", "unix_socket_directories=",
            "-c", "max_connections=200", "-c", "log_min_messages=warning",
        ]
        if fast:
            # Test clusters trade crash safety for speed; `tuitalk up` keeps the defaults.
            args += ["-c", "fsync=off", "-c", "synchronous_commit=off",
                     "-c", "full_page_writes=off"]
        self.process = ManagedProcess("postgres", args, log_path=base / "postgres.log",
                                      user=self.user)

    @property
    def dsn(self) -> str:
        return f"postgresql://{self.role}@127.0.0.1:{self.port}/{self.db}"

    def remove_data(self) -> None:
        """Delete the data directory (test clusters, after stop)."""
        shutil.rmtree(self.data, ignore_errors=True)

    def _chown(self, path: Path) -> None:
        if self.user is not None:
            pw = pwd.getpwnam(self.user)
            os.chown(path, pw.pw_uid, pw.pw_gid)

    def init(self) -> None:
        if (self.data / "PG_VERSION").exists():
            return
        self.base.mkdir(parents=True, exist_ok=True)
        self.data.mkdir(parents=True, exist_ok=True)
        self._chown(self.data)
        if self.data.parent != self.base:
            self.data.parent.chmod(0o755)
        else:
            self._chown(self.base)
        log = self.base / "initdb.log"
        if log.exists():
            log.unlink()
        proc = ManagedProcess(
            "initdb",
            [pg_bin("initdb"), "-D", str(self.data), "-U", self.role, "--auth=trust",
             "-E", "UTF8", "--locale=C", "--no-sync"],
            log_path=log, user=self.user,
        )
        proc.start()
        if not proc.wait(120) or (proc._proc is not None and proc._proc.returncode != 0):
            raise LauncherError(f"initdb failed:\n{proc.log_tail()}")

    def start(self, timeout_s: float = 30.0) -> None:
        self.init()
        self.process.start()
        wait_for_port("127.0.0.1", self.port, timeout_s, self.process)
        self._wait_accepting(timeout_s)
        self._create_db()

    def _psql(self, db: str, sql: str) -> str:
        out = subprocess.run(
            [shutil.which("psql") or "psql", "-h", "127.0.0.1", "-p", str(self.port),
             "-U", self.role, "-d", db, "-tAc", sql],
            capture_output=True, text=True, timeout=20, check=False,
        )
        if out.returncode != 0:
            raise LauncherError(f"psql {sql!r}: {out.stderr.strip()}")
        return out.stdout.strip()

    def _wait_accepting(self, timeout_s: float) -> None:
        deadline = time.monotonic() + timeout_s
        while True:
            try:
                self._psql("postgres", "SELECT 1")
                return
            except LauncherError:
                if time.monotonic() > deadline or not self.process.alive():
                    tail = self.process.log_tail()
                    raise LauncherError(f"postgres not accepting:\n{tail}") from None
                time.sleep(0.05)

    def _create_db(self) -> None:
        if self._psql("postgres", f"SELECT 1 FROM pg_database WHERE datname='{self.db}'") != "1":
            self._psql("postgres", f"CREATE DATABASE {self.db}")

    def stop(self) -> None:
        """Fast shutdown (SIGINT): disconnect clients, write a checkpoint, exit."""
        self.process.stop(signal.SIGINT, timeout_s=15.0)

    def query(self, sql: str) -> str:
        return self._psql(self.db, sql)
