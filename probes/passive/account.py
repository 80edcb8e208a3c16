"""The account probe: which account, and what it is worth.

Values come from ib_async's ``accountValues()`` and ``positions()``, which the connection's
account-update subscription keeps current (a read-only connection receives them at sync and
afterwards), so the probe reads memory and sends nothing to the Gateway.

Paper or live is judged by the account id: paper ids start with ``D`` (DU..., DF...). No API field
says paper; this is IBKR's naming convention.
"""

from __future__ import annotations

import math

from probes.gateway import GatewaySession
from probes.outcome import ProbeFailure
from probes.passive.base import PassiveContext, Schedule

TAGS = frozenset({"NetLiquidation", "TotalCashValue", "BuyingPower"})


def account_type(account: str) -> str:
    """paper for ids starting with D, else live."""
    return "paper" if account.startswith("D") else "live"


def _number(text: str) -> float | None:
    try:
        value = float(text)
    except (TypeError, ValueError):
        return None
    return value if math.isfinite(value) else None


def net_liquidation(session: GatewaySession) -> float | None:
    """Net liquidation in the account's reporting currency (BASE rows excluded), if known."""
    for value in session.ib.accountValues(session.account):
        if value.tag == "NetLiquidation" and value.currency not in ("", "BASE"):
            return _number(value.value)
    return None


class AccountProbe:
    """Keeps account identity, money figures, day trades left and the number of positions."""

    name = "account"

    def __init__(self, ctx: PassiveContext) -> None:
        self.session = ctx.session
        self.interval = ctx.config.probes.account_interval
        self.timeout = ctx.config.gateway.request_timeout
        self.recorder = ctx.state.outcomes.recorder(self.name)
        self.account = ""
        self.money: dict[tuple[str, str], float] = {}  # (tag, currency) -> value
        self.day_trades_remaining: float | None = None
        self.positions: int | None = None

    def schedule(self) -> Schedule:
        return Schedule(self.interval, self.timeout)

    async def run_once(self) -> None:
        if not self.session.connected:
            raise ProbeFailure("not connected")
        account = self.session.account
        if not account:
            raise ProbeFailure("the Gateway reported no managed account")
        if account != self.account:
            self.money = {}
        self.account = account
        seen_net_liq = False
        for value in self.session.ib.accountValues(account):
            number = _number(value.value)
            if number is None:
                continue
            if value.tag in TAGS and value.currency not in ("", "BASE"):
                self.money[(value.tag, value.currency)] = number
                seen_net_liq |= value.tag == "NetLiquidation"
            elif value.tag == "DayTradesRemaining":
                self.day_trades_remaining = number
        self.positions = sum(1 for p in self.session.ib.positions(account) if p.position)
        if not seen_net_liq:
            raise ProbeFailure(f"no NetLiquidation value received for {account}")
