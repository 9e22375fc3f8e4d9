"""Command line and environment -> one typed configuration object (nothing else reads them).

``tuitalk-cli [--url URL] [--state-dir DIR] [--room ROOM] [--name NAME]``; the environment
variables ``TUITALK_URL`` and ``TUITALK_STATE_DIR`` set the defaults of the first two.
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import tzinfo
from pathlib import Path
from typing import Final

from tuitalk import protocol as p
from tuitalk.errors import ProtocolError

__all__ = ["DEFAULT_ROOM", "DEFAULT_URL", "CliConfig", "default_state_dir", "parse_args"]

DEFAULT_URL: Final = "ws://127.0.0.1:8080/ws"
DEFAULT_ROOM: Final = "lobby"
#: Items one room's timeline keeps before trimming the oldest (they page back in on scroll).
MAX_ITEMS: Final = 10_000
#: Messages per history page: the server's cap is 500; 200 fills a tall terminal twice.
HISTORY_PAGE: Final = 200


@dataclass(frozen=True, slots=True)
class CliConfig:
    state_dir: Path
    url: str = DEFAULT_URL
    #: Joined on first start (when the saved state has no room).
    room: str = DEFAULT_ROOM
    #: A name to ask for on connect (otherwise the server suggests one).
    name: str | None = None
    #: Time zone for message times; None: the local one.
    tz: tzinfo | None = None
    max_items: int = MAX_ITEMS
    history_page: int = HISTORY_PAGE
    #: Persist token, cursors and outbox (tests turn it off for throwaway apps).
    save_state: bool = True


def default_state_dir(env: Mapping[str, str] | None = None) -> Path:
    env = os.environ if env is None else env
    base = env.get("XDG_STATE_HOME") or str(Path(env.get("HOME") or Path.home()) / ".local" /
                                            "state")
    return Path(base) / "tuitalk"


def _room(value: str) -> str:
    try:
        return p.validate_room(value.removeprefix("#").lower(), remote=False)
    except ProtocolError as exc:
        raise argparse.ArgumentTypeError(exc.detail) from exc


def _name(value: str) -> str:
    try:
        return p.normalize_name(value, remote=False)
    except ProtocolError as exc:
        raise argparse.ArgumentTypeError(exc.detail) from exc


def parse_args(argv: Sequence[str] | None = None,
               env: Mapping[str, str] | None = None) -> CliConfig:
    env = os.environ if env is None else env
    ap = argparse.ArgumentParser(prog="tuitalk-cli",
                                 description="TuiTalk: anonymous chat in your terminal.")
    ap.add_argument("--url", default=env.get("TUITALK_URL", DEFAULT_URL),
                    help=f"server WebSocket URL (default {DEFAULT_URL}, env TUITALK_URL)")
    ap.add_argument("--state-dir", type=Path,
                    default=Path(env["TUITALK_STATE_DIR"]) if env.get("TUITALK_STATE_DIR")
                    else default_state_dir(env),
                    help="where your token, name, room positions and unsent messages are "
                         "kept (default $XDG_STATE_HOME/tuitalk or ~/.local/state/tuitalk)")
    ap.add_argument("--room", type=_room, default=DEFAULT_ROOM,
                    help=f"room to join on first start (default {DEFAULT_ROOM})")
    ap.add_argument("--name", type=_name, default=None,
                    help="display name to use (default: the server suggests one)")
    ns = ap.parse_args(argv)
    if not str(ns.url).startswith(("ws://", "wss://")):
        ap.error("--url must start with ws:// or wss://")
    return CliConfig(state_dir=ns.state_dir, url=ns.url, room=ns.room, name=ns.name)
