"""The risk probe: is any position larger than the bot's limit allows?

Exposure per position key = |market value| / net liquidation, from the portfolio updates the
account subscription delivers (the Gateway's own marks). The configured limit is exported too, so
an alert rule can compare the two without duplicating the number.
"""

from __future__ import annotations

from exporter.metrics import Metrics
from probes.gateway import GatewaySession
from probes.outcome import ProbeFailure
from probes.passive.account import AccountProbe
from probes.passive.positions import position_key


class RiskProbe:
    """Exports exposure ratios; success = every position within max_position_ratio."""

    name = "risk"

    def __init__(self, session: GatewaySession, metrics: Metrics, account: AccountProbe,
                 max_position_ratio: float) -> None:
        self.session = session
        self.metrics = metrics
        self.account = account
        self.limit = max_position_ratio
        self.recorder = metrics.outcomes.recorder(self.name)
        self.symbols: set[str] = set()
        metrics.risk_max_position_ratio.set(max_position_ratio)

    async def run_once(self) -> None:
        if not self.session.connected:
            raise ProbeFailure("not connected")
        net_liq = self.account.net_liquidation()
        if not net_liq or net_liq <= 0:
            raise ProbeFailure("net liquidation unknown")
        exposure: dict[str, float] = {}
        for item in self.session.ib.portfolio(self.session.account):
            if item.position:
                key = position_key(item.contract)
                exposure[key] = exposure.get(key, 0.0) + abs(item.marketValue) / net_liq
        for key, ratio in exposure.items():
            self.metrics.position_exposure_ratio.labels(symbol=key).set(ratio)
        for gone in self.symbols - set(exposure):
            self.metrics.position_exposure_ratio.remove(gone)
        self.symbols = set(exposure)
        over = {k: r for k, r in exposure.items() if r > self.limit}
        if over:
            listed = ", ".join(f"{k} {r:.1%}" for k, r in over.items())
            raise ProbeFailure(f"over the position limit: {listed}")
