"""Keep the session across restarts: token, name, room cursors, unsent outbox, UI room.

One JSON file, ``<state dir>/state.json``, with a section per server URL (a token is only
good on the server that issued it). It holds a secret (the token), so the directory is
created 0700 and the file 0600. Writes are atomic: a temporary file in the same directory,
flushed and fsynced, then ``os.replace``: a crash leaves the old state or the new one,
never half of one. A file that cannot be read or parsed is treated as absent (and kept
aside as ``state.json.bad`` for inspection), so a corrupt state never stops the client.
"""

from __future__ import annotations

import contextlib
import json
import os
from pathlib import Path
from typing import Any, Final

__all__ = ["StateStore"]

FILE_NAME: Final = "state.json"
VERSION: Final = 1


class StateStore:
    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.path = directory / FILE_NAME

    def _read_all(self) -> dict[str, Any]:
        try:
            raw = self.path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return {}
        except OSError:
            return {}
        try:
            data = json.loads(raw)
        except ValueError:
            data = None
        if not isinstance(data, dict) or not isinstance(data.get("servers"), dict):
            with contextlib.suppress(OSError):
                os.replace(self.path, self.path.with_name(FILE_NAME + ".bad"))
            return {}
        return data

    def load(self, url: str) -> dict[str, Any] | None:
        """The saved section for ``url``: ``{"session": ..., "ui": ...}``, or None."""
        section = self._read_all().get("servers", {}).get(url)
        return section if isinstance(section, dict) else None

    def save(self, url: str, section: dict[str, Any]) -> None:
        """Replace the section for ``url`` atomically. Raises OSError if it cannot write."""
        self.directory.mkdir(parents=True, exist_ok=True, mode=0o700)
        data = self._read_all()
        servers = data.get("servers") if isinstance(data.get("servers"), dict) else {}
        assert isinstance(servers, dict)
        servers[url] = section
        body = json.dumps({"version": VERSION, "servers": servers}, ensure_ascii=False,
                          separators=(",", ":")).encode("utf-8")
        tmp = self.path.with_name(f".{FILE_NAME}.{os.getpid()}.tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(body)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, self.path)
        except BaseException:
            with contextlib.suppress(OSError):
                tmp.unlink()
            raise
        with contextlib.suppress(OSError):
            dfd = os.open(self.directory, os.O_RDONLY)
            try:
                os.fsync(dfd)
            finally:
                os.close(dfd)
