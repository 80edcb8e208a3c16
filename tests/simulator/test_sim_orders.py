"""Orders: fills, resting limits, cancels, rejects, what-if, executions, reconnect replay."""

from __future__ import annotations

import asyncio

import pytest
from ib_async import IB, LimitOrder, MarketOrder, Option, Stock, Trade
from support.sim import connect

from simulator.testing import SimHandle


async def _spy(ib: IB) -> Stock:
    [c] = await ib.qualifyContractsAsync(Stock("SPY", "SMART", "USD"))
    return c


async def _done(trade: Trade, timeout: float = 3) -> None:
    """Wait until the trade is done and, when filled, its commission report has arrived."""
    for _ in range(int(timeout * 50)):
        filled = trade.orderStatus.status == "Filled"
        if trade.isDone() and (not filled or (trade.fills and trade.fills[-1].commissionReport.execId)):
            return
        await asyncio.sleep(0.02)
    raise AssertionError(f"trade not done: {trade.orderStatus}")


async def test_market_buy_fills_at_ask_with_commission(sim: SimHandle, ib: IB) -> None:
    c = await _spy(ib)
    positions: list[float] = []
    ib.positionEvent += lambda p: positions.append(p.position)
    ask = sim.state()["quotes"]["SPY"]["ask"]
    trade = ib.placeOrder(c, MarketOrder("BUY", 10, orderRef="probe-1"))
    await _done(trade)
    assert trade.orderStatus.status == "Filled"
    fill = trade.fills[0]
    assert fill.execution.orderRef == "probe-1" and fill.execution.side == "BOT"
    assert fill.execution.price == pytest.approx(ask, abs=0.5)
    assert fill.commissionReport.commission == 1.0
    await asyncio.sleep(0.1)
    assert positions[-1] == 10
    assert [p.position for p in ib.positions()] == [10]
    state = sim.state()
    order = state["orders"][0]
    assert order["status"] == "Filled" and order["orderRef"] == "probe-1"
    assert order["filled_at"] >= order["received_at"]
    assert state["positions"][0]["position"] == 10
    assert float(state["account"]["TotalCashValue"]) < 1_000_000 - 10 * ask + 1e-6
    assert next(v.value for v in ib.accountValues() if v.tag == "GrossPositionValue") != "0.00"


async def test_marketable_limit_fills_and_passive_rests_then_cancel(sim: SimHandle, ib: IB) -> None:
    c = await _spy(ib)
    q = sim.state()["quotes"]["SPY"]
    t1 = ib.placeOrder(c, LimitOrder("SELL", 5, round(q["bid"] - 1, 2)))
    await _done(t1)
    assert t1.orderStatus.status == "Filled"
    t2 = ib.placeOrder(c, LimitOrder("BUY", 5, round(q["bid"] * 0.9, 2), orderRef="rest"))
    await asyncio.sleep(0.3)
    assert t2.orderStatus.status == "Submitted"
    errors: list[int] = []
    ib.errorEvent += lambda rid, code, msg, ct: errors.append(code)
    ib.cancelOrder(t2.order)
    await _done(t2)
    assert t2.orderStatus.status == "Cancelled"
    assert 202 in errors
    ib.cancelOrder(t1.order)  # already filled
    await asyncio.sleep(0.2)
    assert 161 in errors


async def test_resting_limit_fills_at_limit_when_crossed(sim: SimHandle, ib: IB) -> None:
    c = await _spy(ib)
    ask = sim.state()["quotes"]["SPY"]["ask"]
    trade = ib.placeOrder(c, LimitOrder("BUY", 1, round(ask - 0.01, 2)))
    for _ in range(300):
        if trade.fills:
            break
        await asyncio.sleep(0.02)
    if trade.fills:  # the walk crossed it: fill at the limit, not better
        assert trade.fills[0].execution.price == pytest.approx(round(ask - 0.01, 2))
    else:
        assert trade.orderStatus.status == "Submitted"


async def test_buying_power_reject_201_inactive(ib: IB) -> None:
    c = await _spy(ib)
    errors: list[tuple[int, str]] = []
    ib.errorEvent += lambda rid, code, msg, ct: errors.append((code, msg))
    trade = ib.placeOrder(c, MarketOrder("BUY", 100_000))
    await asyncio.sleep(0.3)
    assert trade.orderStatus.status == "Inactive"
    code, msg = errors[0]
    assert code == 201 and "EQUITY WITH LOAN VALUE" in msg and "INITIAL MARGIN" in msg


async def test_duplicate_order_id_103(ib: IB) -> None:
    c = await _spy(ib)
    errors: list[int] = []
    ib.errorEvent += lambda rid, code, msg, ct: errors.append(code)
    t = ib.placeOrder(c, MarketOrder("BUY", 1))
    await _done(t)
    ib.client.placeOrder(t.order.orderId, c, MarketOrder("BUY", 1))
    await asyncio.sleep(0.2)
    assert 103 in errors


async def test_what_if_returns_margin_without_trading(sim: SimHandle, ib: IB) -> None:
    c = await _spy(ib)
    state = await asyncio.wait_for(ib.whatIfOrderAsync(c, LimitOrder("BUY", 10, 500)), 3)
    assert float(state.initMarginChange) > 0
    assert float(state.equityWithLoanBefore) > 0
    s = sim.state()
    assert s["orders"][0]["whatIf"] is True and not s["executions"] and not s["positions"]


async def test_option_order_commission_per_contract(ib: IB) -> None:
    [spy] = await ib.qualifyContractsAsync(Stock("SPY", "SMART", "USD"))
    chains = await ib.reqSecDefOptParamsAsync("SPY", "", "STK", spy.conId)
    exp = sorted(chains[0].expirations)[0]
    details = await ib.reqContractDetailsAsync(Option("SPY", exp, 0, "P", "SMART"))
    cheapest = min(details, key=lambda d: d.contract.strike).contract
    [tk] = await ib.reqTickersAsync(cheapest)
    assert tk.ask >= 0.01
    trade = ib.placeOrder(cheapest, MarketOrder("BUY", 2))
    await _done(trade)
    assert trade.orderStatus.status == "Filled"
    assert trade.fills[0].commissionReport.commission == pytest.approx(1.30)


async def test_reconnect_replays_open_orders_and_executions(sim: SimHandle) -> None:
    ib = await connect(sim, 11)
    c = await _spy(ib)
    filled = ib.placeOrder(c, MarketOrder("BUY", 3, orderRef="a"))
    await _done(filled)
    resting = ib.placeOrder(c, LimitOrder("BUY", 3, 1.00, orderRef="b"))
    await asyncio.sleep(0.2)
    ib.disconnect()
    await asyncio.sleep(0.2)
    ib2 = await connect(sim, 11)
    refs = {t.order.orderRef for t in ib2.openTrades()}
    assert refs == {"b"}
    assert {f.execution.orderRef for f in ib2.fills()} == {"a"}
    assert ib2.client.getReqId() > resting.order.orderId
    ib2.disconnect()


async def test_client_zero_sees_other_clients_orders(sim: SimHandle) -> None:
    zero = await connect(sim, 0)
    other = await connect(sim, 5)
    c = await _spy(other)
    t = other.placeOrder(c, MarketOrder("BUY", 1, orderRef="seen-by-0"))
    await _done(t)
    await asyncio.sleep(0.2)
    assert any(tr.order.orderRef == "seen-by-0" for tr in zero.trades())
    zero.disconnect()
    other.disconnect()


async def test_global_cancel(ib: IB) -> None:
    c = await _spy(ib)
    trades = [ib.placeOrder(c, LimitOrder("BUY", 1, 1.0 + i)) for i in range(3)]
    await asyncio.sleep(0.2)
    ib.reqGlobalCancel()
    await asyncio.sleep(0.3)
    assert all(t.orderStatus.status == "Cancelled" for t in trades)


async def test_what_if_on_a_short_account_is_never_negative_margin(sim: SimHandle, ib: IB) -> None:
    """Short 10 SPY: covering 5 lowers the margin, buying 20 (long 10) brings it back; never below 0.
    The same answer reaches ib_insync."""
    sim.inject({"fault": "manual_trade", "symbol": "SPY", "qty": -10, "report": "none"})
    [c] = await ib.qualifyContractsAsync(Stock("SPY", "SMART", "USD"))
    for qty in (5, 10, 20):
        st = await asyncio.wait_for(ib.whatIfOrderAsync(c, MarketOrder("BUY", qty)), 3)
        before, change, after = float(st.initMarginBefore), float(st.initMarginChange), float(st.initMarginAfter)
        assert before > 0 and after >= 0 and abs(before + change - after) < 0.01, (qty, st)
        if qty == 20:
            assert abs(after - before) < before * 0.05  # short 10 -> long 10: about the same exposure
    import ib_insync

    old = ib_insync.IB()
    await old.connectAsync("127.0.0.1", sim.port, clientId=23, timeout=5)
    [oc] = await old.qualifyContractsAsync(ib_insync.Stock("SPY", "SMART", "USD"))
    st = await asyncio.wait_for(old.whatIfOrderAsync(oc, ib_insync.MarketOrder("BUY", 15)), 3)
    assert float(st.initMarginAfter) >= 0 and float(st.initMarginChange) < 0
    old.disconnect()
