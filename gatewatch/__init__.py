"""gatewatch package."""
