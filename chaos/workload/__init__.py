"""The chaos workload: synthetic chat users that record Jepsen-style histories.

* :mod:`~chaos.workload.history`: the history schema (JSON lines) and final-read schema
* :mod:`~chaos.workload.driver`: a blocking WebSocket driver of the client core
* :mod:`~chaos.workload.recorder`: client-core events -> history records and latencies
* :mod:`~chaos.workload.actor`: one synthetic user (join, send, churn, clean end)
* :mod:`~chaos.workload.locust_user`: the Locust user around an actor (shared with
  ``loadtests/``); :mod:`~chaos.workload.locustfile`: the chaos workload's Locust users
* :mod:`~chaos.workload.run`: run Locust headless as a bounded subprocess
* :mod:`~chaos.workload.final`: read every room's final history (API and PostgreSQL)

Nothing here imports Locust or gevent except ``locust_user`` and the locustfile, which only
Locust's own process loads.
"""
