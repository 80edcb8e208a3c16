"""Helpers for the proxy tests: a byte-recording TCP tap and raw TWS framing.

The tap is deliberately independent of the proxy's code (plain sockets and threads): the byte
comparisons must not trust the code they check.
"""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections.abc import Callable, Iterator

from support.sim import _read_exact as read_exact
from support.sim import frame

__all__ = ["Tap", "frame", "read_exact", "tap", "wait_until"]


class Tap:
    """Listens on a free port, forwards each connection to ``upstream`` and records both directions."""

    def __init__(self, upstream_port: int) -> None:
        self.upstream_port = upstream_port
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = int(self.listener.getsockname()[1])
        self.up: list[bytearray] = []  # client -> server, per connection
        self.down: list[bytearray] = []  # server -> client, per connection
        self.closed = 0
        self._lock = threading.Lock()
        self._socks: list[socket.socket] = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            server = socket.create_connection(("127.0.0.1", self.upstream_port))
            up, down = bytearray(), bytearray()
            with self._lock:
                self.up.append(up)
                self.down.append(down)
                self._socks += [client, server]
            threading.Thread(target=self._copy, args=(client, server, up), daemon=True).start()
            threading.Thread(target=self._copy, args=(server, client, down), daemon=True).start()

    def _copy(self, src: socket.socket, dst: socket.socket, record: bytearray) -> None:
        try:
            while data := src.recv(65536):
                record += data
                dst.sendall(data)
        except OSError:
            pass
        finally:
            with contextlib.suppress(OSError):
                dst.shutdown(socket.SHUT_WR)
            with self._lock:
                self.closed += 1

    def close(self) -> None:
        self.listener.close()
        for s in self._socks:
            with contextlib.suppress(OSError):
                s.close()


@contextlib.contextmanager
def tap(upstream_port: int) -> Iterator[Tap]:
    t = Tap(upstream_port)
    try:
        yield t
    finally:
        t.close()


def wait_until(check: Callable[[], bool], timeout: float = 5.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(0.02)
    return check()
