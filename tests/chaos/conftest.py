"""Fixtures for the fault proxy conformance suite.

Everything listens on 127.0.0.1 with ports chosen by the kernel (port 0), and
every server, socket and thread a fixture starts is closed in its teardown, also
when the test fails.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from toxiproxy.api import APIConsumer
from toxiproxy.server import Toxiproxy

from chaos.faultproxy import FaultProxyServer, run_in_thread
from tests.chaos.faultproxy_harness import Api, TcpServers, echo


@pytest.fixture
def tcp_servers() -> Iterator[TcpServers]:
    servers = TcpServers()
    try:
        yield servers
    finally:
        servers.close()


@pytest.fixture
def echo_upstream(tcp_servers: TcpServers) -> str:
    """Address of a TCP echo server."""
    return tcp_servers.start(echo)


@pytest.fixture
def faultproxy() -> Iterator[FaultProxyServer]:
    """A fault proxy server running in a background thread, with a fixed seed."""
    with run_in_thread("127.0.0.1", 0, seed=1234) as server:
        yield server


@pytest.fixture
def api(faultproxy: FaultProxyServer) -> Iterator[Api]:
    client = Api(faultproxy.api_url)
    try:
        yield client
    finally:
        client.session.close()


@pytest.fixture
def toxiproxy(faultproxy: FaultProxyServer) -> Iterator[Toxiproxy]:
    """toxiproxy-python pointed at the fault proxy (its host/port are process-global)."""
    saved = (APIConsumer.host, APIConsumer.port)
    client = Toxiproxy()
    client.update_api_consumer(faultproxy.api_host, faultproxy.api_port)
    try:
        yield client
    finally:
        APIConsumer.host, APIConsumer.port = saved
