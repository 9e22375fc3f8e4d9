"""Placeholder entry point; the Textual app is built in this package."""

from __future__ import annotations


def main() -> None:
    raise SystemExit("tuitalk-cli is not built yet")
