"""Exceptions raised by the fault proxy.

The tree::

    FaultProxyError                 anything this package raises on purpose
    ├── ApiError                    the HTTP API answers with ``{"error", "status"}``
    │   ├── BadRequest       400    the caller sent something we cannot use
    │   ├── NotFound         404    the named proxy or toxic does not exist
    │   ├── Conflict         409    the name is already taken
    │   └── ServerError      500    we could not do it (bind failed, ...)
    └── ProcessStartError           ``FaultProxyProcess`` could not start the server

``ApiError`` subclasses carry their HTTP status as a class attribute and the
Toxiproxy error message as ``str(exc)``; nothing else hangs on them.
"""

from __future__ import annotations

from typing import ClassVar


class FaultProxyError(Exception):
    """Base class of every exception this package raises on purpose."""


class ApiError(FaultProxyError):
    """An error that the HTTP API reports as ``{"error": str(exc), "status": status}``."""

    status: ClassVar[int] = 500


class BadRequest(ApiError):
    """The request body or parameters are invalid (the caller's fault)."""

    status = 400


class NotFound(ApiError):
    """The proxy or toxic named in the request does not exist."""

    status = 404


class Conflict(ApiError):
    """A proxy or toxic with that name already exists."""

    status = 409


class ServerError(ApiError):
    """The server could not carry out a valid request (our side's fault)."""

    status = 500


class ProcessStartError(FaultProxyError):
    """The ``python -m chaos.faultproxy`` subprocess did not report that it was ready."""


# Messages copied from Toxiproxy's api.go so that clients matching on text keep working.
PROXY_NOT_FOUND = "proxy not found"
PROXY_ALREADY_EXISTS = "proxy already exists"
TOXIC_NOT_FOUND = "toxic not found"
TOXIC_ALREADY_EXISTS = "toxic already exists"
INVALID_TOXIC_TYPE = "invalid toxic type"
INVALID_STREAM = "stream was invalid, can be either upstream or downstream"
BAD_REQUEST_BODY = "bad request body"
MISSING_FIELD = "missing required field"
