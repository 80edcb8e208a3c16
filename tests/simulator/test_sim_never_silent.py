"""Requests that used to go unanswered, from three client libraries (issue 13 "Silence").

ib_async and ib_insync share ancestry; IBKR's own ibapi shares no code with either. Each asks
for managed accounts, PnL, PnL of one position, head timestamp, symbol search, a market rule,
historical ticks, news providers, scanner parameters, user info, tick-by-tick data, 5-second
real-time bars and a keepUpToDate history, and gets data (or, where it asked for too much, the
Gateway's error).
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import pytest
from ib_async import IB, Stock
from support.ibapi_client import ask_reference_and_streams

from simulator.testing import SimHandle, running_simulator

END = "20261130 15:00:00 US/Eastern"


@pytest.fixture
def sim() -> Iterator[SimHandle]:
    """Capped at 178, so that IBKR's client speaks the text protocol here too (the same requests
    at 226, as protobuf: test_sim_protobuf.py)."""
    with running_simulator(port=0, control_port=0, seed=1, tick_hz=20, max_server_version=178) as handle:
        yield handle


async def _until(pred: Any, timeout: float = 7.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not pred():
        assert asyncio.get_running_loop().time() < deadline, "timed out"
        await asyncio.sleep(0.02)


async def _ask_everything(ib: Any, stock: Any, sim: SimHandle) -> None:
    """The same questions through ib_async or ib_insync (same API shape)."""
    w = asyncio.wait_for
    [spy] = await ib.qualifyContractsAsync(stock("SPY", "SMART", "USD"))
    bars_rt = ib.reqRealTimeBars(spy, 5, "MIDPOINT", False)  # first bar at the next 5-second boundary
    ticker = ib.reqTickByTickData(spy, "BidAsk")
    history = await w(ib.reqHistoricalDataAsync(spy, "", "1800 S", "1 min", "MIDPOINT", False, keepUpToDate=True), 5)
    updates: list[Any] = []
    history.updateEvent += lambda bars, has_new: updates.append(bars[-1])
    accounts: list[str] = []
    ib.client.wrapper.managedAccounts = lambda text: accounts.append(text)
    ib.client.reqManagedAccts()
    pnl = ib.reqPnL("DU1234567")
    single = ib.reqPnLSingle("DU1234567", "", spy.conId)
    assert await w(ib.reqHeadTimeStampAsync(spy, "TRADES", True, 1), 3)
    found = await w(ib.reqMatchingSymbolsAsync("SP"), 3)
    assert [d.contract.symbol for d in found] == ["SPY"]
    rule = await w(ib.reqMarketRuleAsync(32), 3)
    assert [(r.lowEdge, r.increment) for r in rule] == [(0, 0.01)]
    ticks = await w(ib.reqHistoricalTicksAsync(spy, "", END, 20, "TRADES", True), 3)
    assert len(ticks) == 20 and all(t.price > 0 for t in ticks)
    assert await w(ib.reqNewsProvidersAsync(), 3)
    assert "ScanParameterResponse" in await w(ib.reqScannerParametersAsync(), 3)
    await _until(lambda: accounts == ["DU1234567"])
    await _until(lambda: pnl.unrealizedPnL == pnl.unrealizedPnL)  # NaN until the first pnl message
    await _until(lambda: single.position == 0)
    await _until(lambda: ticker.tickByTicks)
    assert ticker.tickByTicks[-1].bidPrice < ticker.tickByTicks[-1].askPrice
    await _until(lambda: updates)
    await _until(lambda: bars_rt)
    assert bars_rt[-1].open_ > 0


async def test_three_client_libraries_get_answers(ib: IB, sim: SimHandle) -> None:
    """All three at once against one simulator (the real-time bar wait is paid once)."""
    ib_insync = pytest.importorskip("ib_insync")
    old = ib_insync.IB()
    await old.connectAsync("127.0.0.1", sim.port, clientId=22, timeout=5)
    try:
        await asyncio.gather(
            _ask_everything(ib, Stock, sim),
            _ask_everything(old, ib_insync.Stock, sim),
            asyncio.to_thread(_ibapi_asks, sim),
        )
        await asyncio.wait_for(ib.reqUserInfoAsync(), 3)  # ib_async ends the request without a value
    finally:
        old.disconnect()


def _ibapi_asks(sim: SimHandle) -> None:
    ask_reference_and_streams(sim.port, 31, 178)
