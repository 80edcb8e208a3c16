"""The Master API client id: the one client (besides client 0) that sees every client's executions.

A real Gateway reports another client's executions (live execDetails, and reqExecutions) only to the
client whose id is configured as "Master API client ID"; every other client sees its own only.
"""

from __future__ import annotations

import asyncio

from ib_async import IB, LimitOrder, MarketOrder, Stock, Trade
from support.sim import connect

from simulator.testing import SimHandle, running_simulator


async def _fill_one(ib: IB, ref: str) -> Trade:
    [c] = await ib.qualifyContractsAsync(Stock("SPY", "SMART", "USD"))
    trade = ib.placeOrder(c, MarketOrder("BUY", 1, orderRef=ref))
    for _ in range(150):
        if trade.isDone() and trade.fills and trade.fills[-1].commissionReport.execId:
            return trade
        await asyncio.sleep(0.02)
    raise AssertionError(f"order {ref} did not fill: {trade.orderStatus}")


async def _wait_for_fill(ib: IB, ref: str) -> bool:
    for _ in range(50):
        if any(f.execution.orderRef == ref for f in ib.fills()):
            return True
        await asyncio.sleep(0.02)
    return False


async def test_default_master_is_the_exporter_client_id(sim: SimHandle) -> None:
    assert sim.state()["master_client_id"] == 901
    master = await connect(sim, 901)
    bystander = await connect(sim, 7)
    prober = await connect(sim, 902)
    await _fill_one(prober, "gw-probe-1")
    # live: the master hears the other client's execution and its commission report
    assert await _wait_for_fill(master, "gw-probe-1")
    fill = next(f for f in master.fills() if f.execution.orderRef == "gw-probe-1")
    assert fill.execution.clientId == 902
    for _ in range(50):
        if fill.commissionReport.execId:
            break
        await asyncio.sleep(0.02)
    assert fill.commissionReport.commission == 1.0
    assert any(t.order.orderRef == "gw-probe-1" for t in master.trades())
    # on request: reqExecutions answers the master with every client's executions ...
    assert {f.execution.orderRef for f in await master.reqExecutionsAsync()} == {"gw-probe-1"}
    # ... and any other client with its own only
    assert not await _wait_for_fill(bystander, "gw-probe-1")
    assert await bystander.reqExecutionsAsync() == []
    for ib in (master, bystander, prober):
        ib.disconnect()


async def test_master_hears_a_cancel_without_another_clients_error() -> None:
    with running_simulator(master_client_id=31, tick_hz=20) as sim:
        master = await connect(sim, 31)
        other = await connect(sim, 32)
        errors: list[int] = []
        master.errorEvent += lambda rid, code, msg, ct: errors.append(code)
        [c] = await other.qualifyContractsAsync(Stock("SPY", "SMART", "USD"))
        trade = other.placeOrder(c, LimitOrder("BUY", 1, 1.00, orderRef="rest"))
        await asyncio.sleep(0.2)
        other.cancelOrder(trade.order)
        seen = None
        for _ in range(100):
            seen = next((t for t in master.trades() if t.order.orderRef == "rest"), None)
            if seen is not None and seen.orderStatus.status == "Cancelled":
                break
            await asyncio.sleep(0.02)
        assert seen is not None and seen.orderStatus.status == "Cancelled"
        assert 202 not in errors
        master.disconnect()
        other.disconnect()


async def test_no_master_configured_means_nobody_else_sees_the_fill() -> None:
    with running_simulator(master_client_id=None, tick_hz=20) as sim:
        assert sim.state()["master_client_id"] is None
        exporter = await connect(sim, 901)
        prober = await connect(sim, 902)
        await _fill_one(prober, "gw-probe-2")
        assert not await _wait_for_fill(exporter, "gw-probe-2")
        assert await exporter.reqExecutionsAsync() == []
        # client 0 keeps its old privilege either way
        zero = await connect(sim, 0)
        assert {f.execution.orderRef for f in await zero.reqExecutionsAsync()} == {"gw-probe-2"}
        for ib in (exporter, prober, zero):
            ib.disconnect()
