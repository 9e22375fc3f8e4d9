"""Conformance of the fault proxy's HTTP API with Toxiproxy 2.12.

Two clients drive it: toxiproxy-python 0.1.1 (the calls it really makes, see
reference/chaos.md §2.5) and raw HTTP for the routes, status codes and JSON
shapes that the Python client never touches (Toxiproxy's api.go / api_test.go).
"""

from __future__ import annotations

import json
import signal
import socket
from pathlib import Path

import anyio
import pytest
import requests
from toxiproxy.exceptions import InvalidToxic, NotFound, ProxyExists
from toxiproxy.server import Toxiproxy

from chaos.faultproxy import (
    FaultProxyProcess,
    FaultProxyServer,
    ProcessStartError,
    ServerError,
)
from chaos.faultproxy.process import READY_PATTERN
from tests.chaos.faultproxy_harness import Api, TcpServers, echo


def port_of(listen: str) -> int:
    return int(listen.rsplit(":", 1)[1])


def connect_refused(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=2).close()
    except ConnectionRefusedError:
        return True
    return False


def echo_once(port: int, payload: bytes = b"ping") -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        sock.sendall(payload)
        return sock.recv(len(payload))


# -- toxiproxy-python 0.1.1 ----------------------------------------------------------------


def test_client_running_and_version(toxiproxy: Toxiproxy) -> None:
    assert toxiproxy.running() is True
    assert toxiproxy.version() == b'{"version": "2.12.0"}\n'


def test_client_create_list_get_destroy(toxiproxy: Toxiproxy, echo_upstream: str) -> None:
    proxy = toxiproxy.create(upstream=echo_upstream, name="redis_test")
    assert proxy.name == "redis_test"
    assert proxy.upstream == echo_upstream
    assert proxy.enabled is True
    # listen "127.0.0.1:0" (the client's default) comes back with the real port.
    assert proxy.listen.startswith("127.0.0.1:")
    assert port_of(proxy.listen) != 0
    assert echo_once(port_of(proxy.listen)) == b"ping"

    assert set(toxiproxy.proxies()) == {"redis_test"}
    fetched = toxiproxy.get_proxy("redis_test")
    assert fetched is not None
    assert fetched.listen == proxy.listen

    with pytest.raises(ProxyExists):
        toxiproxy.create(upstream=echo_upstream, name="redis_test")

    assert proxy.destroy() is True
    assert toxiproxy.get_proxy("redis_test") is None
    assert connect_refused(port_of(proxy.listen))
    with pytest.raises(NotFound):
        proxy.destroy()


def test_client_toxics(toxiproxy: Toxiproxy, echo_upstream: str) -> None:
    proxy = toxiproxy.create(upstream=echo_upstream, name="toxic_test")
    proxy.add_toxic(type="latency", attributes={"latency": 100, "jitter": 10})
    proxy.add_toxic(
        type="bandwidth", stream="upstream", name="slow_up", toxicity=0.5, attributes={"rate": 1000}
    )

    toxics = proxy.toxics()
    assert set(toxics) == {"latency_downstream", "slow_up"}
    latency = proxy.get_toxic("latency_downstream")
    assert latency is not None
    assert (latency.type, latency.stream, latency.toxicity) == ("latency", "downstream", 1)
    assert latency.attributes == {"latency": 100, "jitter": 10}
    slow_up = toxics["slow_up"]
    assert (slow_up.stream, slow_up.toxicity, slow_up.attributes) == (
        "upstream",
        0.5,
        {"rate": 1000},
    )

    with pytest.raises(ProxyExists):  # 409: the client maps every 409 to ProxyExists
        proxy.add_toxic(type="latency")
    with pytest.raises(InvalidToxic):
        proxy.add_toxic(type="no_such_toxic")
    with pytest.raises(InvalidToxic):
        proxy.add_toxic(type="latency", name="bad_stream", stream="sideways")

    assert proxy.destroy_toxic("latency_downstream") is True
    assert set(proxy.toxics()) == {"slow_up"}
    with pytest.raises(NotFound):
        proxy.destroy_toxic("latency_downstream")


def test_client_disable_enable_and_down(toxiproxy: Toxiproxy, echo_upstream: str) -> None:
    proxy = toxiproxy.create(upstream=echo_upstream, name="flappy")
    port = port_of(proxy.listen)

    proxy.disable()
    assert toxiproxy.proxies()["flappy"].enabled is False
    assert connect_refused(port)

    proxy.enable()
    assert toxiproxy.proxies()["flappy"].enabled is True
    assert echo_once(port) == b"ping"  # the same port again

    with proxy.down():
        assert connect_refused(port)
    assert echo_once(port) == b"ping"


def test_client_reset_and_populate(toxiproxy: Toxiproxy, echo_upstream: str) -> None:
    created = toxiproxy.populate(
        [
            {"name": "one", "upstream": echo_upstream, "listen": "127.0.0.1:0"},
            {"name": "two", "upstream": echo_upstream, "listen": "127.0.0.1:0"},
        ]
    )
    assert sorted(p.name for p in created) == ["one", "two"]
    one = toxiproxy.get_proxy("one")
    assert one is not None
    one.add_toxic(type="timeout", attributes={"timeout": 0})
    one.disable()

    assert toxiproxy.reset() is True
    one = toxiproxy.get_proxy("one")
    assert one is not None
    assert one.enabled is True
    assert one.toxics() == {}
    assert echo_once(port_of(one.listen)) == b"ping"

    toxiproxy.destroy_all()
    assert toxiproxy.proxies() == {}


# -- raw HTTP: proxies ---------------------------------------------------------------------


def test_version_endpoint(api: Api) -> None:
    response = api.get("/version")
    assert response.status_code == 200
    assert response.headers["Content-Type"] == "application/json;charset=utf-8"
    assert response.content == b'{"version": "2.12.0"}\n'
    assert response.headers["X-Toxiproxy-Request-Id"]


def test_create_proxy_shape_and_show(api: Api, echo_upstream: str) -> None:
    response = api.post(
        "/proxies", json={"name": "db", "listen": "127.0.0.1:0", "upstream": echo_upstream}
    )
    assert response.status_code == 201
    assert response.headers["Content-Type"] == "application/json"
    body = response.json()
    assert list(body) == ["name", "listen", "upstream", "enabled", "toxics"]
    assert body["name"] == "db"
    assert body["upstream"] == echo_upstream
    assert body["enabled"] is True
    assert body["toxics"] == []
    assert port_of(body["listen"]) != 0

    assert api.get("/proxies/db").json() == body
    assert api.get("/proxies").json() == {"db": body}
    assert echo_once(port_of(body["listen"])) == b"ping"


def test_create_disabled_proxy_does_not_listen(api: Api, echo_upstream: str) -> None:
    # Reserve a port, release it, and create a disabled proxy on it.
    with socket.create_server(("127.0.0.1", 0)) as probe:
        port = probe.getsockname()[1]
    body = {"name": "off", "listen": f"127.0.0.1:{port}", "upstream": echo_upstream}
    response = api.post("/proxies", json={**body, "enabled": False})
    assert response.status_code == 201
    assert response.json()["enabled"] is False
    assert connect_refused(port)


@pytest.mark.parametrize(
    ("body", "status", "error"),
    [
        (b"", 400, "bad request body: EOF"),
        (b"{nope", 400, "bad request body: "),
        (b'{"upstream": "127.0.0.1:1"}', 400, "missing required field: name"),
        (b'{"name": "x"}', 400, "missing required field: upstream"),
        (b'{"name": 5, "upstream": "127.0.0.1:1"}', 400, "bad request body: json: cannot"),
        (b"[]", 400, "bad request body: json: cannot unmarshal array"),
        (b'{"name": "x", "upstream": "a:1", "listen": "nocolon"}', 500, "listen tcp: "),
    ],
)
def test_create_proxy_errors(api: Api, body: bytes, status: int, error: str) -> None:
    response = api.post("/proxies", data=body)
    assert response.status_code == status
    # Go's http.Error: the JSON error object, a newline, served as text/plain.
    assert response.headers["Content-Type"] == "text/plain; charset=utf-8"
    assert response.text.endswith("\n")
    payload = response.json()
    assert list(payload) == ["error", "status"]
    assert payload["status"] == status
    assert payload["error"].startswith(error)


def test_create_duplicate_proxy_is_409(api: Api, echo_upstream: str) -> None:
    api.create_proxy("dup", echo_upstream)
    response = api.post("/proxies", json={"name": "dup", "upstream": echo_upstream})
    assert response.status_code == 409
    assert response.json() == {"error": "proxy already exists", "status": 409}


def test_create_proxy_on_busy_port_is_500(api: Api, echo_upstream: str) -> None:
    with socket.create_server(("127.0.0.1", 0)) as busy:
        port = busy.getsockname()[1]
        body = {"name": "busy", "listen": f"127.0.0.1:{port}", "upstream": echo_upstream}
        response = api.post("/proxies", json=body)
    assert response.status_code == 500
    assert "address already in use" in response.json()["error"]
    assert api.get("/proxies/busy").status_code == 404


def test_routing_errors(api: Api) -> None:
    missing = api.get("/proxies/nope")
    assert missing.status_code == 404
    assert missing.json() == {"error": "proxy not found", "status": 404}
    for method in ("GET", "POST", "DELETE"):
        assert api.request(method, "/proxies/nope/toxics/t").status_code == 404

    unknown = api.get("/no/such/route")
    assert unknown.status_code == 404
    assert unknown.text == "404 page not found\n"

    wrong_method = api.request("PUT", "/proxies")
    assert wrong_method.status_code == 405
    assert wrong_method.content == b""

    browser = api.get("/proxies", headers={"User-Agent": "Mozilla/5.0"})
    assert browser.status_code == 403
    assert browser.text == "User agent not allowed\n"


def test_update_proxy_post_and_patch(api: Api, tcp_servers: TcpServers) -> None:
    first = tcp_servers.start(echo)
    second = tcp_servers.start(lambda conn: conn.sendall(b"second"))
    port = api.create_proxy("moving", first)

    # POST (deprecated in Go but still routed): unspecified fields keep their values.
    response = api.post("/proxies/moving", json={"enabled": False})
    assert response.status_code == 200
    assert response.json()["enabled"] is False
    assert response.json()["upstream"] == first
    assert connect_refused(port)

    response = api.patch("/proxies/moving", json={"enabled": True, "upstream": second})
    assert response.status_code == 200
    body = response.json()
    assert (body["enabled"], body["upstream"], port_of(body["listen"])) == (True, second, port)
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        assert sock.recv(6) == b"second"

    # A new listen address restarts the proxy there; the old port is released.
    response = api.patch("/proxies/moving", json={"listen": "127.0.0.1:0"})
    new_port = port_of(response.json()["listen"])
    assert new_port not in (0, port)
    assert connect_refused(port)
    assert response.json()["enabled"] is True

    assert api.patch("/proxies/moving", data=b"{").status_code == 400
    assert api.patch("/proxies/moving", json={"enabled": "yes"}).status_code == 400
    assert api.patch("/proxies/ghost", json={}).status_code == 404


def test_delete_proxy(api: Api, echo_upstream: str) -> None:
    port = api.create_proxy("gone", echo_upstream)
    response = api.delete("/proxies/gone")
    assert response.status_code == 204
    assert response.content == b""
    assert connect_refused(port)
    assert api.delete("/proxies/gone").json() == {"error": "proxy not found", "status": 404}


def test_populate_endpoint(api: Api, tcp_servers: TcpServers) -> None:
    first = tcp_servers.start(echo)
    second = tcp_servers.start(echo)
    with socket.create_server(("127.0.0.1", 0)) as probe:
        fixed_port = probe.getsockname()[1]
    spec: list[dict[str, object]] = [
        {"name": "a", "listen": f"127.0.0.1:{fixed_port}", "upstream": first},
        {"name": "b", "listen": "127.0.0.1:0", "upstream": first, "enabled": False},
    ]
    response = api.post("/populate", json=spec)
    assert response.status_code == 201
    proxies = response.json()["proxies"]
    assert [(p["name"], p["enabled"]) for p in proxies] == [("a", True), ("b", False)]
    api.add_toxic("a", "latency", attributes={"latency": 1})

    # Same listen and upstream: kept as is, toxics included (populate is idempotent).
    again = api.post("/populate", json=spec[:1]).json()["proxies"]
    assert again[0]["toxics"] != []

    # A different upstream replaces the proxy (and drops its toxics).
    replaced = api.post("/populate", json=[{**spec[0], "upstream": second}]).json()["proxies"]
    assert (replaced[0]["upstream"], replaced[0]["toxics"]) == (second, [])
    assert echo_once(fixed_port) == b"ping"

    assert api.post("/populate", json=[]).json() == {"proxies": None}

    missing = api.post("/populate", json=[{"name": "c", "upstream": first}, {"listen": ":1"}])
    assert missing.status_code == 400
    assert missing.json() == {
        "error": "missing required field: name at proxy 2",
        "status": 400,
        "proxies": None,
    }
    assert api.get("/proxies/c").status_code == 404  # nothing applied on error

    duplicate = api.post("/populate", json=[{"name": "d", "upstream": first}] * 2)
    assert duplicate.status_code == 500
    assert duplicate.json()["error"] == 'duplicate proxy name "d"'

    assert api.post("/populate", json={"name": "x"}).status_code == 400


def test_reset_endpoint(api: Api, echo_upstream: str) -> None:
    port = api.create_proxy("r", echo_upstream)
    api.add_toxic("r", "latency", attributes={"latency": 500})
    api.add_toxic("r", "slicer", stream="upstream", attributes={"average_size": 1})
    api.post("/proxies/r", json={"enabled": False})

    response = api.post("/reset")
    assert response.status_code == 204
    body = api.get("/proxies/r").json()
    assert (body["enabled"], body["toxics"]) == (True, [])
    assert echo_once(port) == b"ping"


# -- raw HTTP: toxics ----------------------------------------------------------------------


def test_toxic_defaults_and_shape(api: Api, echo_upstream: str) -> None:
    api.create_proxy("p", echo_upstream)
    response = api.post("/proxies/p/toxics", json={"type": "latency"})
    assert response.status_code == 200  # Toxiproxy answers 200, not 201
    body = response.json()
    assert list(body) == ["attributes", "name", "type", "stream", "toxicity"]
    assert body == {
        "attributes": {"latency": 0, "jitter": 0},
        "name": "latency_downstream",
        "type": "latency",
        "stream": "downstream",
        "toxicity": 1,
    }
    up = api.add_toxic("p", "limit_data", stream="upstream", toxicity=0.25)
    assert (up["name"], up["stream"], up["toxicity"]) == ("limit_data_upstream", "upstream", 0.25)
    assert up["attributes"] == {"bytes": 0}

    # Listed upstream first, then downstream, each in creation order.
    names = [t["name"] for t in api.get("/proxies/p/toxics").json()]
    assert names == ["limit_data_upstream", "latency_downstream"]
    assert [t["name"] for t in api.get("/proxies/p").json()["toxics"]] == names


@pytest.mark.parametrize(
    ("body", "status", "error"),
    [
        ({"type": "latency"}, 409, "toxic already exists"),
        # Names are unique across both directions of a proxy.
        (
            {"type": "slicer", "name": "latency_downstream", "stream": "upstream"},
            409,
            "toxic already exists",
        ),
        ({"type": "nope"}, 400, "invalid toxic type"),
        (
            {"type": "latency", "name": "s", "stream": "sideways"},
            400,
            "stream was invalid, can be either upstream or downstream",
        ),
        (
            {"type": "latency", "name": "a", "attributes": {"latency": "1s"}},
            400,
            "bad request body: json: cannot unmarshal string into Go struct field",
        ),
        (
            {"type": "latency", "name": "f", "attributes": {"latency": 1.5}},
            400,
            "bad request body: json: cannot unmarshal number 1.5",
        ),
        (
            {"type": "latency", "name": "n", "attributes": {"latency": -1}},
            400,
            "bad request body: ",
        ),
        (
            {"type": "slicer", "name": "z", "attributes": {"average_size": 0}},
            400,
            "bad request body: ",
        ),
        ({"type": "latency", "name": "t", "toxicity": "high"}, 400, "bad request body: "),
        (["latency"], 400, "bad request body: json: cannot unmarshal array"),
    ],
)
def test_toxic_create_errors(
    api: Api, echo_upstream: str, body: object, status: int, error: str
) -> None:
    api.create_proxy("p", echo_upstream)
    api.add_toxic("p", "latency")
    response = api.post("/proxies/p/toxics", json=body)
    assert response.status_code == status
    assert response.json()["status"] == status
    assert response.json()["error"].startswith(error)
    assert [t["name"] for t in api.get("/proxies/p/toxics").json()] == ["latency_downstream"]


def test_toxic_show_update_delete(api: Api, echo_upstream: str) -> None:
    api.create_proxy("p", echo_upstream)
    created = api.add_toxic("p", "latency", name="lag", attributes={"latency": 100, "jitter": 5})
    assert api.get("/proxies/p/toxics/lag").json() == created

    # PATCH merges attributes; toxicity is kept unless given.
    patched = api.patch("/proxies/p/toxics/lag", json={"attributes": {"latency": 7}})
    assert patched.status_code == 200
    assert patched.json()["attributes"] == {"latency": 7, "jitter": 5}
    assert patched.json()["toxicity"] == 1
    # POST is routed too; name/type/stream in the body are ignored.
    posted = api.post("/proxies/p/toxics/lag", json={"toxicity": 0.5, "type": "slicer"})
    assert (posted.json()["toxicity"], posted.json()["type"]) == (0.5, "latency")
    assert api.get("/proxies/p/toxics/lag").json()["toxicity"] == 0.5

    bad = api.patch("/proxies/p/toxics/lag", json={"attributes": {"jitter": -3}})
    assert bad.status_code == 400
    assert api.get("/proxies/p/toxics/lag").json()["attributes"] == {"latency": 7, "jitter": 5}

    assert api.patch("/proxies/p/toxics/ghost", json={}).json() == {
        "error": "toxic not found",
        "status": 404,
    }
    assert api.delete("/proxies/p/toxics/lag").status_code == 204
    assert api.get("/proxies/p/toxics/lag").status_code == 404
    assert api.delete("/proxies/p/toxics/lag").status_code == 404


def test_keep_alive_and_connection_close(api: Api, faultproxy: FaultProxyServer) -> None:
    # Several requests over one pooled connection, then an explicit close.
    for _ in range(5):
        assert api.get("/proxies").status_code == 200
    response = requests.get(
        faultproxy.api_url + "/version", headers={"Connection": "close"}, timeout=5
    )
    assert response.headers["Connection"] == "close"
    # A raw HTTP/1.0 request without keep-alive is answered and closed.
    with socket.create_connection((faultproxy.api_host, faultproxy.api_port), timeout=5) as sock:
        sock.sendall(b"GET /version HTTP/1.0\r\n\r\n")
        data = b""
        while chunk := sock.recv(4096):
            data += chunk
    assert data.startswith(b"HTTP/1.1 200 OK\r\n")
    assert data.endswith(b'{"version": "2.12.0"}\n')


def test_chunked_body_and_expect_continue(faultproxy: FaultProxyServer) -> None:
    # curl sends "Expect: 100-continue" for larger bodies; some clients send chunked bodies.
    body = b'{"name": "chunky", "upstream": "127.0.0.1:1", "enabled": false}'
    head = (
        b"POST /proxies HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n"
        b"Expect: 100-continue\r\nConnection: close\r\n\r\n"
    )
    chunked = b"%x\r\n%s\r\n0\r\n\r\n" % (len(body), body)
    with socket.create_connection((faultproxy.api_host, faultproxy.api_port), timeout=5) as sock:
        sock.sendall(head)
        assert sock.recv(4096) == b"HTTP/1.1 100 Continue\r\n\r\n"
        sock.sendall(chunked)
        data = b""
        while chunk := sock.recv(4096):
            data += chunk
    assert data.startswith(b"HTTP/1.1 201 Created\r\n")
    assert data.split(b"\r\n\r\n", 1)[1].startswith(b'{"name":"chunky"')


def test_malformed_http_gets_400(faultproxy: FaultProxyServer) -> None:
    with socket.create_connection((faultproxy.api_host, faultproxy.api_port), timeout=5) as sock:
        sock.sendall(b"this is not http\r\n\r\n")
        data = sock.recv(4096)
    assert data.startswith(b"HTTP/1.1 400 Bad Request\r\n")


# -- other entry points ----------------------------------------------------------------------


def test_async_server_in_process(echo_upstream: str) -> None:
    async def main() -> None:
        async with FaultProxyServer("127.0.0.1", port=0) as server:
            assert server.api_port != 0
            response = await anyio.to_thread.run_sync(
                lambda: requests.post(
                    server.api_url + "/proxies",
                    json={"name": "a", "listen": "127.0.0.1:0", "upstream": echo_upstream},
                    timeout=5,
                )
            )
            assert response.status_code == 201
            port = port_of(response.json()["listen"])
            reply = await anyio.to_thread.run_sync(echo_once, port)
            assert reply == b"ping"
            assert [p.name for p in server.proxies.all()] == ["a"]
        # Leaving the block stopped the proxy and the API.
        assert connect_refused(port)
        assert connect_refused(server.api_port)

    anyio.run(main)


def test_async_server_reports_config_errors_plainly(tmp_path: Path) -> None:
    config = tmp_path / "dup.json"
    config.write_text('[{"name": "a", "upstream": "x:1"}, {"name": "a", "upstream": "x:1"}]')

    async def main() -> None:
        with pytest.raises(ServerError, match='duplicate proxy name "a"'):
            async with FaultProxyServer("127.0.0.1", port=0, config_path=config):
                pass

    anyio.run(main)


def test_cli_subprocess_with_config(tmp_path: Path, echo_upstream: str) -> None:
    config = tmp_path / "proxies.json"
    config.write_text(
        json.dumps([{"name": "cfg", "listen": "127.0.0.1:0", "upstream": echo_upstream}])
    )
    process = FaultProxyProcess(config_path=config)
    with process:
        assert process.pid is not None
        assert READY_PATTERN.match(f"faultproxy listening on 127.0.0.1:{process.api_port}")
        proxies = requests.get(process.api_url + "/proxies", timeout=5).json()
        assert list(proxies) == ["cfg"]
        assert echo_once(port_of(proxies["cfg"]["listen"])) == b"ping"
    # Stopped with SIGTERM: a clean exit, and the ports are free again.
    assert process.returncode == 0
    assert connect_refused(process.api_port)
    assert connect_refused(port_of(proxies["cfg"]["listen"]))


def test_cli_rejects_a_broken_config(tmp_path: Path) -> None:
    config = tmp_path / "broken.json"
    config.write_text('[{"listen": "127.0.0.1:0"}]')  # no name: Go would log and carry on
    log = tmp_path / "stderr.log"
    with log.open("wb") as stderr:
        process = FaultProxyProcess(config_path=config, stderr=stderr.fileno())
        with pytest.raises(ProcessStartError, match=r"exited before it was ready \(code 1\)"):
            process.start()
    assert process.pid is None  # already reaped by start()
    assert log.read_text().strip() == "faultproxy: error: missing required field: name at proxy 1"


def test_cli_exits_cleanly_on_sigint() -> None:
    with FaultProxyProcess() as process:
        process.send_signal(signal.SIGINT)
        assert process.wait(timeout_s=10) == 0
    assert process.returncode == 0
