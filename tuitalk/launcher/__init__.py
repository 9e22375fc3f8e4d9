"""The local cluster: Redis Cluster, PostgreSQL, backends and nginx as local processes.

``tuitalk up`` runs it for people; the integration tests and the chaos suite drive it
through :class:`tuitalk.launcher.cluster.LocalCluster` (start, stop, kill, freeze, thaw,
restart any node).
"""
