"""Loopback ports for the processes a local stack starts."""

from __future__ import annotations

import socket


def free_port() -> int:
    """A loopback port nobody listens on right now (the kernel picks it; bound and released, so a
    tiny race remains: starters retry on "address already in use")."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])
