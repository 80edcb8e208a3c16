"""What a Gateway refuses, holds or sends that the simulator used to get wrong (issue 13):
110 off the tick grid, transmit=false held (brackets), reqExecutions filters, stock open/high/low
ticks, option greeks, AccruedCash and $LEDGER, a wildcard chain not cut at 500.
From ib_async, ib_insync and IBKR's ibapi (which shares no code with the other two)."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from ib_async import IB, ExecutionFilter, LimitOrder, MarketOrder, Option, Stock
from support.ibapi_client import ibapi_client

from simulator.testing import SimHandle


async def _wait(pred: Any, timeout: float = 3.0) -> None:
    for _ in range(int(timeout / 0.02)):
        if pred():
            return
        await asyncio.sleep(0.02)
    raise AssertionError("timed out")


async def _spy(ib: Any, stock: Any = Stock) -> Any:
    [c] = await ib.qualifyContractsAsync(stock("SPY", "SMART", "USD"))
    return c


async def test_limit_off_the_tick_grid_is_error_110(ib: IB) -> None:
    codes: list[int] = []
    ib.errorEvent += lambda rid, code, msg, c: codes.append(code)
    trade = ib.placeOrder(await _spy(ib), LimitOrder("BUY", 1, 400.005))
    await _wait(lambda: trade.orderStatus.status == "Inactive")
    assert 110 in codes and not trade.fills


async def test_transmit_false_is_held_and_a_bracket_works_as_one(sim: SimHandle, ib: IB) -> None:
    spy = await _spy(ib)
    ask = sim.state()["quotes"]["SPY"]["ask"]
    held = ib.placeOrder(spy, LimitOrder("BUY", 1, round(ask + 1, 2), transmit=False))
    await asyncio.sleep(0.3)
    assert held.orderStatus.status == "PreSubmitted" and not held.fills
    parent, take, stop = ib.bracketOrder("BUY", 2, round(ask + 1, 2), round(ask * 1.2, 2), round(ask * 0.97, 2))
    t_parent = ib.placeOrder(spy, parent)
    t_take = ib.placeOrder(spy, take)
    await asyncio.sleep(0.3)
    assert not t_parent.fills  # parent and first child held until the last leg
    t_stop = ib.placeOrder(spy, stop)
    await _wait(lambda: t_parent.orderStatus.status == "Filled")
    await _wait(lambda: t_take.orderStatus.status == "Submitted" and t_stop.orderStatus.status == "Submitted")
    sim.inject({"fault": "price_jump", "symbol": "SPY", "pct": -5})
    await _wait(lambda: t_stop.orderStatus.status == "Filled")
    await _wait(lambda: t_take.orderStatus.status == "Cancelled")  # the children are one OCA group
    assert held.orderStatus.status == "PreSubmitted" and not held.fills


async def test_ib_insync_bracket_fills_parent_then_children_work(sim: SimHandle) -> None:
    ib_insync = pytest.importorskip("ib_insync")
    ib = ib_insync.IB()
    await ib.connectAsync("127.0.0.1", sim.port, clientId=24, timeout=5)
    try:
        spy = await _spy(ib, ib_insync.Stock)
        ask = sim.state()["quotes"]["SPY"]["ask"]
        trades = [ib.placeOrder(spy, o) for o in ib.bracketOrder("BUY", 1, round(ask + 1, 2), ask * 2, 1.0)]
        await _wait(lambda: trades[0].orderStatus.status == "Filled")
        await _wait(lambda: all(t.orderStatus.status == "Submitted" for t in trades[1:]))
    finally:
        ib.disconnect()


async def test_executions_filters_read_the_right_fields(ib: IB) -> None:
    spy = await _spy(ib)
    [qqq] = await ib.qualifyContractsAsync(Stock("QQQ", "SMART", "USD"))
    for c, action in ((spy, "BUY"), (qqq, "BUY"), (spy, "SELL")):
        t = ib.placeOrder(c, MarketOrder(action, 1))
        await _wait(lambda t=t: t.orderStatus.status == "Filled" and t.fills)  # type: ignore[misc]
    all_fills = await ib.reqExecutionsAsync()
    assert len(all_fills) == 3
    by_symbol = await ib.reqExecutionsAsync(ExecutionFilter(symbol="QQQ"))
    assert [f.contract.symbol for f in by_symbol] == ["QQQ"]
    sells = await ib.reqExecutionsAsync(ExecutionFilter(side="SELL"))
    assert [f.execution.side for f in sells] == ["SLD"]
    assert len(await ib.reqExecutionsAsync(ExecutionFilter(secType="STK"))) == 3
    assert await ib.reqExecutionsAsync(ExecutionFilter(secType="OPT")) == []
    assert await ib.reqExecutionsAsync(ExecutionFilter(time="20991231 00:00:00")) == []
    assert len(await ib.reqExecutionsAsync(ExecutionFilter(time="20200101 00:00:00"))) == 3


async def test_stock_open_high_low_and_option_greeks(ib: IB) -> None:
    spy = await _spy(ib)
    [tk] = await ib.reqTickersAsync(spy)
    assert tk.low <= min(tk.open, tk.bid) and tk.high >= max(tk.open, tk.ask) and tk.close > 0
    chains = await ib.reqSecDefOptParamsAsync("SPY", "", "STK", spy.conId)
    exp = sorted(chains[0].expirations)[3]
    strike = min(chains[0].strikes, key=lambda k: abs(k - tk.marketPrice()))
    [opt] = await ib.qualifyContractsAsync(Option("SPY", exp, strike, "C", "SMART"))
    [otk] = await ib.reqTickersAsync(opt)
    g = otk.modelGreeks
    assert g is not None and 0.3 < g.delta < 0.7 and g.gamma > 0 and g.vega > 0 and g.theta < 0
    assert g.undPrice == pytest.approx(tk.marketPrice(), rel=0.01)


async def test_account_summary_has_accrued_cash_and_ledger(ib: IB) -> None:
    rows = await ib.accountSummaryAsync()
    tags = {(r.tag, r.currency) for r in rows}
    assert ("AccruedCash", "USD") in tags
    assert ("CashBalance", "BASE") in tags and ("NetLiquidationByCurrency", "USD") in tags


async def test_wildcard_option_chain_is_not_cut_at_500(ib: IB) -> None:
    details = await asyncio.wait_for(ib.reqContractDetailsAsync(Option("SPY", "", 0, "", "SMART")), 10)
    assert len(details) > 500
    assert len({d.contract.conId for d in details}) == len(details)


def test_ibapi_sees_110_held_orders_filters_and_greeks(sim: SimHandle) -> None:
    from ibapi.contract import Contract
    from ibapi.execution import ExecutionFilter as IbExecutionFilter
    from ibapi.order import Order

    spy = Contract()
    spy.symbol, spy.secType, spy.exchange, spy.currency = "SPY", "STK", "SMART", "USD"
    ask = sim.state()["quotes"]["SPY"]["ask"]
    with ibapi_client(sim.port, 33) as (c, rec):
        oid = rec.wait("nextValidId")[0]

        def order(action: str, px: float, transmit: bool = True) -> Order:
            o = Order()
            o.action, o.totalQuantity, o.orderType, o.lmtPrice, o.transmit = action, 1, "LMT", px, transmit
            return o

        c.placeOrder(oid, spy, order("BUY", 400.005))
        assert rec.wait("error", lambda a: a[0] == oid)[2] == 110
        c.placeOrder(oid + 1, spy, order("BUY", round(ask + 1, 2), transmit=False))
        assert rec.wait("orderStatus", lambda a: a[0] == oid + 1)[1] == "PreSubmitted"
        c.placeOrder(oid + 2, spy, order("BUY", round(ask + 1, 2)))
        rec.wait("execDetails", lambda a: a[2].orderId == oid + 2)
        f = IbExecutionFilter()
        f.side = "SELL"
        c.reqExecutions(7, f)
        rec.wait("execDetailsEnd", lambda a: a[0] == 7)
        assert not [a for n, a in rec.seen if n == "execDetails" and a[0] == 7]
        assert not [a for n, a in rec.seen if n == "execDetails" and a[2].orderId == oid + 1]
        opt = Contract()
        opt.conId = sim.sim.contracts.match(0, "SPY", "OPT", "", 0, "C", limit=50)[-1].conId
        opt.exchange = "SMART"
        c.reqMktData(8, opt, "", True, False, [])
        assert rec.wait("tickOptionComputation", lambda a: a[0] == 8)[1] == 13
        c.reqCompletedOrders(True)
        rec.wait("completedOrdersEnd")
        done = [a for n, a in rec.seen if n == "completedOrder"]
        assert [(o.orderType, st.status) for _, o, st in done] == [("LMT", "Inactive"), ("LMT", "Filled")]


async def test_completed_orders_are_listed(sim: SimHandle, ib: IB) -> None:
    spy = await _spy(ib)
    filled = ib.placeOrder(spy, MarketOrder("BUY", 1, orderRef="done-1"))
    resting = ib.placeOrder(spy, LimitOrder("BUY", 1, 1.0, orderRef="done-2"))
    await _wait(lambda: filled.orderStatus.status == "Filled" and resting.orderStatus.status == "Submitted")
    ib.cancelOrder(resting.order)
    await _wait(lambda: resting.orderStatus.status == "Cancelled")
    sim.inject({"fault": "manual_trade", "symbol": "SPY", "qty": 1})
    done = await asyncio.wait_for(ib.reqCompletedOrdersAsync(apiOnly=True), 3)
    got = {t.order.orderRef: t.orderStatus.status for t in done}
    assert got == {"done-1": "Filled", "done-2": "Cancelled"}
    assert len(await asyncio.wait_for(ib.reqCompletedOrdersAsync(apiOnly=False), 3)) == 3
