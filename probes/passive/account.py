"""The account probe: which account, and what it is worth.

Values come from ib_async's ``accountValues()`` and ``positions()``, which the connection's
account-update subscription keeps current (a read-only connection receives them at sync and
afterwards), so the probe reads memory and sends nothing to the Gateway.

Paper or live is judged by the account id: paper ids start with ``D`` (DU..., DF...). No API field
says paper; this is IBKR's naming convention.
"""

from __future__ import annotations

import math

from exporter.metrics import Metrics
from probes.gateway import GatewaySession
from probes.outcome import ProbeFailure

TAGS = {
    "NetLiquidation": "account_net_liquidation",
    "TotalCashValue": "account_cash",
    "BuyingPower": "account_buying_power",
}


def account_type(account: str) -> str:
    """paper for ids starting with D, else live."""
    return "paper" if account.startswith("D") else "live"


def _number(text: str) -> float | None:
    try:
        value = float(text)
    except (TypeError, ValueError):
        return None
    return value if math.isfinite(value) else None


class AccountProbe:
    """Exports account identity, money figures, day trades left and the number of positions."""

    name = "account"

    def __init__(self, session: GatewaySession, metrics: Metrics) -> None:
        self.session = session
        self.metrics = metrics
        self.recorder = metrics.outcomes.recorder(self.name)
        self._info_account: str | None = None

    def net_liquidation(self) -> float | None:
        """Net liquidation in the account's reporting currency (BASE rows excluded), if known."""
        for value in self.session.ib.accountValues(self.session.account):
            if value.tag == "NetLiquidation" and value.currency not in ("", "BASE"):
                return _number(value.value)
        return None

    async def run_once(self) -> None:
        if not self.session.connected:
            raise ProbeFailure("not connected")
        account = self.session.account
        if not account:
            raise ProbeFailure("the Gateway reported no managed account")
        m = self.metrics
        if self._info_account != account:
            if self._info_account is not None:
                m.account_info.remove(self._info_account, account_type(self._info_account))
            m.account_info.labels(account=account, account_type=account_type(account)).set(1)
            self._info_account = account
        seen_net_liq = False
        for value in self.session.ib.accountValues(account):
            number = _number(value.value)
            if number is None:
                continue
            if value.tag in TAGS and value.currency not in ("", "BASE"):
                getattr(m, TAGS[value.tag]).labels(currency=value.currency).set(number)
                seen_net_liq |= value.tag == "NetLiquidation"
            elif value.tag == "DayTradesRemaining":
                m.account_day_trades_remaining.set(number)
        positions = [p for p in self.session.ib.positions(account) if p.position]
        m.account_positions.set(len(positions))
        if not seen_net_liq:
            raise ProbeFailure(f"no NetLiquidation value received for {account}")
