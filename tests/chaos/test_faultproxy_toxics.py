"""Byte-level behaviour of each toxic against real TCP servers, through the fault proxy.

Timing assertions: lower bounds are strict (a toxic must never be faster than it
promises); upper bounds are loose because the suite shares a noisy 2-core machine.
"""

from __future__ import annotations

import hashlib
import itertools
import random
import socket
import threading
import time
from collections.abc import Callable, Iterator

import pytest

from chaos.faultproxy import run_in_thread
from chaos.faultproxy.toxics import SlicerToxic
from tests.chaos.faultproxy_harness import Api, TcpServers

# Slack for clock granularity only; it is not a tolerance for slow toxics.
CLOCK_EPSILON_S = 0.002
# Loose ceiling added to expected durations (scheduling noise on a shared machine).
NOISE_S = 1.5

Connect = Callable[[int], socket.socket]


@pytest.fixture
def connect() -> Iterator[Connect]:
    """Open client sockets to 127.0.0.1:port; all are closed at teardown."""
    opened: list[socket.socket] = []

    def open_client(port: int) -> socket.socket:
        sock = socket.create_connection(("127.0.0.1", port), timeout=10)
        opened.append(sock)
        return sock

    try:
        yield open_client
    finally:
        for sock in opened:
            sock.close()


def recv_exactly(sock: socket.socket, count: int) -> bytes:
    data = b""
    while len(data) < count:
        chunk = sock.recv(count - len(data))
        if not chunk:
            raise AssertionError(f"connection closed after {len(data)} of {count} bytes")
        data += chunk
    return data


def read_until_closed(sock: socket.socket) -> tuple[bytes, int]:
    """Read until EOF or reset; return the data and how many recv calls returned data."""
    data, calls = b"", 0
    while True:
        try:
            chunk = sock.recv(65536)
        except ConnectionResetError:
            return data, calls
        if not chunk:
            return data, calls
        data += chunk
        calls += 1


def round_trip(sock: socket.socket, payload: bytes = b"ping") -> float:
    start = time.monotonic()
    sock.sendall(payload)
    assert recv_exactly(sock, len(payload)) == payload
    return time.monotonic() - start


def sender(payload: bytes) -> Callable[[socket.socket], None]:
    """A server handler that sends ``payload`` and closes."""

    def handler(conn: socket.socket) -> None:
        conn.sendall(payload)

    return handler


class Sink:
    """A server handler that records everything it receives until EOF."""

    def __init__(self) -> None:
        self.received = b""
        self.done = threading.Event()

    def __call__(self, conn: socket.socket) -> None:
        try:
            while data := conn.recv(65536):
                self.received += data
        finally:
            self.done.set()


# -- latency -------------------------------------------------------------------------------


@pytest.mark.parametrize("stream", ["downstream", "upstream"])
def test_latency_delays_each_chunk(
    api: Api, echo_upstream: str, connect: Connect, stream: str
) -> None:
    port = api.create_proxy("lat", echo_upstream)
    api.add_toxic("lat", "latency", stream=stream, attributes={"latency": 300})
    sock = connect(port)
    for _ in range(2):
        elapsed = round_trip(sock)
        assert 0.3 - CLOCK_EPSILON_S <= elapsed < 0.3 + NOISE_S


def test_latency_jitter_stays_within_bounds(api: Api, echo_upstream: str, connect: Connect) -> None:
    port = api.create_proxy("jit", echo_upstream)
    api.add_toxic("jit", "latency", attributes={"latency": 200, "jitter": 100})
    sock = connect(port)
    for _ in range(4):
        elapsed = round_trip(sock)
        assert 0.1 - CLOCK_EPSILON_S <= elapsed < 0.3 + NOISE_S


def test_toxic_changes_apply_to_open_connections(
    api: Api, echo_upstream: str, connect: Connect
) -> None:
    port = api.create_proxy("live", echo_upstream)
    sock = connect(port)
    assert round_trip(sock) < 0.5

    api.add_toxic("live", "latency", name="lag", attributes={"latency": 500})
    assert round_trip(sock) >= 0.5 - CLOCK_EPSILON_S

    api.patch("/proxies/live/toxics/lag", json={"attributes": {"latency": 0}})
    assert round_trip(sock) < 0.5

    api.patch("/proxies/live/toxics/lag", json={"attributes": {"latency": 500}})
    assert round_trip(sock) >= 0.5 - CLOCK_EPSILON_S

    assert api.delete("/proxies/live/toxics/lag").status_code == 204
    assert round_trip(sock) < 0.5


# -- bandwidth -----------------------------------------------------------------------------


@pytest.mark.parametrize("stream", ["downstream", "upstream"])
def test_bandwidth_caps_throughput(
    api: Api, echo_upstream: str, connect: Connect, stream: str
) -> None:
    port = api.create_proxy("bw", echo_upstream)
    api.add_toxic("bw", "bandwidth", stream=stream, attributes={"rate": 100})  # 100 KB/s
    payload = random.Random(1).randbytes(50_000)
    sock = connect(port)
    start = time.monotonic()
    sock.sendall(payload)
    assert recv_exactly(sock, len(payload)) == payload
    elapsed = time.monotonic() - start
    # 50 000 bytes at 100 000 bytes/s.
    assert 0.5 - CLOCK_EPSILON_S <= elapsed < 0.5 + NOISE_S


# -- timeout -------------------------------------------------------------------------------


def test_timeout_drops_data_and_closes_after_timeout(
    api: Api, echo_upstream: str, connect: Connect
) -> None:
    port = api.create_proxy("to", echo_upstream)
    api.add_toxic("to", "timeout", attributes={"timeout": 400})
    start = time.monotonic()
    sock = connect(port)
    sock.sendall(b"ping")
    data, _ = read_until_closed(sock)
    elapsed = time.monotonic() - start
    assert data == b""
    assert 0.4 - CLOCK_EPSILON_S <= elapsed < 0.4 + NOISE_S


def test_timeout_zero_holds_until_removed_then_closes(
    api: Api, echo_upstream: str, connect: Connect
) -> None:
    port = api.create_proxy("hole", echo_upstream)
    api.add_toxic("hole", "timeout", stream="upstream", attributes={"timeout": 0})
    sock = connect(port)
    sock.sendall(b"ping")
    sock.settimeout(0.4)
    with pytest.raises(TimeoutError):
        sock.recv(1)  # blackholed: no data and no close
    sock.settimeout(10)
    # Removing a timeout toxic closes the connections it was applied to (Go's Cleanup).
    assert api.delete("/proxies/hole/toxics/timeout_upstream").status_code == 204
    data, _ = read_until_closed(sock)
    assert data == b""
    assert round_trip(connect(port)) < NOISE_S  # new connections are healthy


# -- reset_peer ----------------------------------------------------------------------------


@pytest.mark.parametrize(("stream", "timeout_ms"), [("downstream", 0), ("upstream", 300)])
def test_reset_peer_resets_the_client(
    api: Api, echo_upstream: str, connect: Connect, stream: str, timeout_ms: int
) -> None:
    port = api.create_proxy("rst", echo_upstream)
    api.add_toxic("rst", "reset_peer", stream=stream, attributes={"timeout": timeout_ms})
    sock = connect(port)
    start = time.monotonic()
    sock.sendall(b"ping")
    with pytest.raises(ConnectionResetError):
        sock.recv(16)
    elapsed = time.monotonic() - start
    assert timeout_ms / 1000 - CLOCK_EPSILON_S <= elapsed < timeout_ms / 1000 + NOISE_S


def test_reset_peer_added_to_open_connection_resets(
    api: Api, echo_upstream: str, connect: Connect
) -> None:
    port = api.create_proxy("rst_live", echo_upstream)
    sock = connect(port)
    assert round_trip(sock) < NOISE_S
    api.add_toxic("rst_live", "reset_peer")
    sock.sendall(b"ping")
    with pytest.raises(ConnectionResetError):
        sock.recv(16)


# -- slicer --------------------------------------------------------------------------------


def test_slicer_delivers_same_bytes_in_many_chunks(
    api: Api, tcp_servers: TcpServers, connect: Connect
) -> None:
    payload = random.Random(2).randbytes(20_000)
    port = api.create_proxy("slice", tcp_servers.start(sender(payload)))
    attributes = {"average_size": 1000, "size_variation": 200, "delay": 2000}  # delay in µs
    api.add_toxic("slice", "slicer", attributes=attributes)
    start = time.monotonic()
    data, calls = read_until_closed(connect(port))
    elapsed = time.monotonic() - start
    assert data == payload
    # About 20 slices 2 ms apart; the client may coalesce some, never all of them.
    assert calls >= 5
    assert elapsed >= 16 * 0.002


def test_slicer_cut_covers_every_byte_in_bounded_slices() -> None:
    rng = random.Random(3)
    for size, average, variation in [(1, 1, 0), (10_000, 100, 20), (32_768, 7, 3), (999, 50, 0)]:
        slices = SlicerToxic.cut(size, average, variation, rng)
        assert slices[0][0] == 0
        assert slices[-1][1] == size
        assert all(a[1] == b[0] for a, b in itertools.pairwise(slices))
        assert all(0 < end - start <= average + variation for start, end in slices)


# -- limit_data ----------------------------------------------------------------------------


def test_limit_data_downstream_closes_after_n_bytes(
    api: Api, tcp_servers: TcpServers, connect: Connect
) -> None:
    payload = bytes(range(256)) * 4
    port = api.create_proxy("lim", tcp_servers.start(sender(payload)))
    api.add_toxic("lim", "limit_data", attributes={"bytes": 100})
    data, _ = read_until_closed(connect(port))
    assert data == payload[:100]


def test_limit_data_upstream_closes_after_n_bytes(
    api: Api, tcp_servers: TcpServers, connect: Connect
) -> None:
    sink = Sink()
    port = api.create_proxy("lim_up", tcp_servers.start(sink))
    api.add_toxic("lim_up", "limit_data", stream="upstream", attributes={"bytes": 10})
    sock = connect(port)
    sock.sendall(b"0123456789abcdef")
    assert sink.done.wait(10)
    assert sink.received == b"0123456789"
    assert read_until_closed(sock)[0] == b""


# -- slow_close ----------------------------------------------------------------------------


def test_slow_close_delays_the_close_not_the_data(
    api: Api, tcp_servers: TcpServers, connect: Connect
) -> None:
    port = api.create_proxy("slow", tcp_servers.start(sender(b"bye")))
    api.add_toxic("slow", "slow_close", attributes={"delay": 400})
    start = time.monotonic()
    sock = connect(port)
    assert recv_exactly(sock, 3) == b"bye"
    assert sock.recv(1) == b""
    elapsed = time.monotonic() - start
    assert 0.4 - CLOCK_EPSILON_S <= elapsed < 0.4 + NOISE_S


# -- enabled / toxicity / noop -------------------------------------------------------------


def test_disabled_proxy_drops_connections_and_refuses_new_ones(
    api: Api, echo_upstream: str, connect: Connect
) -> None:
    port = api.create_proxy("down", echo_upstream)
    sock = connect(port)
    assert round_trip(sock) < NOISE_S

    assert api.post("/proxies/down", json={"enabled": False}).status_code == 200
    assert read_until_closed(sock)[0] == b""
    with pytest.raises(ConnectionRefusedError):
        connect(port)

    assert api.post("/proxies/down", json={"enabled": True}).status_code == 200
    assert round_trip(connect(port)) < NOISE_S


def test_toxicity_zero_never_applies(api: Api, echo_upstream: str, connect: Connect) -> None:
    port = api.create_proxy("lucky", echo_upstream)
    api.add_toxic("lucky", "latency", toxicity=0.0, attributes={"latency": 2000})
    api.add_toxic("lucky", "timeout", stream="upstream", toxicity=0.0)
    for _ in range(5):
        assert round_trip(connect(port)) < 1.0


def test_toxicity_is_drawn_per_connection(api: Api, echo_upstream: str, connect: Connect) -> None:
    port = api.create_proxy("dice", echo_upstream)
    api.add_toxic("dice", "latency", toxicity=0.5, attributes={"latency": 300})
    slow = [round_trip(connect(port)) >= 0.3 - CLOCK_EPSILON_S for _ in range(12)]
    # Seeded server RNG; with p=0.5 over 12 connections both outcomes occur.
    assert any(slow)
    assert not all(slow)


def test_noop_toxic_passes_data(api: Api, echo_upstream: str, connect: Connect) -> None:
    port = api.create_proxy("noop", echo_upstream)
    api.add_toxic("noop", "noop")
    assert round_trip(connect(port), b"x" * 70_000) < NOISE_S


def test_unreachable_upstream_closes_the_client(api: Api, connect: Connect) -> None:
    with socket.create_server(("127.0.0.1", 0)) as probe:
        dead = f"127.0.0.1:{probe.getsockname()[1]}"
    port = api.create_proxy("dead", dead)
    sock = connect(port)
    assert read_until_closed(sock)[0] == b""


# -- rewiring under load -------------------------------------------------------------------


def test_live_chain_changes_lose_no_bytes(api: Api, echo_upstream: str, connect: Connect) -> None:
    port = api.create_proxy("busy", echo_upstream)
    api.add_toxic("busy", "latency", name="lag", attributes={"latency": 5})
    api.add_toxic("busy", "slicer", name="cut", attributes={"average_size": 700, "delay": 50})
    api.add_toxic("busy", "bandwidth", name="bw", attributes={"rate": 2000})
    api.add_toxic("busy", "slicer", name="cut_up", stream="upstream",
                  attributes={"average_size": 3000, "size_variation": 500})  # fmt: skip
    payload = random.Random(4).randbytes(400_000)
    sock = connect(port)
    received = bytearray()

    def read_all() -> None:
        while len(received) < len(payload):
            try:
                chunk = sock.recv(65536)
            except OSError:
                return  # the assertion below reports the shortfall
            if not chunk:
                return
            received.extend(chunk)

    reader = threading.Thread(target=read_all)
    reader.start()
    try:
        sock.sendall(payload[:100_000])
        # Reshape the chain while data is in flight in both directions.
        assert api.delete("/proxies/busy/toxics/cut").status_code == 204
        sock.sendall(payload[100_000:200_000])
        api.patch("/proxies/busy/toxics/lag", json={"attributes": {"latency": 1, "jitter": 1}})
        api.add_toxic("busy", "noop", name="extra")
        sock.sendall(payload[200_000:300_000])
        assert api.delete("/proxies/busy/toxics/bw").status_code == 204
        assert api.delete("/proxies/busy/toxics/cut_up").status_code == 204
        sock.sendall(payload[300_000:])
    finally:
        reader.join(20)
    assert hashlib.sha256(received).hexdigest() == hashlib.sha256(payload).hexdigest()


def test_server_shutdown_closes_listeners_and_connections(
    echo_upstream: str, connect: Connect
) -> None:
    with run_in_thread() as server:
        api = Api(server.api_url)
        try:
            port = api.create_proxy("bye", echo_upstream)
        finally:
            api.session.close()
        sock = connect(port)
        assert round_trip(sock) < NOISE_S
    assert read_until_closed(sock)[0] == b""
    with pytest.raises(ConnectionRefusedError):
        connect(port)
    with pytest.raises(ConnectionRefusedError):
        connect(server.api_port)
