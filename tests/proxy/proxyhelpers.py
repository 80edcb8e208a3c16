"""Helpers for the proxy tests: a byte-recording TCP tap and raw TWS framing.

The tap is deliberately independent of the proxy's code (plain sockets and threads): the byte
comparisons must not trust the code they check.
"""

from __future__ import annotations

import contextlib
import json
import socket
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator

from prometheus_client.parser import text_string_to_metric_families
from support.sim import _read_exact as read_exact
from support.sim import frame

__all__ = ["Tap", "assert_order_session", "frame", "post_fault", "read_exact", "scrape", "tap", "value",
           "wait_until"]


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


Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def scrape(port: int) -> Samples:
    """The proxy's /metrics as (name, sorted labels) -> value."""
    text = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5).read().decode()
    out = {}
    for fam in text_string_to_metric_families(text):
        for s in fam.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


def value(samples: Samples, name: str, **labels: str) -> float:
    """Sum of the samples of ``name`` whose labels include ``labels``."""
    return sum(v for (n, lab), v in samples.items() if n == name and set(labels.items()) <= set(lab))


def post_fault(port: int, body: object, method: str = "POST") -> tuple[int, dict]:  # type: ignore[type-arg]
    """A request to the proxy's fault control API: (status, JSON answer)."""
    req = urllib.request.Request(
        f"http://127.0.0.1:{port}/faults", data=json.dumps(body).encode(), method=method
    )
    try:
        with urllib.request.urlopen(req, timeout=5) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def assert_order_session(m: Samples, who: dict[str, str]) -> None:
    """What the proxy measures of the bot session test_observe.py and test_observe_protobuf.py play
    (a market order filled; a limit order modified once, then cancelled; SPY ticking), whichever
    protocol the bot speaks: one measurement, two decoders."""
    assert value(m, "gatewatch_bot_requests_unanswered") == 0
    assert value(m, "gatewatch_bot_orders_placed_total", **who) == 2
    assert value(m, "gatewatch_bot_orders_acknowledged_total") == 2
    assert value(m, "gatewatch_bot_orders_filled_total") == 1
    assert value(m, "gatewatch_bot_orders_cancelled_total") == 1
    assert value(m, "gatewatch_bot_order_modifications_total") == 1
    assert value(m, "gatewatch_bot_orders_working") == 0
    assert value(m, "gatewatch_bot_order_ack_seconds_count") == 2
    assert value(m, "gatewatch_bot_order_first_fill_seconds_count") == 1
    assert value(m, "gatewatch_bot_ticks_total", symbol="SPY", **who) > 0
    assert 0 <= value(m, "gatewatch_bot_tick_age_seconds", symbol="SPY") < 2
