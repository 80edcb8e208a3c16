"""Risk per trade as measured for the risk_per_trade gate: the largest order's value over net liquidation."""

from __future__ import annotations

from datetime import UTC, datetime

from ib_async import CommissionReport, Execution, Fill, Option, Stock

from probes.passive.risk import trade_risk


def fill(contract: Stock | Option, perm_id: int, shares: float, price: float, exec_id: str) -> Fill:
    return Fill(contract, Execution(execId=exec_id, permId=perm_id, shares=shares, price=price),
                CommissionReport(), datetime.now(UTC))


def test_an_order_split_into_executions_counts_as_one_trade() -> None:
    spy = Stock("SPY", "SMART", "USD")
    fills = [fill(spy, 7, 30, 600.0, "a"), fill(spy, 7, 20, 600.0, "b"), fill(spy, 8, 1, 600.0, "c")]
    assert trade_risk(fills, 1_000_000.0) == {"SPY": 50 * 600.0 / 1_000_000.0}


def test_option_value_uses_the_multiplier() -> None:
    call = Option("SPY", "20261218", 600.0, "C", "SMART", multiplier="100", currency="USD")
    risk = trade_risk([fill(call, 9, 2, 1.5, "d")], 100_000.0)
    assert list(risk.values()) == [2 * 1.5 * 100 / 100_000.0]
