"""Chaos and failover testing tools for TuiTalk."""
