"""The Redis Cluster bus: room sequencing, streams, sharded pub/sub and failover handling."""
