"""The backend's configuration: one typed object built in ``main()`` from flags and env."""

from __future__ import annotations

import argparse
import os
from dataclasses import dataclass, field
from typing import Final

from tuitalk.bus.topology import NodeAddr

__all__ = ["ServerConfig"]

ENV_PREFIX: Final = "TUITALK_"


@dataclass(frozen=True)
class ServerConfig:
    name: str = "backend-1"
    host: str = "127.0.0.1"
    port: int = 9001
    redis_seeds: tuple[NodeAddr, ...] = ()
    #: ``real=proxy`` pairs: connect to ``proxy`` whenever the cluster names ``real``.
    redis_map: tuple[tuple[NodeAddr, NodeAddr], ...] = ()
    #: PostgreSQL DSN; empty runs without an archive (history only from the streams).
    pg_dsn: str = ""
    #: WebSocket ping interval and timeout. The client core pings too; this catches
    #: clients that vanished without a FIN. nginx's proxy_read_timeout must exceed it.
    heartbeat_s: float = 5.0
    heartbeat_timeout_s: float = 5.0
    #: Per-connection outbound buffer. 4,096 frames absorb a 50 msg/s burst for over a
    #: minute; past it the client is a slow consumer and is closed (code 4008).
    ring_max_frames: int = 4096
    ring_max_bytes: int = 8 * 1024 * 1024
    #: Frames a connection may send per second on average, and in a burst.
    rate_per_s: float = 50.0
    rate_burst: float = 100.0
    #: Protocol errors tolerated per window before closing with 1008.
    abuse_max_errors: int = 20
    abuse_window_s: float = 10.0
    #: Concurrent connections per client address (X-Real-IP behind nginx).
    max_conns_per_ip: int = 512
    trusted_proxies: tuple[str, ...] = ("127.0.0.1", "::1")
    #: Browser origins allowed to connect; connections without Origin (terminals) always
    #: may. Empty allows any origin.
    allowed_origins: tuple[str, ...] = ()
    #: Transport frame cap; frames between MAX_FRAME_BYTES and this get error too_large,
    #: beyond it websockets closes with 1009.
    max_ws_frame_bytes: int = 1024 * 1024
    position_check_s: float = 2.0
    probe_interval_s: float = 1.0
    probe_timeout_s: float = 1.0
    archive_interval_s: float = 0.25
    stream_soft_max: int = 10_000
    publish_timeout_s: float = 8.0
    shutdown_grace_s: float = 2.0
    extra: dict[str, str] = field(default_factory=dict)

    @classmethod
    def from_args(cls, argv: list[str] | None = None) -> ServerConfig:
        """Build from ``TUITALK_*`` environment variables, overridden by flags."""
        env = os.environ
        ap = argparse.ArgumentParser(prog="tuitalk serve", description="Run one backend.")
        ap.add_argument("--name", default=env.get(ENV_PREFIX + "NAME", cls.name))
        ap.add_argument("--host", default=env.get(ENV_PREFIX + "HOST", cls.host))
        ap.add_argument("--port", type=int, default=int(env.get(ENV_PREFIX + "PORT", cls.port)))
        ap.add_argument("--redis", default=env.get(ENV_PREFIX + "REDIS", "127.0.0.1:7000"),
                        help="comma-separated seed nodes host:port")
        ap.add_argument("--redis-map", default=env.get(ENV_PREFIX + "REDIS_MAP", ""),
                        help="comma-separated host:port=host:port address remaps")
        ap.add_argument("--pg", default=env.get(ENV_PREFIX + "PG", ""), help="PostgreSQL DSN")
        ap.add_argument("--origins", default=env.get(ENV_PREFIX + "ORIGINS", ""),
                        help="comma-separated allowed browser origins (empty: any)")
        ap.add_argument("--heartbeat", type=float,
                        default=float(env.get(ENV_PREFIX + "HEARTBEAT_S", cls.heartbeat_s)))
        ap.add_argument("--rate", type=float,
                        default=float(env.get(ENV_PREFIX + "RATE_PER_S", cls.rate_per_s)))
        ap.add_argument("--burst", type=float,
                        default=float(env.get(ENV_PREFIX + "RATE_BURST", cls.rate_burst)))
        ap.add_argument("--max-conns-per-ip", type=int,
                        default=int(env.get(ENV_PREFIX + "MAX_CONNS_PER_IP", cls.max_conns_per_ip)))
        ap.add_argument("--ring-frames", type=int,
                        default=int(env.get(ENV_PREFIX + "RING_FRAMES", cls.ring_max_frames)))
        ap.add_argument("--stream-max", type=int,
                        default=int(env.get(ENV_PREFIX + "STREAM_MAX", cls.stream_soft_max)))
        a = ap.parse_args(argv)
        seeds = tuple(NodeAddr.parse(s) for s in a.redis.split(",") if s.strip())
        remap = tuple(
            (NodeAddr.parse(pair.split("=", 1)[0]), NodeAddr.parse(pair.split("=", 1)[1]))
            for pair in a.redis_map.split(",") if "=" in pair
        )
        origins = tuple(o.strip() for o in a.origins.split(",") if o.strip())
        return cls(
            name=a.name, host=a.host, port=a.port, redis_seeds=seeds, redis_map=remap,
            pg_dsn=a.pg,
            allowed_origins=origins, heartbeat_s=a.heartbeat, heartbeat_timeout_s=a.heartbeat,
            rate_per_s=a.rate, rate_burst=a.burst, max_conns_per_ip=a.max_conns_per_ip,
            ring_max_frames=a.ring_frames, stream_soft_max=a.stream_max,
        )
