"""Command line: ``python -m chaos.faultproxy [--host H] [--port P] [--config FILE]``.

Prints exactly one line to stdout, ``faultproxy listening on HOST:PORT``, once the
API accepts connections (``--port 0`` picks a free port; read it from that line).
Logs go to stderr.  SIGTERM or SIGINT stops the server cleanly (every proxy and
connection closed) and exits with status 0.
"""

from __future__ import annotations

import argparse
import logging
import signal
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import anyio

from chaos.faultproxy.errors import FaultProxyError
from chaos.faultproxy.server import FaultProxyServer
from chaos.faultproxy.sockets import join_host_port


@dataclass(frozen=True)
class CliConfig:
    """Everything the command line configures."""

    host: str
    port: int
    config_path: Path | None
    seed: int | None
    log_level: str


def parse_args(argv: Sequence[str] | None = None) -> CliConfig:
    parser = argparse.ArgumentParser(
        prog="python -m chaos.faultproxy",
        description="Toxiproxy-compatible TCP fault proxy (HTTP API of Toxiproxy 2.x).",
    )
    parser.add_argument("--host", default="localhost", help="API host (default: localhost)")
    parser.add_argument("--port", type=int, default=8474, help="API port, 0 = any free port")
    parser.add_argument("--config", type=Path, help="JSON file with an array of proxies to create")
    parser.add_argument("--seed", type=int, help="seed for toxicity, jitter and slicer randomness")
    parser.add_argument(
        "--log-level",
        default="info",
        choices=["debug", "info", "warning", "error"],
        help="stderr log level (default: info)",
    )
    args = parser.parse_args(argv)
    return CliConfig(args.host, args.port, args.config, args.seed, args.log_level)


async def serve(config: CliConfig) -> None:
    """Run the server until SIGTERM or SIGINT."""
    with anyio.open_signal_receiver(signal.SIGTERM, signal.SIGINT) as signals:
        async with FaultProxyServer(
            config.host, config.port, config_path=config.config_path, seed=config.seed
        ) as server:
            print(
                f"faultproxy listening on {join_host_port(server.api_host, server.api_port)}",
                flush=True,
            )
            async for signum in signals:
                logging.getLogger(__name__).info("stopping signal=%s", signal.Signals(signum).name)
                break


def main(argv: Sequence[str] | None = None) -> int:
    config = parse_args(argv)
    logging.basicConfig(
        level=config.log_level.upper(),
        stream=sys.stderr,
        format="%(asctime)s %(levelname)s %(name)s %(message)s",
    )
    try:
        anyio.run(serve, config)
    except (FaultProxyError, OSError) as exc:
        # Startup failures (API port taken, bad config) are one line, not a traceback.
        print(f"faultproxy: error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
