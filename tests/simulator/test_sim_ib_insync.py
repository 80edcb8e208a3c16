"""Negotiation with an older client: ib_insync 0.9.86 advertises 157..176."""

from __future__ import annotations

import asyncio

import pytest

from simulator.testing import SimHandle

ib_insync = pytest.importorskip("ib_insync")


async def test_ib_insync_negotiates_176_and_trades(sim: SimHandle) -> None:
    ib = ib_insync.IB()
    await ib.connectAsync("127.0.0.1", sim.port, clientId=21, timeout=5)
    try:
        assert ib.client.serverVersion() == 176
        assert ib.managedAccounts() == ["DU1234567"]
        [c] = await ib.qualifyContractsAsync(ib_insync.Stock("SPY", "SMART", "USD"))
        state = await asyncio.wait_for(ib.whatIfOrderAsync(c, ib_insync.LimitOrder("BUY", 5, 400)), 3)
        assert float(state.initMarginChange) > 0
        trade = ib.placeOrder(c, ib_insync.MarketOrder("BUY", 2, orderRef="old-client"))
        for _ in range(150):
            if trade.fills and trade.orderStatus.status == "Filled":
                break
            await asyncio.sleep(0.02)
        assert trade.orderStatus.status == "Filled"
        assert trade.fills[0].execution.orderRef == "old-client"
        assert sim.state()["orders"][-1]["whatIf"] is False
    finally:
        ib.disconnect()
