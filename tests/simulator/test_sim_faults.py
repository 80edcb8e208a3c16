"""Every fault observed from the client side through unmodified ib_async."""

from __future__ import annotations

import asyncio
import time

import pytest
from ib_async import IB, LimitOrder, MarketOrder, Stock
from support.sim import connect

from simulator.testing import SimHandle


def _codes(ib: IB) -> list[int]:
    codes: list[int] = []
    ib.errorEvent += lambda rid, code, msg, ct: codes.append(code)
    return codes


async def _wait(pred, timeout: float = 3.0) -> None:  # type: ignore[no-untyped-def]
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if pred():
            return
        await asyncio.sleep(0.02)
    raise AssertionError("condition not met")


async def _assert_refused(port: int) -> None:
    """The listener accepts and closes at once (what a client sees while the Gateway restarts)."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        data = await asyncio.wait_for(reader.read(100), 2)
    except ConnectionResetError:
        data = b""
    assert data == b""
    writer.close()


async def test_disconnect_refuses_then_recovers(sim: SimHandle, ib: IB) -> None:
    gone = asyncio.Event()
    ib.disconnectedEvent += lambda: gone.set()
    sim.inject({"fault": "disconnect", "for": "0.6s"})
    await asyncio.wait_for(gone.wait(), 3)
    await _assert_refused(sim.port)
    await asyncio.sleep(0.8)
    again = await connect(sim, 1)
    assert again.isConnected()
    again.disconnect()


async def test_drop_and_refuse(sim: SimHandle, ib: IB) -> None:
    gone = asyncio.Event()
    ib.disconnectedEvent += lambda: gone.set()
    sim.inject({"fault": "drop"})
    await asyncio.wait_for(gone.wait(), 3)
    ib2 = await connect(sim, 2)
    sim.inject({"fault": "refuse", "for": "0.5s"})
    await _assert_refused(sim.port)
    assert ib2.isConnected()
    await asyncio.sleep(0.6)
    ib3 = await connect(sim, 3)
    ib2.disconnect()
    ib3.disconnect()


async def test_stall_delays_then_delivers(sim: SimHandle, ib: IB) -> None:
    sim.inject({"fault": "stall", "for": "0.7s"})
    t0 = time.monotonic()
    await asyncio.wait_for(ib.reqPositionsAsync(), 3)
    assert time.monotonic() - t0 >= 0.5
    assert ib.isConnected()


async def test_latency(sim: SimHandle, ib: IB) -> None:
    sim.inject({"fault": "latency", "ms": 300, "for": "2s"})
    t0 = time.monotonic()
    await asyncio.wait_for(ib.reqPositionsAsync(), 3)
    assert time.monotonic() - t0 >= 0.28


async def test_freeze_and_drop_bid_ask(sim: SimHandle, ib: IB) -> None:
    [c] = await ib.qualifyContractsAsync(Stock("SPY", "SMART", "USD"))
    tk = ib.reqMktData(c)
    await asyncio.sleep(0.3)
    sim.inject({"fault": "freeze", "symbol": "SPY", "for": "1s"})
    await asyncio.sleep(0.1)
    n = len(tk.ticks)
    q1 = sim.state()["quotes"]["SPY"]
    await asyncio.sleep(0.4)
    assert sim.state()["quotes"]["SPY"] == q1
    assert len(tk.ticks) == n
    sim.clear_faults()
    sim.inject({"fault": "drop_bid_ask", "symbol": "SPY", "for": "1s"})
    await asyncio.sleep(0.3)
    assert tk.bid == -1 and tk.ask == -1


async def test_connectivity_lost_data_lost(sim: SimHandle, ib: IB) -> None:
    codes = _codes(ib)
    [c] = await ib.qualifyContractsAsync(Stock("SPY", "SMART", "USD"))
    tk = ib.reqMktData(c)
    await asyncio.sleep(0.2)
    sim.inject({"fault": "connectivity_lost", "for": "0.5s", "restore": "data_lost"})
    await _wait(lambda: 1100 in codes)
    n = len(tk.ticks)
    await asyncio.sleep(0.2)
    assert len(tk.ticks) == n
    await _wait(lambda: 1101 in codes)
    await asyncio.sleep(0.3)
    count = len(tk.ticks)
    await asyncio.sleep(0.3)
    assert len(tk.ticks) == count  # subscription dropped server-side


async def test_connectivity_lost_data_maintained(sim: SimHandle, ib: IB) -> None:
    codes = _codes(ib)
    sim.inject({"fault": "connectivity_lost", "for": "0.2s"})
    await _wait(lambda: 1102 in codes)
    assert 1100 in codes


async def test_farm_status_and_pacing_and_malformed(sim: SimHandle, ib: IB) -> None:
    msgs: list[tuple[int, str]] = []
    ib.errorEvent += lambda rid, code, msg, ct: msgs.append((code, msg))
    sim.inject({"fault": "farm_status", "code": 2103, "farm": "usfarm"})
    sim.inject({"fault": "pacing", "count": 2})
    sim.inject({"fault": "malformed"})
    await _wait(lambda: sum(1 for c, _ in msgs if c == 100) == 2)
    assert (2103, "Market data farm connection is broken:usfarm") in msgs
    t = await asyncio.wait_for(ib.reqCurrentTimeAsync(), 2)  # still healthy after garbage
    assert t


async def test_competing_session(sim: SimHandle, ib: IB) -> None:
    codes = _codes(ib)
    sim.inject({"fault": "competing_session", "for": "1s"})
    [c] = await ib.qualifyContractsAsync(Stock("QQQ", "SMART", "USD"))
    ib.reqMktData(c)
    await _wait(lambda: 10197 in codes)


async def test_reject_and_partial_fill_next_order(sim: SimHandle, ib: IB) -> None:
    codes = _codes(ib)
    [c] = await ib.qualifyContractsAsync(Stock("SPY", "SMART", "USD"))
    sim.inject({"fault": "reject_next_order", "reason": "test"})
    t = ib.placeOrder(c, MarketOrder("BUY", 1))
    await _wait(lambda: t.orderStatus.status == "Inactive")
    assert 201 in codes
    sim.inject({"fault": "partial_fill_next_order", "fraction": 0.5})
    t2 = ib.placeOrder(c, MarketOrder("BUY", 10))
    await _wait(lambda: t2.orderStatus.filled == 5)
    await asyncio.sleep(0.2)
    assert t2.orderStatus.status == "Submitted" and t2.orderStatus.remaining == 5
    ask = sim.state()["quotes"]["SPY"]["ask"]
    t3 = ib.placeOrder(c, LimitOrder("BUY", 1, round(ask + 1, 2)))
    await _wait(lambda: t3.orderStatus.status == "Filled")


async def test_clock_shift(sim: SimHandle, ib: IB) -> None:
    sim.inject({"fault": "clock_shift", "ms": 5000})
    t = await asyncio.wait_for(ib.reqCurrentTimeAsync(), 2)
    assert 3 < t.timestamp() - time.time() < 7
    sim.inject({"fault": "clock_shift", "ms": 0})
    assert abs(sim.state()["server_time"] - time.time()) < 1


async def test_historical_pacing_fault(sim: SimHandle, ib: IB) -> None:
    codes = _codes(ib)
    [c] = await ib.qualifyContractsAsync(Stock("IWM", "SMART", "USD"))
    sim.inject({"fault": "historical_pacing", "for": "2s"})
    bars = await ib.reqHistoricalDataAsync(c, "", "1 D", "1 hour", "TRADES", useRTH=True)
    assert len(bars) == 0 and 162 in codes


async def test_manual_trade_is_reported_as_a_gateway_reports_a_hand_trade(sim: SimHandle) -> None:
    """A hand trade in TWS reaches the Master API client (901) as an execution of an unbound order:
    orderId 0, clientId 0, no orderRef; any other client sees only the position change."""
    master = await connect(sim, 901)
    other = await connect(sim, 4)
    seen: list[float] = []
    other.positionEvent += lambda p: seen.append(p.position)
    sim.inject({"fault": "manual_trade", "symbol": "QQQ", "qty": 7})
    await _wait(lambda: seen == [7])
    await _wait(lambda: len(master.fills()) == 1)
    e = master.fills()[0].execution
    assert (e.orderId, e.clientId, e.orderRef, e.side, e.shares) == (0, 0, "", "BOT", 7)
    assert master.fills()[0].commissionReport.commission == 1.0
    [again] = await master.reqExecutionsAsync()
    assert again.execution.execId == e.execId and again.execution.clientId == 0
    assert other.fills() == [] and await other.reqExecutionsAsync() == []
    assert sim.state()["positions"][0]["position"] == 7
    master.disconnect()
    other.disconnect()


async def test_manual_trade_report_none_changes_the_position_only(sim: SimHandle) -> None:
    master = await connect(sim, 901)
    sim.inject({"fault": "manual_trade", "symbol": "QQQ", "qty": -2, "report": "none"})
    await _wait(lambda: any(p.position == -2 for p in master.positions()))
    assert master.fills() == [] and sim.state()["executions"] == []
    master.disconnect()


async def test_delete_faults_undoes_manual_trades(sim: SimHandle) -> None:
    cash = sim.state()["account"]["TotalCashValue"]
    ib = await connect(sim, 901)
    sim.inject({"fault": "manual_trade", "symbol": "SPY", "qty": 5, "price": 550})
    sim.inject({"fault": "manual_trade", "symbol": "SPY", "qty": -2, "report": "none"})
    await _wait(lambda: any(p.position == 3 for p in ib.positions()))
    assert sim.clear_faults()["manual_trades_undone"] == 2
    await _wait(lambda: all(p.position == 0 for p in ib.positions()))
    state = sim.state()
    assert state["account"]["TotalCashValue"] == cash and state["executions"] == []
    assert all(p["position"] == 0 for p in state["positions"])
    ib.disconnect()


async def test_price_jump_gaps_the_quote_and_fills_a_resting_limit_it_crossed(sim: SimHandle) -> None:
    ib = await connect(sim, 4)
    [c] = await ib.qualifyContractsAsync(Stock("SPY", "SMART", "USD"))
    ticker = ib.reqMktData(c)
    await _wait(lambda: ticker.bid > 0 and ticker.ask > 0)
    before = ticker.ask
    limit = round(before * 1.02, 2)
    trade = ib.placeOrder(c, LimitOrder("SELL", 1, limit))
    await asyncio.sleep(0.5)
    assert trade.orderStatus.status == "Submitted"  # 2 % above the ask: resting
    sim.inject({"fault": "price_jump", "symbol": "SPY", "pct": 4})
    await _wait(lambda: ticker.bid > before * 1.03)
    await _wait(lambda: trade.orderStatus.status == "Filled")
    assert trade.fills[0].execution.price == limit  # a resting limit fills at its limit
    ib.disconnect()


async def test_bad_fault_bodies(sim: SimHandle) -> None:
    for body in (
        {"fault": "nope"},
        {"fault": "price_jump", "symbol": "SPY", "pct": 0},
        {"fault": "price_jump", "symbol": "SPY", "pct": -80},
        {"fault": "price_jump", "symbol": "SPY"},
        {"fault": "freeze", "symbol": "ZZZ"},
        {"fault": "latency"},
        {"fault": "disconnect", "for": "soon"},
        {"fault": "manual_trade", "symbol": "SPY", "qty": 5, "report": "quietly"},
        [1, 2],
    ):
        with pytest.raises(ValueError):
            sim.inject(body)  # type: ignore[arg-type]
