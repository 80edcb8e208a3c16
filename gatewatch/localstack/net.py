"""Loopback ports and HTTP readiness for the processes a local stack starts."""

from __future__ import annotations

import random
import socket
import urllib.error
import urllib.request
from pathlib import Path

EPHEMERAL_RANGE_FILE = Path("/proc/sys/net/ipv4/ip_local_port_range")
LOWEST_PICKED_PORT = 10_000  # above the well-known and most registered service ports
_CHOOSER = random.SystemRandom()  # not the seeded global generator: parallel test workers share its seed


def free_port() -> int:
    """A loopback port nobody holds right now, chosen below the kernel's ephemeral range.

    Why below it: a port the kernel hands out for ``bind(0)`` comes from the same range as the
    local ports of outgoing connections, so between choosing it and the child binding it, any
    connection the stack makes (the exporter dialling the simulator) may take it, and the child
    fails with "address already in use". A port below the ephemeral range is never taken that way;
    the random choice keeps parallel starters apart. Where the range is unknown, the kernel picks.
    """
    low = _ephemeral_low()
    if low is None or low <= LOWEST_PICKED_PORT + 1000:
        return _kernel_port()
    for _ in range(200):
        port = _CHOOSER.randrange(LOWEST_PICKED_PORT, low)
        if not port_in_use("127.0.0.1", port):
            return port
    return _kernel_port()


def free_ports(count: int) -> list[int]:
    """``count`` distinct ports from :func:`free_port`, for a stack whose children bind later.

    Each choice is free when made, but none is bound until its child starts, so two independent
    choices could be the same port (of nine, about once in 600 stacks) and the second child to bind
    it would fail with "address already in use".
    """
    ports: list[int] = []
    while len(ports) < count:
        port = free_port()
        if port not in ports:
            ports.append(port)
    return ports


def _ephemeral_low() -> int | None:
    """The first port of the kernel's ephemeral range, or None where it cannot be read."""
    try:
        return int(EPHEMERAL_RANGE_FILE.read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None


def _kernel_port() -> int:
    """A port the kernel picks (bound and released: a small race remains)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def port_in_use(host: str, port: int) -> bool:
    """True when ``host:port`` cannot be bound right now (someone listens there or holds it)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as servers bind: TIME_WAIT is no obstacle
        try:
            sock.bind((host, port))
        except OSError:
            return True
    return False


def loopback(host: str) -> str:
    """A wildcard listen address is reached through loopback."""
    return "127.0.0.1" if host in {"", "0.0.0.0", "::"} else host


def http_get(url: str, timeout: float = 2.0) -> tuple[int, bytes]:
    """GET a URL; (status, body). Connection problems raise OSError (URLError is one)."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            return int(response.status), response.read()
    except urllib.error.HTTPError as exc:
        return int(exc.code), exc.read()


def url_answers(url: str, timeout: float = 1.0) -> bool:
    """True when ``url`` answers with a 2xx status."""
    try:
        status, _ = http_get(url, timeout=timeout)
    except (OSError, ValueError):
        return False
    return 200 <= status < 300
