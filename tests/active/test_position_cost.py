"""The position probe's cost check: the Gateway's avgCost must be what the fills and commissions make it."""

from __future__ import annotations

import pytest
from support.active import held

from probes.active import order_probes
from probes.active.order_probes import FillCost, average_cost_mismatch, expected_average_cost
from probes.active.runner import ActiveSession


def buy(shares: float, price: float, commission: float) -> FillCost:
    return FillCost("BOT", shares, price, commission)


def sell(shares: float, price: float, commission: float) -> FillCost:
    return FillCost("SLD", shares, price, commission)


def test_one_share_costs_fill_price_plus_commission() -> None:
    qty, cost = expected_average_cost([buy(1, 512.45, 1.00)], multiplier=1)
    assert qty == 1
    assert cost == pytest.approx(513.45)
    assert average_cost_mismatch(513.45, cost) is None  # type: ignore[arg-type]


def test_option_cost_is_per_contract_times_multiplier() -> None:
    qty, cost = expected_average_cost([buy(1, 0.45, 0.65)], multiplier=100)
    assert (qty, cost) == (1, pytest.approx(45.65))


def test_wrong_price_is_reported_with_both_figures() -> None:
    _, cost = expected_average_cost([buy(1, 512.45, 1.00)], multiplier=1)
    problem = average_cost_mismatch(513.50, cost)  # type: ignore[arg-type]
    assert problem is not None
    assert "513.5000" in problem and "513.4500" in problem and "+0.0500" in problem


def test_a_cost_without_the_commission_fails() -> None:
    _, cost = expected_average_cost([buy(1, 512.45, 1.00)], multiplier=1)
    assert average_cost_mismatch(512.45, cost) is not None  # type: ignore[arg-type]
    _, option_cost = expected_average_cost([buy(1, 0.45, 0.65)], multiplier=100)
    assert average_cost_mismatch(45.00, option_cost) is not None  # type: ignore[arg-type]


def test_a_price_not_times_the_multiplier_fails() -> None:
    _, cost = expected_average_cost([buy(1, 0.45, 0.65)], multiplier=100)
    assert average_cost_mismatch(0.45 + 0.65, cost) is not None  # type: ignore[arg-type]


def test_tolerance_is_about_a_cent() -> None:
    assert average_cost_mismatch(100.005, 100.0) is None
    assert average_cost_mismatch(100.01, 100.0) is None
    assert average_cost_mismatch(100.02, 100.0) is not None
    assert average_cost_mismatch(99.98, 100.0) is not None
    assert average_cost_mismatch(float("nan"), 100.0) is not None


def test_adding_re_averages_and_reducing_keeps_the_average() -> None:
    fills = [buy(1, 100.0, 1.0), buy(1, 102.0, 1.0)]
    assert expected_average_cost(fills, 1) == (2, pytest.approx(102.0))
    assert expected_average_cost([*fills, sell(1, 110.0, 1.0)], 1) == (1, pytest.approx(102.0))


def test_going_flat_starts_afresh() -> None:
    fills = [buy(1, 100.0, 1.0), sell(1, 99.0, 1.0), buy(1, 105.0, 1.0)]
    assert expected_average_cost(fills, 1) == (1, pytest.approx(106.0))
    assert expected_average_cost(fills[:2], 1) == (0, 0.0)


def test_a_flip_through_zero_has_no_expected_cost() -> None:
    assert expected_average_cost([buy(1, 100.0, 1.0), sell(2, 101.0, 1.0)], 1) == (-1, None)


async def test_position_probe_compares_the_gateways_cost_with_the_fill(sim, config_for) -> None:
    async with ActiveSession(config_for(sim), backoff_base=0.05) as session:
        ctx = await session.context()
        detail = await order_probes.probe_position(ctx)
        assert "as its fills and commissions make it" in detail
        fill = next(f for f in ctx.ib.fills() if f.contract.conId == ctx.instrument.conId)
        assert fill.commissionReport.commission > 0
        gateway = next(p for p in sim.state()["positions"] if p["symbol"] == "SPY")
        assert gateway["avgCost"] == pytest.approx(fill.execution.price + fill.commissionReport.commission)
        await session.orders.cleanup()
    assert held(sim) == {}


async def test_position_shared_with_another_trader_is_not_cost_compared(sim, config_for) -> None:
    async with ActiveSession(config_for(sim), backoff_base=0.05) as session:
        ctx = await session.context()
        sim.inject({"fault": "manual_trade", "symbol": "SPY", "qty": 2, "price": 400.0})
        detail = await order_probes.probe_position(ctx)
        assert "Gateway holds 3 (probes 1)" in detail
        assert "cost not compared" in detail
        await session.orders.cleanup()
    assert held(sim) == {"SPY": 2}  # the probes closed only their own share


async def test_option_position_cost_is_compared_per_contract(sim, config_for) -> None:
    config = config_for(sim, instrument={"kind": "option", "symbol": "SPY", "right": "C", "max_option_price": 0.5})
    async with ActiveSession(config, backoff_base=0.05) as session:
        ctx = await session.context()
        detail = await order_probes.probe_position(ctx)
        assert "as its fills and commissions make it" in detail
        fill = next(f for f in ctx.ib.fills() if f.contract.conId == ctx.instrument.conId)
        gateway = next(p for p in sim.state()["positions"] if p["conId"] == ctx.instrument.conId)
        assert gateway["avgCost"] == pytest.approx(fill.execution.price * 100 + fill.commissionReport.commission)
        await session.orders.cleanup()
    assert held(sim) == {}
