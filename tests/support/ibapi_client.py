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
        # close the socket first and let the message loop drain: ibapi's disconnect() clears the
        # server version while its loop may still be decoding a queued message
        if client.conn is not None:
            client.conn.disconnect()
        thread.join(5)
        client.disconnect()


def ask_reference_and_streams(port: int, client_id: int, version: int) -> None:
    """The once-silent requests (issue 13) through ibapi, at the version the server negotiates."""
    from ibapi.contract import Contract

    spy = Contract()
    spy.symbol, spy.secType, spy.exchange, spy.currency = "SPY", "STK", "SMART", "USD"
    with ibapi_client(port, client_id) as (c, rec):
        assert c.serverVersion() == version
        c.reqRealTimeBars(1, spy, 5, "MIDPOINT", False, [])
        c.reqManagedAccts()
        assert rec.wait("managedAccounts") == ("DU1234567",)
        c.reqPnL(2, "DU1234567", "")
        assert rec.wait("pnl")[0] == 2
        c.reqPnLSingle(3, "DU1234567", "", 756733)
        assert rec.wait("pnlSingle")[0] == 3
        c.reqHeadTimeStamp(4, spy, "TRADES", 1, 1)
        assert rec.wait("headTimestamp") == (4, "19930129 14:30:00")
        c.reqMatchingSymbols(5, "QQ")
        assert rec.wait("symbolSamples")[1][0].contract.symbol == "QQQ"
        c.reqMarketRule(26)
        assert rec.wait("marketRule")[0] == 26
        c.reqHistoricalTicks(6, spy, "", "20261130 15:00:00 US/Eastern", 10, "BID_ASK", 1, True, [])
        assert len(rec.wait("historicalTicksBidAsk")[1]) == 10
        c.reqNewsProviders()
        assert rec.wait("newsProviders")[0]
        c.reqScannerParameters()
        assert "ScanParameterResponse" in rec.wait("scannerParameters")[0]
        c.reqUserInfo(7)
        assert rec.wait("userInfo") == (7, "")
        c.reqTickByTickData(8, spy, "MidPoint", 0, False)
        assert rec.wait("tickByTickMidPoint")[0] == 8
        c.reqHistoricalData(9, spy, "", "1800 S", "1 min", "TRADES", 0, 1, True, [])
        assert rec.wait("historicalDataUpdate", timeout=5)[0] == 9
        assert rec.wait("realtimeBar", timeout=7)[0] == 1
