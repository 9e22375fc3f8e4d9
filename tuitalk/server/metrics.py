"""Prometheus metrics of one backend, in its own registry."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

__all__ = ["Metrics"]


class Metrics:
    def __init__(self, backend: str) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.connections = Gauge("tuitalk_connections", "Open client connections", registry=r)
        self.messages_in = Counter(
            "tuitalk_messages_in_total", "Messages sequenced for clients of this backend",
            registry=r,
        )
        self.messages_out = Counter(
            "tuitalk_messages_out_total", "Message frames queued to clients", registry=r
        )
        self.fanout_latency = Histogram(
            "tuitalk_fanout_latency_seconds",
            "From sequencing in Redis to queueing on a local connection",
            buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
            registry=r,
        )
        self.overflows = Counter(
            "tuitalk_ring_overflows_total", "Connections closed as slow consumers", registry=r
        )
        self.gap_fills = Counter(
            "tuitalk_gap_fills_total", "Room feed gap fills from the stream or archive",
            registry=r,
        )
        self.catch_ups = Counter(
            "tuitalk_catch_ups_total", "Per-connection replays (resume or gap)", registry=r
        )
        self.resets = Counter(
            "tuitalk_resets_total", "Room resets sent (cursor could not be continued)",
            registry=r,
        )
        self.rehomes = Counter(
            "tuitalk_subscriber_rehomes_total",
            "Shard subscriptions lost and re-established (failover, probe timeout)", registry=r,
        )
        self.bus_retries = Counter(
            "tuitalk_bus_retries_total", "Redis operations retried after an error",
            ["error"], registry=r,
        )
        self.degraded_commits = Counter(
            "tuitalk_degraded_commits_total", "Writes committed with no replica to confirm",
            registry=r,
        )
        self.protocol_errors = Counter(
            "tuitalk_protocol_errors_total", "Error frames sent", ["code"], registry=r
        )
        self.archive_lag = Gauge(
            "tuitalk_archive_lag_messages", "Committed messages not yet in PostgreSQL",
            registry=r,
        )
        self.archived = Counter(
            "tuitalk_archived_total", "Messages this backend wrote to PostgreSQL", registry=r
        )
        self.feeds = Gauge("tuitalk_room_feeds", "Rooms this backend is subscribed to",
                           registry=r)
        self.info = Gauge("tuitalk_backend_info", "Backend identity", ["backend"], registry=r)
        self.info.labels(backend=backend).set(1)

    def render(self) -> bytes:
        return generate_latest(self.registry)
