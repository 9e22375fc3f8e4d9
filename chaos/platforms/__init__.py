"""Nemesis platforms: where the nodes run and how to break them."""
