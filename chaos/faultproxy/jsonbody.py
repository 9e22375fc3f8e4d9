"""Decode API request bodies the way Toxiproxy's Go ``encoding/json`` decoder does.

What clients can observe and we copy: only the first JSON value of the body is
read (trailing bytes are ignored); an empty body is ``bad request body: EOF``;
object keys match struct fields case-insensitively; unknown keys are ignored;
``null`` leaves a field at its default; a wrong type is a 400 naming the Go
field.  Every error is a ``BadRequest`` whose text starts with ``bad request body``.
"""

from __future__ import annotations

import json
from collections.abc import Mapping

from chaos.faultproxy.errors import BAD_REQUEST_BODY, BadRequest
from chaos.faultproxy.proxy_collection import ProxySpec
from chaos.faultproxy.toxics import json_type_name


def _reject_constant(name: str) -> object:
    # Python's json accepts NaN/Infinity; JSON (and Go) do not.
    raise ValueError(f"invalid character '{name[0]}' looking for beginning of value")


_DECODER = json.JSONDecoder(parse_constant=_reject_constant)


def decode(body: bytes) -> object:
    """Return the first JSON value in ``body``; raises ``BadRequest``."""
    text = body.decode("utf-8", errors="replace").lstrip(" \t\r\n")
    if not text:
        raise BadRequest(f"{BAD_REQUEST_BODY}: EOF")
    try:
        value, _ = _DECODER.raw_decode(text)
    except ValueError as exc:
        message = exc.msg if isinstance(exc, json.JSONDecodeError) else str(exc)
        raise BadRequest(f"{BAD_REQUEST_BODY}: {message}") from None
    return value


def as_object(value: object, go_type: str) -> Mapping[str, object]:
    """``value`` as a JSON object (``null`` is an empty one); raises ``BadRequest``."""
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise BadRequest(
            f"{BAD_REQUEST_BODY}: json: cannot unmarshal {json_type_name(value)} "
            f"into Go value of type {go_type}"
        )
    return value


def lookup(obj: Mapping[str, object], name: str) -> object:
    """The value of field ``name``: exact key first, then case-insensitive; else None."""
    if name in obj:
        return obj[name]
    folded = name.casefold()
    return next((value for key, value in obj.items() if key.casefold() == folded), None)


def _type_error(value: object, struct: str, name: str, go_type: str) -> BadRequest:
    return BadRequest(
        f"{BAD_REQUEST_BODY}: json: cannot unmarshal {json_type_name(value)} into Go struct "
        f"field {struct}.{name} of type {go_type}"
    )


def get_str(obj: Mapping[str, object], name: str, default: str, struct: str) -> str:
    value = lookup(obj, name)
    if value is None:
        return default
    if not isinstance(value, str):
        raise _type_error(value, struct, name, "string")
    return value


def get_bool(obj: Mapping[str, object], name: str, default: bool, struct: str) -> bool:
    value = lookup(obj, name)
    if value is None:
        return default
    if not isinstance(value, bool):
        raise _type_error(value, struct, name, "bool")
    return value


def get_float(
    obj: Mapping[str, object], name: str, default: float | None, struct: str
) -> float | None:
    value = lookup(obj, name)
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise _type_error(value, struct, name, "float32")
    return float(value)


def proxy_spec(value: object, go_type: str = "toxiproxy.Proxy") -> ProxySpec:
    """Decode one proxy object (``enabled`` defaults to true). Presence is not checked."""
    obj = as_object(value, go_type)
    return ProxySpec(
        name=get_str(obj, "name", "", "Proxy"),
        listen=get_str(obj, "listen", "", "Proxy"),
        upstream=get_str(obj, "upstream", "", "Proxy"),
        enabled=get_bool(obj, "enabled", True, "Proxy"),
    )


def proxy_specs(value: object) -> list[ProxySpec]:
    """Decode a populate body: a JSON array of proxy objects (``null`` = none)."""
    if value is None:
        return []
    if not isinstance(value, list):
        raise BadRequest(
            f"{BAD_REQUEST_BODY}: json: cannot unmarshal {json_type_name(value)} "
            "into Go value of type []struct { toxiproxy.Proxy; Enabled *bool }"
        )
    return [proxy_spec(item, "struct { toxiproxy.Proxy; Enabled *bool }") for item in value]
