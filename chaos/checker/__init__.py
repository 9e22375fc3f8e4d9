"""A Jepsen-style checker for TuiTalk chaos runs.

``python -m chaos.checker <run dir>`` loads the histories, final reads and nemesis log a
run wrote (:mod:`chaos.checker.model`), runs the checks (:mod:`~chaos.checker.durability`,
:mod:`~chaos.checker.delivery`, :mod:`~chaos.checker.consistency`), adds latency and
availability figures (:mod:`~chaos.checker.timing`), writes ``results.json`` into the run
directory, prints a one-screen summary and exits 0 (valid), 1 (invalid) or 2 (unknown).
"""

from chaos.checker.verdict import CheckResult, check, check_run, summary

__all__ = ["CheckResult", "check", "check_run", "summary"]
