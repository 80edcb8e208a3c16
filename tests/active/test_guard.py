"""The paper guard: nothing reaches a Gateway that is not certainly paper; limits hold."""

from __future__ import annotations

import pytest
from ib_async import LimitOrder
from support.active import real_orders

from exporter.metrics import Metrics
from probes.active.guard import OrderRefused
from probes.active.runner import ActiveSession, run_probes
from simulator import running_simulator


async def test_live_account_gets_zero_orders(config_for):
    with running_simulator(port=0, control_port=0, account="U1234567", seed=1, symbols=["SPY"]) as sim:
        metrics = Metrics()
        report = await run_probes(config_for(sim), metrics=metrics, backoff_base=0.05)
        assert not report.ok
        assert all("account_not_paper" in r.detail for r in report.results)
        assert sim.state()["orders"] == []
        assert metrics.registry.get_sample_value("gatewatch_probe_orders_refused_total",
                                                 {"reason": "account_not_paper"}) >= 1


async def test_non_paper_port_gets_zero_orders(sim, config_for):
    report = await run_probes(config_for(sim, gateway={"paper_ports": [4002, 7497]}), backoff_base=0.05)
    assert all("port_not_paper" in r.detail for r in report.results)
    assert sim.state()["orders"] == []


async def test_paper_false_gets_zero_orders(sim, config_for):
    report = await run_probes(config_for(sim, gateway={"paper": False}), backoff_base=0.05)
    assert all("paper_false" in r.detail for r in report.results)
    assert sim.state()["orders"] == []


async def _refusal(config, order) -> str:
    async with ActiveSession(config) as session:
        ctx = await session.context()
        with pytest.raises(OrderRefused) as refused:
            session.guard.place(ctx.instrument, order, probe="limits")
        return refused.value.reason


async def test_quantity_limit(sim, config_for):
    assert await _refusal(config_for(sim), LimitOrder("BUY", 2, 1.00)) == "quantity"
    assert sim.state()["orders"] == []


async def test_notional_limit(sim, config_for):
    assert await _refusal(config_for(sim, max_notional=100), LimitOrder("BUY", 1, 150.00)) == "notional"
    assert sim.state()["orders"] == []


async def test_orders_per_hour_limit(sim, config_for):
    config = config_for(sim, max_orders_per_hour=1)
    async with ActiveSession(config) as session:
        ctx = await session.context()
        sent = session.orders.limit(ctx.instrument, "BUY", 1.00, probe="limits")
        with pytest.raises(OrderRefused) as refused:
            session.orders.limit(ctx.instrument, "BUY", 1.00, probe="limits")
        assert refused.value.reason == "rate"
        await session.orders.cancel(sent)
    assert len(real_orders(sim)) == 1


async def test_retry_with_same_order_ref_never_sends_twice(sim, config_for):
    async with ActiveSession(config_for(sim)) as session:
        ctx = await session.context()
        first = session.orders.limit(ctx.instrument, "BUY", 1.00, probe="retry")
        again = session.orders.limit(ctx.instrument, "BUY", 1.00, probe="retry", order_ref=first.order_ref)
        assert again.trade is first.trade
        await session.orders.cancel(first)
    orders = real_orders(sim)
    assert len(orders) == 1 and orders[0]["orderRef"] == first.order_ref
    assert orders[0]["status"] == "Cancelled"
