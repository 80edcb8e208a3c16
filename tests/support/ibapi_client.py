"""IBKR's own Python client (ibapi, from the ``ibapi-latest`` distribution) against the simulator.

It shares no code with ib_async or ib_insync: its own handshake, encoder, decoder and version
checks. Every callback the decoder makes is recorded (name, args) so tests can wait for one.
"""

from __future__ import annotations

import contextlib
import queue
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

from ibapi.client import EClient


class Recorder:
    """Stands in for EWrapper: records every callback instead of implementing each."""

    def __init__(self) -> None:
        self.events: queue.Queue[tuple[str, tuple[Any, ...]]] = queue.Queue()
        self.seen: list[tuple[str, tuple[Any, ...]]] = []

    def __getattr__(self, name: str) -> Callable[..., None]:
        if name.startswith("_"):
            raise AttributeError(name)

        def record(*args: Any) -> None:
            self.events.put((name, args))

        return record

    def wait(self, name: str, pred: Callable[[tuple[Any, ...]], bool] = lambda a: True, timeout: float = 5
             ) -> tuple[Any, ...]:
        """The first recorded (or later) ``name`` callback whose args satisfy ``pred``."""
        for n, args in self.seen:
            if n == name and pred(args):
                return args
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                n, args = self.events.get(timeout=max(0.01, deadline - time.monotonic()))
            except queue.Empty:
                break
            self.seen.append((n, args))
            if n == name and pred(args):
                return args
        names = sorted({n for n, _ in self.seen})
        raise TimeoutError(f"no {name} within {timeout}s; got {names}")

    def errors(self) -> list[tuple[int, int, str]]:
        """(reqId, code, text) of every error seen so far (ibapi 10.5x: reqId, time, code, text, json)."""
        with contextlib.suppress(TimeoutError):
            self.wait("__none__", timeout=0.05)
        return [(a[0], a[2], a[3]) for n, a in self.seen if n == "error"]


@contextlib.contextmanager
def ibapi_client(port: int, client_id: int) -> Iterator[tuple[EClient, Recorder]]:
    rec = Recorder()
    client = EClient(rec)  # type: ignore[arg-type]
    client.connect("127.0.0.1", port, client_id)
    thread = threading.Thread(target=client.run, daemon=True)
    thread.start()
    try:
        rec.wait("nextValidId")
        yield client, rec
    finally:
        client.disconnect()
        thread.join(5)
