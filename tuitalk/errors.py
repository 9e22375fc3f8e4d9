"""TuiTalk's exception tree, in one place.

::

    TuiTalkError
    ├── ProtocolError            a frame broke the wire protocol (carries a stable wire code)
    │   ├── RemoteProtocolError  the peer sent it: answer with an ``error`` frame
    │   └── LocalProtocolError   our own code tried to send it: a bug
    ├── BusError                 the Redis Cluster bus failed an operation
    │   ├── BusUnavailable       retryable: no master for the slot, connection lost, timeout
    │   └── EpochConflict        the room moved to a new epoch under a resume cursor
    ├── StoreError               PostgreSQL failed an operation
    │   └── StoreUnavailable     retryable: the archive is down; chat goes on without it
    └── LauncherError            the local cluster launcher could not start or drive a node

Retryable errors are classified in exactly one place, :func:`is_retryable`.
"""

from __future__ import annotations

__all__ = [
    "BusError",
    "BusUnavailable",
    "EpochConflict",
    "LauncherError",
    "LocalProtocolError",
    "ProtocolError",
    "RemoteProtocolError",
    "StoreError",
    "StoreUnavailable",
    "TuiTalkError",
    "is_retryable",
]


class TuiTalkError(Exception):
    """Base of every exception TuiTalk raises on purpose."""


class ProtocolError(TuiTalkError):
    """A frame violated protocol v1.

    ``code`` is one of :class:`tuitalk.protocol.ErrorCode` and goes on the wire unchanged;
    ``detail`` is a short human-readable reason (never echoes user content back verbatim
    beyond a few characters, so it is safe to log).
    """

    def __init__(self, code: str, detail: str) -> None:
        super().__init__(f"{code}: {detail}")
        self.code = code
        self.detail = detail


class RemoteProtocolError(ProtocolError):
    """The peer sent something invalid. The receiver answers with an ``error`` frame."""


class LocalProtocolError(ProtocolError):
    """Our own code tried to build an invalid frame. This is always a bug."""


class BusError(TuiTalkError):
    """An operation on the Redis Cluster bus failed."""


class BusUnavailable(BusError):
    """The bus cannot serve the operation right now (failover, partition, timeout).

    Callers retry with backoff or, for client sends, leave the message in the client's outbox.
    """


class EpochConflict(BusError):
    """A cursor names an epoch whose history can no longer be continued."""


class StoreError(TuiTalkError):
    """An operation on the PostgreSQL archive failed."""


class StoreUnavailable(StoreError):
    """PostgreSQL is unreachable. Chat continues; the archive catches up later."""


class LauncherError(TuiTalkError):
    """The local cluster launcher failed to start, stop or drive a node."""


def is_retryable(exc: BaseException) -> bool:
    """Return True when ``exc`` is worth retrying after a backoff.

    The single place that decides it: the server's publish loop, the archiver and the
    clients all ask here.
    """
    return isinstance(exc, BusUnavailable | StoreUnavailable | ConnectionError | TimeoutError)
