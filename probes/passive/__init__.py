"""Passive probes: they watch the Gateway through one read-only connection and never trade."""
