"""The Toxiproxy 2.x HTTP API (routes, status codes and JSON of Toxiproxy's ``api.go``).

===========================================  =========================================
``GET /version``                             200 ``{"version": "2.12.0"}``
``POST /reset``                              204; enables all proxies, removes toxics
``GET /proxies``                             200 object keyed by proxy name
``POST /proxies``                            201 proxy; 409 exists; 400 missing field
``POST /populate``                           201 ``{"proxies": [...]}``
``GET /proxies/{p}``                         200 proxy; 404
``POST|PATCH /proxies/{p}``                  200 proxy (update listen/upstream/enabled)
``DELETE /proxies/{p}``                      204
``GET /proxies/{p}/toxics``                  200 array, upstream toxics first
``POST /proxies/{p}/toxics``                 200 toxic; 409 exists; 400 type/stream/attrs
``GET /proxies/{p}/toxics/{t}``              200 toxic; 404
``POST|PATCH /proxies/{p}/toxics/{t}``       200 toxic (attributes merged, toxicity)
``DELETE /proxies/{p}/toxics/{t}``           204
===========================================  =========================================

Quirks copied from Go because clients can see them: errors are
``{"error": msg, "status": code}`` plus a newline, sent as ``text/plain`` (Go's
``http.Error``); an unknown path is a plain ``404 page not found``; a known path
with the wrong method is an empty 405; a ``User-Agent`` starting with
``Mozilla/`` gets 403 (a browser must not be able to drive the proxy); a
successful populate of nothing returns ``{"proxies":null}``.

Not implemented: ``GET /metrics`` (Go serves it only with metrics flags) and Go's
25 s handler timeout.
"""

from __future__ import annotations

import json
import logging
import re
import uuid
from collections.abc import Awaitable, Callable, Mapping

from chaos.faultproxy import jsonbody
from chaos.faultproxy.chunks import Direction
from chaos.faultproxy.errors import (
    INVALID_STREAM,
    INVALID_TOXIC_TYPE,
    MISSING_FIELD,
    ApiError,
    BadRequest,
)
from chaos.faultproxy.httpwire import Request, Response
from chaos.faultproxy.proxy_collection import ProxyCollection
from chaos.faultproxy.toxics import TOXIC_KINDS

log = logging.getLogger(__name__)

# The Toxiproxy release whose API this server reproduces; reported by /version.
TOXIPROXY_VERSION = "2.12.0"

_JSON = "application/json"
_TEXT = "text/plain; charset=utf-8"
_NOSNIFF = (("X-Content-Type-Options", "nosniff"),)

Route = Callable[[Request, Mapping[str, str]], Awaitable[Response]]


def _json(status: int, value: object) -> Response:
    return Response(status, json.dumps(value, separators=(",", ":")).encode(), _JSON)


def _error(exc: ApiError) -> Response:
    body = json.dumps({"error": str(exc), "status": exc.status}, separators=(",", ":"))
    return Response(exc.status, f"{body}\n".encode(), _TEXT, _NOSNIFF)


class ToxiproxyApi:
    """Maps HTTP requests onto a ``ProxyCollection``.

    ``handle`` never raises for a client error: every ``ApiError`` becomes its
    response.  Other exceptions are bugs and propagate (``httpwire`` answers 500).
    """

    def __init__(self, proxies: ProxyCollection) -> None:
        self._proxies = proxies
        proxy, toxic = r"(?P<proxy>[^/]+)", r"(?P<toxic>[^/]+)"
        # Path pattern -> method -> handler; mirrors the mux table in api.go.
        self._routes: list[tuple[re.Pattern[str], dict[str, Route]]] = [
            (re.compile("/reset"), {"POST": self._reset}),
            (re.compile("/proxies"), {"GET": self._proxy_index, "POST": self._proxy_create}),
            (re.compile("/populate"), {"POST": self._populate}),
            (
                re.compile(f"/proxies/{proxy}"),
                {
                    "GET": self._proxy_show,
                    "POST": self._proxy_update,
                    "PATCH": self._proxy_update,
                    "DELETE": self._proxy_delete,
                },
            ),
            (
                re.compile(f"/proxies/{proxy}/toxics"),
                {"GET": self._toxic_index, "POST": self._toxic_create},
            ),
            (
                re.compile(f"/proxies/{proxy}/toxics/{toxic}"),
                {
                    "GET": self._toxic_show,
                    "POST": self._toxic_update,
                    "PATCH": self._toxic_update,
                    "DELETE": self._toxic_delete,
                },
            ),
            (re.compile("/version"), {"GET": self._version}),
        ]

    async def handle(self, request: Request) -> Response:
        """Answer one request (the ``httpwire.Handler`` contract)."""
        response = await self._dispatch(request)
        request_id = (("X-Toxiproxy-Request-Id", uuid.uuid4().hex[:20]),)
        log.debug(
            "api request method=%s path=%s status=%d", request.method, request.path, response.status
        )
        return Response(
            response.status,
            response.body,
            response.content_type,
            response.headers + request_id,
        )

    async def _dispatch(self, request: Request) -> Response:
        for pattern, methods in self._routes:
            match = pattern.fullmatch(request.path)
            if match is None:
                continue
            route = methods.get(request.method)
            if route is None:
                continue  # gorilla/mux keeps looking, then answers 405 below
            if request.headers.get("user-agent", "").startswith("Mozilla/"):
                return Response(403, b"User agent not allowed\n", _TEXT, _NOSNIFF)
            try:
                return await route(request, match.groupdict())
            except ApiError as exc:
                return _error(exc)
        if any(pattern.fullmatch(request.path) for pattern, _ in self._routes):
            return Response(405)
        return Response(404, b"404 page not found\n", _TEXT, _NOSNIFF)

    # -- proxies ------------------------------------------------------------------------

    async def _proxy_index(self, request: Request, params: Mapping[str, str]) -> Response:
        return _json(200, {proxy.name: proxy.to_json() for proxy in self._proxies.all()})

    async def _proxy_create(self, request: Request, params: Mapping[str, str]) -> Response:
        spec = jsonbody.proxy_spec(jsonbody.decode(request.body))
        if not spec.name:
            raise BadRequest(f"{MISSING_FIELD}: name")
        if not spec.upstream:
            raise BadRequest(f"{MISSING_FIELD}: upstream")
        proxy = await self._proxies.add(spec)
        return _json(201, proxy.to_json())

    async def _populate(self, request: Request, params: Mapping[str, str]) -> Response:
        try:
            proxies = await self._proxies.populate(
                jsonbody.proxy_specs(jsonbody.decode(request.body))
            )
        except ApiError as exc:
            # Go merges the error into the populate object, with the error's status.
            return _json(exc.status, {"error": str(exc), "status": exc.status, "proxies": None})
        return _json(201, {"proxies": [proxy.to_json() for proxy in proxies] or None})

    async def _proxy_show(self, request: Request, params: Mapping[str, str]) -> Response:
        return _json(200, self._proxies.get(params["proxy"]).to_json())

    async def _proxy_update(self, request: Request, params: Mapping[str, str]) -> Response:
        proxy = self._proxies.get(params["proxy"])
        obj = jsonbody.as_object(jsonbody.decode(request.body), "toxiproxy.Proxy")
        listen = jsonbody.get_str(obj, "listen", proxy.listen, "Proxy")
        upstream = jsonbody.get_str(obj, "upstream", proxy.upstream, "Proxy")
        enabled = jsonbody.get_bool(obj, "enabled", proxy.enabled, "Proxy")
        proxy = await self._proxies.update(proxy.name, listen, upstream, enabled)
        return _json(200, proxy.to_json())

    async def _proxy_delete(self, request: Request, params: Mapping[str, str]) -> Response:
        await self._proxies.remove(params["proxy"])
        return Response(204)

    async def _reset(self, request: Request, params: Mapping[str, str]) -> Response:
        await self._proxies.reset()
        return Response(204)

    # -- toxics -------------------------------------------------------------------------

    async def _toxic_index(self, request: Request, params: Mapping[str, str]) -> Response:
        proxy = self._proxies.get(params["proxy"])
        return _json(200, [toxic.to_json() for toxic in proxy.toxics.all()])

    async def _toxic_create(self, request: Request, params: Mapping[str, str]) -> Response:
        proxy = self._proxies.get(params["proxy"])
        obj = jsonbody.as_object(jsonbody.decode(request.body), "toxics.ToxicWrapper")
        struct = "ToxicWrapper"
        name = jsonbody.get_str(obj, "name", "", struct)
        type_name = jsonbody.get_str(obj, "type", "", struct)
        stream = jsonbody.get_str(obj, "stream", "downstream", struct)
        toxicity = jsonbody.get_float(obj, "toxicity", 1.0, struct)
        try:
            direction = Direction(stream.lower())
        except ValueError:
            raise BadRequest(INVALID_STREAM) from None
        if not name:
            name = f"{type_name}_{direction.value}"
        kind = TOXIC_KINDS.get(type_name)
        if kind is None:
            raise BadRequest(INVALID_TOXIC_TYPE)
        toxic = await proxy.toxics.add(
            name,
            kind,
            direction,
            1.0 if toxicity is None else toxicity,
            jsonbody.lookup(obj, "attributes"),
        )
        return _json(200, toxic.to_json())

    async def _toxic_show(self, request: Request, params: Mapping[str, str]) -> Response:
        proxy = self._proxies.get(params["proxy"])
        return _json(200, proxy.toxics.get(params["toxic"]).to_json())

    async def _toxic_update(self, request: Request, params: Mapping[str, str]) -> Response:
        proxy = self._proxies.get(params["proxy"])
        proxy.toxics.get(params["toxic"])  # 404 before looking at the body, as in Go
        obj = jsonbody.as_object(jsonbody.decode(request.body), "toxics.ToxicWrapper")
        toxicity = jsonbody.get_float(obj, "toxicity", None, "ToxicWrapper")
        toxic = await proxy.toxics.update(
            params["toxic"], jsonbody.lookup(obj, "attributes"), toxicity
        )
        return _json(200, toxic.to_json())

    async def _toxic_delete(self, request: Request, params: Mapping[str, str]) -> Response:
        proxy = self._proxies.get(params["proxy"])
        await proxy.toxics.remove(params["toxic"])
        return Response(204)

    # -- misc ---------------------------------------------------------------------------

    async def _version(self, request: Request, params: Mapping[str, str]) -> Response:
        body = f'{{"version": "{TOXIPROXY_VERSION}"}}\n'.encode()
        return Response(200, body, "application/json;charset=utf-8")
