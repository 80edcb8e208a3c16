"""The risk probe: is any position larger than the bot's limit allows?

Exposure per position key = |market value| / net liquidation, from the portfolio updates the
account subscription delivers (the Gateway's own marks). The probe measures, the rules judge
against the limits table (PositionLimitExceeded, RiskPerTradeExceeded, DayTradesLow); it exports
which limits' breaches fail the session (session.risk_limits_fail), so each alert is critical exactly
when its gate fails the session. The probe fails only when it cannot measure.

Risk per trade = the value of the day's largest single order (all its executions: shares x price x
multiplier) / net liquidation, per position key, from the executions the Gateway has reported on
this connection (the reconciliation probe asks for them every run). For a bought option that is
the most it can lose; for stock, the most a trade could lose. The session gate risk_per_trade
judges it against the limits table.
"""

from __future__ import annotations

from collections.abc import Iterable

from ib_async import Fill

from probes.outcome import ProbeFailure
from probes.passive.account import net_liquidation
from probes.passive.base import PassiveContext, Schedule
from probes.passive.positions import position_key


class RiskProbe:
    """Keeps exposure ratios per position; success = exposure could be measured."""

    name = "risk"

    def __init__(self, ctx: PassiveContext) -> None:
        self.session = ctx.session
        self.interval = ctx.config.probes.account_interval
        self.timeout = ctx.config.gateway.request_timeout
        self.limit = ctx.config.probes.max_position_ratio
        # Which breaches fail the session: exported so the risk alerts' severity follows the gates.
        self.fails_session = {name: bool(on) for name, on in ctx.config.session.risk_limits_fail}
        self.recorder = ctx.state.outcomes.recorder(self.name)
        self.exposure: dict[str, float] = {}
        self.trade_risk: dict[str, float] = {}

    def schedule(self) -> Schedule:
        return Schedule(self.interval, self.timeout)

    async def run_once(self) -> None:
        if not self.session.connected:
            raise ProbeFailure("not connected")
        net_liq = net_liquidation(self.session)
        if not net_liq or net_liq <= 0:
            raise ProbeFailure("net liquidation unknown")
        exposure: dict[str, float] = {}
        for item in self.session.ib.portfolio(self.session.account):
            if item.position:
                key = position_key(item.contract)
                exposure[key] = exposure.get(key, 0.0) + abs(item.marketValue) / net_liq
        self.exposure = exposure
        self.trade_risk = trade_risk(self.session.ib.fills(), net_liq)


def trade_risk(fills: Iterable[Fill], net_liq: float) -> dict[str, float]:
    """Per position key, the largest order's value (its executions summed) over net liquidation."""
    orders: dict[tuple[str, int | str], float] = {}
    for fill in fills:
        execution = fill.execution
        try:
            multiplier = float(fill.contract.multiplier or 1)
        except ValueError:
            multiplier = 1.0
        key = (position_key(fill.contract), execution.permId or execution.execId)
        orders[key] = orders.get(key, 0.0) + abs(execution.shares * execution.price) * multiplier
    largest: dict[str, float] = {}
    for (symbol, _), value in orders.items():
        largest[symbol] = max(largest.get(symbol, 0.0), value / net_liq)
    return largest
