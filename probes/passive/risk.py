"""The risk probe: is any position larger than the bot's limit allows?

Exposure per position key = |market value| / net liquidation, from the portfolio updates the
account subscription delivers (the Gateway's own marks). The configured limit is exported too, so
an alert rule compares the two: the probe measures, the rule judges (PositionLimitExceeded). The
probe fails only when it cannot measure.
"""

from __future__ import annotations

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
        self.recorder = ctx.state.outcomes.recorder(self.name)
        self.exposure: dict[str, float] = {}

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
